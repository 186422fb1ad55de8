"""Personas and questions: the built-in set and importers of the assistant-axis repository's formats.

Why one in-memory shape for both: the pipeline (generate, judge, extract, analyse) should not care
whether a researcher runs our 28 built-in personas on the shipped model or the paper's 275 roles on
Gemma 2 27B. Everything loads into :class:`PersonaSet` and a list of :class:`Question`.

Formats read:
- built-in ``vectors/data/personas.json``: ``{"default": [str], "roles": {name: {"group", "prompts"}}}``
  and ``vectors/data/questions.json``: ``{"extraction": [{"id", "question"}], "heldout": [...]}``;
- assistant-axis ``data/roles/instructions/<role>.json``: ``{"instruction": [{"pos": str}],
  "questions": [str], "eval_prompt": str}`` (``default.json`` has only ``instruction``; prompts may
  hold a ``{model_name}`` placeholder) and ``data/extraction_questions.jsonl``: lines
  ``{"question": str, "id": int}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Sequence

from workbench.errors import InputFormatError
from workbench.judge import check_template

DATA_DIR = Path(__file__).parents[1] / "data"
BUILTIN_PERSONAS = DATA_DIR / "personas.json"
BUILTIN_QUESTIONS = DATA_DIR / "questions.json"
DEFAULT_NAME = "default"
GROUPS = ("assistant-like", "mid", "fantastical")
Split = Literal["extraction", "heldout"]

_DISPLAY_NAMES = {"gemma": "Gemma", "smollm": "SmolLM", "qwen": "Qwen", "llama": "Llama", "mistral": "Mistral"}


@dataclass(frozen=True)
class Persona:
    """A role (or the default assistant) and its system prompt variants.

    ``group``: ``default``, one of :data:`GROUPS`, or ``role`` for imported roles with no group.
    ``eval_prompt``: the role judge's template (``{question}``, ``{answer}``), None for the default
    text built by :func:`workbench.judge.role_judge_prompt`.
    """

    name: str
    prompts: tuple[str, ...]
    group: str
    eval_prompt: str | None = None

    @property
    def is_default(self) -> bool:
        return self.group == DEFAULT_NAME


@dataclass(frozen=True)
class PersonaSet:
    """The default assistant's prompts plus the roles to contrast with it."""

    default: Persona
    roles: tuple[Persona, ...]
    source: str = "built-in"

    def __post_init__(self):
        names = [r.name for r in self.roles]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates or DEFAULT_NAME in names:
            raise InputFormatError(f"{self.source}: duplicate role names {duplicates or [DEFAULT_NAME]}")

    def subset(self, n_roles: int | None) -> "PersonaSet":
        """The first ``n_roles`` roles taken round-robin across groups, so a small run still spans
        assistant-like to fantastical."""
        if n_roles is None or n_roles >= len(self.roles):
            return self
        by_group: dict[str, list[Persona]] = {}
        for role in self.roles:
            by_group.setdefault(role.group, []).append(role)
        picked: list[Persona] = []
        while len(picked) < n_roles:
            for members in by_group.values():
                if members and len(picked) < n_roles:
                    picked.append(members.pop(0))
        return replace(self, roles=tuple(picked))


@dataclass(frozen=True)
class Question:
    id: int | str
    text: str
    split: Split


# ----------------------------------------------------------------------------- validation helpers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputFormatError(f"{path}: invalid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{path}: cannot read ({exc})") from None


