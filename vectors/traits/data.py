"""Trait artifacts in the persona_vectors format, their importer, and the built-in traits.

Why this format: the Persona Vectors repository describes a trait by ``{"instruction": [{"pos",
"neg"} ×5], "questions": [...], "eval_prompt": "...{question}...{answer}..."}`` in two files with
the same instructions and disjoint questions (``trait_data_extract/<trait>.json`` for extraction,
``trait_data_eval/<trait>.json`` for evaluation). We read that layout as it is, so a trait written
for the paper runs here unchanged, and write our built-in traits in it (``extract/``, ``eval/``).

The offline likelihood metric (:mod:`workbench.metrics`) also needs held-out responses that show
the trait and responses that show its opposite; built-in traits ship them in
``heldout/<trait>.json`` (``{"trait", "description", "examples": [{"question", "positive",
"negative"}]}``). An imported trait without them gets them from the model's own generations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.artifacts import atomic_write_text
from workbench.errors import InputFormatError
from workbench.judge import check_template
from workbench.metrics import TraitExample

BUILTIN_DIR = Path(__file__).parents[1] / "data" / "traits"
BUILTIN_TRAITS = ("sycophantic", "evil", "hallucinating", "pirate", "poetic")
# Folder names of the two layouts: ours, then the persona_vectors repository's.
_LAYOUTS = (("extract", "eval"), ("trait_data_extract", "trait_data_eval"))


@dataclass(frozen=True)
class InstructionPair:
    """A system-prompt instruction that elicits the trait (``pos``) and one that suppresses it."""

    pos: str
    neg: str


@dataclass(frozen=True)
class TraitData:
    """Everything the pipeline needs to know about one trait."""

    name: str
    instructions: tuple[InstructionPair, ...]
    extract_questions: tuple[str, ...]
    eval_questions: tuple[str, ...]
    eval_prompt: str
    description: str = ""
    heldout: tuple[TraitExample, ...] = field(default=())

    def to_json(self, split: str) -> dict[str, Any]:
        """The persona_vectors file of ``split`` ("extract" or "eval")."""
        questions = self.extract_questions if split == "extract" else self.eval_questions
        return {
            "instruction": [{"pos": p.pos, "neg": p.neg} for p in self.instructions],
            "questions": list(questions), "eval_prompt": self.eval_prompt,
        }


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputFormatError(f"{path}: invalid JSON ({exc}); expected a UTF-8 JSON object") from None


def _strings(value: Any, source: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InputFormatError(f"{source}: field '{name}' must be a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise InputFormatError(f"{source}: field '{name}[{i}]' must be a non-empty string")
    return tuple(value)


_TRAIT_FIELDS = {
    "instruction": "a non-empty list of {pos, neg} instruction pairs",
    "questions": "a non-empty list of question strings",
    "eval_prompt": "a judge prompt with {question} and {answer}",
}


def parse_trait_file(data: Any, source: str) -> tuple[tuple[InstructionPair, ...], tuple[str, ...], str]:
    """Validate one persona_vectors trait object; errors name ``source`` and the field at fault."""
    if not isinstance(data, dict):
        raise InputFormatError(f"{source}: expected a JSON object with instruction, questions, eval_prompt")
    for key, expected in _TRAIT_FIELDS.items():
        if key not in data:
            raise InputFormatError(f"{source}: missing field '{key}'; expected {expected}")
    raw = data["instruction"]
    if not isinstance(raw, list) or not raw:
        raise InputFormatError(f"{source}: field 'instruction' must be a non-empty list of {{pos, neg}} objects")
    pairs = []
    for i, pair in enumerate(raw):
        if not isinstance(pair, dict):
            raise InputFormatError(f"{source}: field 'instruction[{i}]' must be an object with 'pos' and 'neg'")
        for side in ("pos", "neg"):
            if not isinstance(pair.get(side), str) or not pair[side].strip():
                raise InputFormatError(f"{source}: field 'instruction[{i}].{side}' must be a non-empty string")
        pairs.append(InstructionPair(pair["pos"], pair["neg"]))
    questions = _strings(data["questions"], source, "questions")
    if not isinstance(data["eval_prompt"], str):
        raise InputFormatError(f"{source}: field 'eval_prompt' must be a string")
    eval_prompt = check_template(data["eval_prompt"], f"{source}: field 'eval_prompt'")
    return tuple(pairs), questions, eval_prompt


def parse_heldout(data: Any, source: str) -> tuple[str, tuple[TraitExample, ...]]:
    """Validate a held-out examples object; returns (description, examples)."""
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list) or not data["examples"]:
        raise InputFormatError(f"{source}: expected an object with a non-empty list 'examples'")
    examples = []
    for i, item in enumerate(data["examples"]):
        if not isinstance(item, dict):
            raise InputFormatError(f"{source}: field 'examples[{i}]' must be an object")
        for key in ("question", "positive", "negative"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise InputFormatError(f"{source}: field 'examples[{i}].{key}' must be a non-empty string")
        examples.append(TraitExample(item["question"], item["positive"], item["negative"]))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputFormatError(f"{source}: field 'description' must be a string")
    return description, tuple(examples)


def load_trait_files(
    extract_path: str | Path, eval_path: str | Path, heldout_path: str | Path | None = None, name: str | None = None
) -> TraitData:
    """Load an extract/eval pair (same instructions, disjoint questions) and optional held-out examples."""
    extract_path, eval_path = Path(extract_path), Path(eval_path)
    pairs, extract_questions, eval_prompt = parse_trait_file(_read_json(extract_path), str(extract_path))
    eval_pairs, eval_questions, _ = parse_trait_file(_read_json(eval_path), str(eval_path))
    if eval_pairs != pairs:
        raise InputFormatError(f"{eval_path}: field 'instruction' differs from {extract_path}; the pair must share it")
    shared = sorted(set(extract_questions) & set(eval_questions))
    if shared:
        raise InputFormatError(
            f"{eval_path}: field 'questions' shares {len(shared)} question(s) with {extract_path} "
            f"(e.g. {shared[0]!r}); extraction and evaluation questions must be disjoint"
        )
    description, heldout = "", ()
    if heldout_path is not None:
        description, heldout = parse_heldout(_read_json(Path(heldout_path)), str(heldout_path))
        leaked = sorted({e.question for e in heldout} & set(extract_questions))
        if leaked:
            raise InputFormatError(
                f"{heldout_path}: example question {leaked[0]!r} is an extraction question in {extract_path}"
            )
    return TraitData(
        name or extract_path.stem, pairs, extract_questions, eval_questions, eval_prompt, description, heldout
    )


def load_trait(name: str, root: str | Path = BUILTIN_DIR) -> TraitData:
    """Load trait ``name`` from ``root`` in our layout (extract/, eval/, heldout/) or the
    persona_vectors repository's (trait_data_extract/, trait_data_eval/)."""
    root = Path(root)
    for extract_dir, eval_dir in _LAYOUTS:
        extract_path = root / extract_dir / f"{name}.json"
        if extract_path.is_file():
            heldout = root / "heldout" / f"{name}.json"
            return load_trait_files(
                extract_path, root / eval_dir / f"{name}.json", heldout if heldout.is_file() else None, name
            )
    known = sorted({p.stem for d, _ in _LAYOUTS for p in (root / d).glob("*.json")})
    raise InputFormatError(
        f"trait {name!r}: no {root}/extract/{name}.json or {root}/trait_data_extract/{name}.json "
        f"(traits there: {', '.join(known) or 'none'})"
    )


def save_trait(trait: TraitData, root: str | Path) -> Path:
    """Write ``trait`` in our layout under ``root`` (extract/, eval/, heldout/ when it has examples)."""
    root = Path(root)
    for split in ("extract", "eval"):
        atomic_write_text(root / split / f"{trait.name}.json", json.dumps(trait.to_json(split), indent=2, ensure_ascii=False) + "\n")
    if trait.heldout:
        heldout = {
            "trait": trait.name, "description": trait.description,
            "examples": [{"question": e.question, "positive": e.positive, "negative": e.negative} for e in trait.heldout],
        }
        atomic_write_text(root / "heldout" / f"{trait.name}.json", json.dumps(heldout, indent=2, ensure_ascii=False) + "\n")
    return root
