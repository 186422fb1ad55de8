"""Load conversation transcripts for drift views and replays.

Accepted inputs (one file each):

- the assistant-axis transcript format, one JSON object
  ``{"model": str, "turns": int, "conversation": [{"role", "content"}, ...], ...}`` with optional
  ``system_prompt``, ``steering_config`` (``experiment_id``, ``num_interventions``, ``layers``),
  ``auditor_model`` and, in persona-drift files, ``domain``, ``persona``, ``topic`` and ids;
- a plain JSON list of messages;
- JSONL: one conversation per line, each either format above.

``turns`` may disagree with the messages (the papers' files count differently): the messages are
trusted and the disagreement is recorded in ``metadata["turns_declared"]``. Anything else raises an
InputFormatError naming the file, the line (JSONL) and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.chat import Message, validate_messages
from workbench.errors import InputFormatError

_OPTIONAL_STRINGS = ("model", "auditor_model", "domain", "persona", "topic", "system_prompt")


@dataclass(frozen=True)
class Transcript:
    """One conversation plus what its file said about it (model, steering config, persona, ids)."""

    messages: tuple[Message, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def user_turns(self) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == "user"]

    @property
    def assistant_turns(self) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == "assistant"]

    @property
    def system_prompt(self) -> str | None:
        first = self.messages[0]
        return first["content"] if first["role"] == "system" else None

    def to_json(self) -> dict[str, Any]:
        """The assistant-axis format (``turns`` = number of messages, as written here)."""
        body = {k: v for k, v in self.metadata.items() if k != "turns_declared"}
        return {**body, "turns": len(self.messages), "conversation": [dict(m) for m in self.messages]}


def _check_assistant_turns(conversation: list[Message], where: str) -> None:
    """An empty assistant turn has no tokens to project or replay: refuse it here, naming it,
    rather than show an empty drift row or divide by zero later."""
    for i, message in enumerate(conversation):
        if message["role"] == "assistant" and not message["content"].strip():
            raise InputFormatError(f"{where}: message {i} is an empty assistant turn; expected its text")


def _from_object(obj: Any, where: str) -> Transcript:
    if isinstance(obj, list):
        validate_messages(obj, where)
        _check_assistant_turns(obj, where)
        return Transcript(tuple(dict(m) for m in obj), {}, where)
    if not isinstance(obj, dict):
        raise InputFormatError(
            f"{where}: expected an object with a 'conversation' field or a list of messages, "
            f"got {type(obj).__name__}"
        )
    if "conversation" not in obj:
        raise InputFormatError(
            f"{where}: missing field 'conversation'; expected a list of {{role, content}} messages "
            f"(found fields {sorted(obj)})"
        )
    conversation = obj["conversation"]
    validate_messages(conversation, f"{where}: field 'conversation'")
    _check_assistant_turns(conversation, f"{where}: field 'conversation'")
    metadata = {k: v for k, v in obj.items() if k not in ("conversation", "turns")}
    for key in _OPTIONAL_STRINGS:
        if key in obj and obj[key] is not None and not isinstance(obj[key], str):
            raise InputFormatError(f"{where}: field '{key}' must be a string, got {type(obj[key]).__name__}")
    _check_steering_config(obj.get("steering_config"), where)
    if "turns" in obj:
        if not isinstance(obj["turns"], int) or isinstance(obj["turns"], bool):
            raise InputFormatError(f"{where}: field 'turns' must be an integer, got {obj['turns']!r}")
        metadata["turns_declared"] = obj["turns"]
    messages = [dict(m) for m in conversation]
    system_prompt = obj.get("system_prompt")
    if system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    return Transcript(tuple(messages), metadata, where)


def _check_steering_config(config: Any, where: str) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise InputFormatError(f"{where}: field 'steering_config' must be an object, got {type(config).__name__}")
    layers = config.get("layers", [])
    if not isinstance(layers, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
        raise InputFormatError(f"{where}: field 'steering_config.layers' must be a list of integers")


def load_transcripts(path: str | Path) -> list[Transcript]:
    """Every conversation in a ``.json`` or ``.jsonl`` file (JSON holds exactly one)."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise InputFormatError(f"{path}: empty file")
    try:
        return [_from_object(json.loads(text), str(path))]
    except RecursionError:
        raise InputFormatError(f"{path}: JSON nested too deeply; expected a transcript object or messages") from None
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2:
            raise InputFormatError(f"{path}: invalid JSON ({whole_error})") from None
    transcripts = []
    for number, line in lines:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputFormatError(f"{path}: line {number}: invalid JSON ({exc})") from None
        transcripts.append(_from_object(obj, f"{path}: line {number}"))
    return transcripts


def load_transcript(path: str | Path, index: int = 0) -> Transcript:
    """One conversation of a file (the ``index``-th of a JSONL file)."""
    transcripts = load_transcripts(path)
    if not 0 <= index < len(transcripts):
        raise InputFormatError(f"{path}: has {len(transcripts)} conversation(s); index {index} is out of range")
    return transcripts[index]


def shipped_transcript_path(name: str = "mystic_drift.json") -> Path:
    """A transcript shipped in ``vectors/data/transcripts`` (the drifting conversation by default)."""
    path = Path(__file__).parents[1] / "data" / "transcripts" / name
    if not path.is_file():
        raise InputFormatError(f"{path}: no shipped transcript named {name!r}")
    return path


def shipped_drift_transcripts() -> list[Path]:
    """The shipped drifting conversations (``*_drift.json``: coding, writing, therapy, philosophy,
    spirituality), sorted by name."""
    return sorted((Path(__file__).parents[1] / "data" / "transcripts").glob("*_drift.json"))