def _string_list(value: Any, source: str, field_name: str, allow_empty_strings: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InputFormatError(f"{source}: field '{field_name}' must be a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or (not item.strip() and not allow_empty_strings):
            raise InputFormatError(f"{source}: field '{field_name}' item {i} must be a non-empty string, got {item!r}")
    return tuple(value)


def _object(value: Any, source: str) -> dict:
    if not isinstance(value, dict):
        raise InputFormatError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return value


# ----------------------------------------------------------------------------------- built-in format


def _eval_prompt(value, source: str) -> str | None:
    """A role's judge template, checked at load (before any generation) for exactly the
    ``{question}`` and ``{answer}`` fields the judge fills in."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputFormatError(f"{source}: field 'eval_prompt' must be a string")
    return check_template(value, f"{source} field 'eval_prompt'")


def load_persona_file(path: str | Path = BUILTIN_PERSONAS) -> PersonaSet:
    """Personas in the workbench's JSON format (the built-in file by default)."""
    path = Path(path)
    data = _object(_read_json(path), str(path))
    default = _string_list(data.get("default"), str(path), "default", allow_empty_strings=True)
    roles_data = _object(data.get("roles"), f"{path} field 'roles'")
    roles = []
    for name, entry in roles_data.items():
        source = f"{path} roles.{name}"
        entry = _object(entry, source)
        group = entry.get("group", "role")
        if not isinstance(group, str):
            raise InputFormatError(f"{source}: field 'group' must be a string")
        eval_prompt = _eval_prompt(entry.get("eval_prompt"), source)
        roles.append(Persona(name, _string_list(entry.get("prompts"), source, "prompts"), group, eval_prompt))
    if not roles:
        raise InputFormatError(f"{path}: field 'roles' is empty")
    return PersonaSet(Persona(DEFAULT_NAME, default, DEFAULT_NAME), tuple(roles), str(path))


def load_question_file(path: str | Path = BUILTIN_QUESTIONS) -> list[Question]:
    """Questions in the workbench's JSON format: ``extraction`` and ``heldout`` lists."""
    path = Path(path)
    data = _object(_read_json(path), str(path))
    questions = []
    for split in ("extraction", "heldout"):
        entries = data.get(split)
        if not isinstance(entries, list) or not entries:
            raise InputFormatError(f"{path}: field '{split}' must be a non-empty list of {{id, question}}")
        questions += [_question(entry, f"{path} {split}[{i}]", split) for i, entry in enumerate(entries)]
    return _check_unique_ids(questions, str(path))


def _question(entry: Any, source: str, split: Split) -> Question:
    entry = _object(entry, source)
    text, qid = entry.get("question"), entry.get("id")
    if not isinstance(text, str) or not text.strip():
        raise InputFormatError(f"{source}: field 'question' must be a non-empty string")
    if not isinstance(qid, (int, str)) or isinstance(qid, bool):
        raise InputFormatError(f"{source}: field 'id' must be an integer or string, got {qid!r}")
    return Question(qid, text, split)


def _check_unique_ids(questions: list[Question], source: str) -> list[Question]:
    ids = [q.id for q in questions]
    duplicates = sorted({str(i) for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputFormatError(f"{source}: duplicate question ids {duplicates[:5]}")
    return questions


# ------------------------------------------------------------------------- assistant-axis formats


def _instructions_dir(path: Path) -> Path:
    for candidate in (path, path / "instructions", path / "roles" / "instructions", path / "data" / "roles" / "instructions"):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise InputFormatError(
        f"{path}: no role files found (looked for *.json in it, instructions/, roles/instructions/)"
    )


def _aa_prompts(data: dict, source: str) -> tuple[str, ...]:
    instruction = data.get("instruction")
    if not isinstance(instruction, list) or not instruction:
        raise InputFormatError(f"{source}: field 'instruction' must be a non-empty list of {{\"pos\": str}}")
    prompts = []
    for i, item in enumerate(instruction):
        if not isinstance(item, dict) or not isinstance(item.get("pos"), str):
            raise InputFormatError(f"{source}: field 'instruction' item {i} must be an object with a string 'pos'")
        prompts.append(item["pos"])
    return tuple(prompts)


def load_assistant_axis_roles(path: str | Path) -> PersonaSet:
    """Roles from an assistant-axis ``roles/instructions`` folder (or a folder above it).

    ``default.json`` supplies the default prompts (the built-in four when absent). Each role keeps
    its ``eval_prompt`` for the judge; prompts keep their ``{model_name}`` placeholder until
    :func:`fill_model_name`.
    """
    folder = _instructions_dir(Path(path))
    default_prompts = None
    roles = []
    for file in sorted(folder.glob("*.json")):
        data = _object(_read_json(file), str(file))
        prompts = _aa_prompts(data, str(file))
        if file.stem == DEFAULT_NAME:
            default_prompts = prompts
            continue
        eval_prompt = _eval_prompt(data.get("eval_prompt") or None, str(file))
        questions = data.get("questions")
        if questions is not None:
            _string_list(questions, str(file), "questions")
        roles.append(Persona(file.stem, prompts, "role", eval_prompt))
    if not roles:
        raise InputFormatError(f"{folder}: only default.json found; no roles to contrast with it")
    if default_prompts is None:
        default_prompts = load_persona_file().default.prompts
    return PersonaSet(Persona(DEFAULT_NAME, default_prompts, DEFAULT_NAME), tuple(roles), str(folder))


def load_assistant_axis_questions(path: str | Path, heldout_every: int = 4) -> list[Question]:
    """``extraction_questions.jsonl`` lines ``{"question", "id"}``; every ``heldout_every``-th
    question (by line) is held out for validation, since the file has no split of its own."""
    path = Path(path)
    if heldout_every < 2:
        raise InputFormatError(f"heldout_every must be ≥ 2, got {heldout_every}")
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputFormatError(f"{path} line {number}: invalid JSON ({exc})") from None
        split: Split = "heldout" if len(questions) % heldout_every == heldout_every - 1 else "extraction"
        questions.append(_question(entry, f"{path} line {number}", split))
    if len(questions) < 2:
        raise InputFormatError(f"{path}: need at least 2 questions (extraction and held-out), found {len(questions)}")
    return _check_unique_ids(questions, str(path))


# ---------------------------------------------------------------------------------- entry points


def load_personas(path: str | Path | None = None) -> PersonaSet:
    """Built-in personas (None), a workbench personas JSON file, or an assistant-axis roles folder."""
    if path is None:
        return load_persona_file()
    path = Path(path)
    if path.is_dir():
        return load_assistant_axis_roles(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file or folder")
    return load_persona_file(path)


def load_questions(path: str | Path | None = None) -> list[Question]:
    """Built-in questions (None), a workbench questions JSON file, or an ``extraction_questions.jsonl``."""
    if path is None:
        return load_question_file()
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    return load_assistant_axis_questions(path) if path.suffix == ".jsonl" else load_question_file(path)


def select_questions(questions: Sequence[Question], n_extraction: int | None, n_heldout: int | None) -> list[Question]:
    """The first ``n`` questions of each split (None: all)."""
    extraction = [q for q in questions if q.split == "extraction"][:n_extraction]
    heldout = [q for q in questions if q.split == "heldout"][:n_heldout]
    if not extraction or not heldout:
        raise InputFormatError("need at least one extraction and one held-out question")
    return extraction + heldout


def display_model_name(model_name: str) -> str:
    """What ``{model_name}`` becomes in a prompt: the model family (``Gemma``, ``SmolLM``, …)."""
    base = model_name.rsplit("/", 1)[-1].lower()
    for prefix, shown in _DISPLAY_NAMES.items():
        if base.startswith(prefix):
            return shown
    return base.split("-", 1)[0].capitalize() or model_name


def fill_model_name(prompt: str, model_name: str) -> str:
    """Replace the assistant-axis ``{model_name}`` placeholder (only that one; other braces stay)."""
    return prompt.replace("{model_name}", display_model_name(model_name))
