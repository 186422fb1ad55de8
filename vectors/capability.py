"""What an intervention costs in capability: multiple-choice likelihood and held-out perplexity.

The Assistant Axis paper claims capping keeps the persona *without costing capabilities*; a claim
like that needs the cost measured beside the drift. Offline, on any model, two measurements:

- **Multiple choice** (``vectors/data/capability_mc.jsonl``: facts, arithmetic, reading, written by
  the project): each choice is scored as the assistant's answer to the question by its mean
  per-token log-probability (length-normalised, so a long choice is not penalised for its length);
  the item is right when the correct choice scores highest. Per item: correct or not, and the
  margin = log-prob of the correct choice − the best wrong one's (moves even when accuracy sits at
  chance, as it does for a 135M model on many items).
- **Perplexity** of neutral held-out answers (``vectors/data/neutral_answers.jsonl``) read under
  the intervention: fluent text that a capped model finds much less likely is a cost.

The cost of an intervention is intervened − plain per item, with paired bootstrap intervals.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from workbench.chat import messages
from workbench.errors import InputFormatError
from workbench.hooks import Intervention
from workbench.metrics import response_loglik
from workbench.stats import Interval, bootstrap_mean, paired_bootstrap_difference

DATA = Path(__file__).parent / "data"
MC_PATH = DATA / "capability_mc.jsonl"
NEUTRAL_PATH = DATA / "neutral_answers.jsonl"
KINDS = ("fact", "arithmetic", "reading")


@dataclass(frozen=True)
class ChoiceItem:
    """One multiple-choice question; ``answer`` indexes ``choices``; ``passage`` precedes the question."""

    id: str
    kind: str
    question: str
    choices: tuple[str, ...]
    answer: int
    passage: str = ""
    expression: str = ""

    def prompt(self) -> str:
        return f"{self.passage}\n\n{self.question}" if self.passage else self.question


@dataclass(frozen=True)
class NeutralAnswer:
    question: str
    answer: str


def _jsonl_objects(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputFormatError(f"{path}: line {number}: invalid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise InputFormatError(f"{path}: line {number}: expected an object, got {type(obj).__name__}")
        out.append((number, obj))
    if not out:
        raise InputFormatError(f"{path}: no items")
    return out


def _text(obj: dict[str, Any], field: str, where: str, required: bool = True) -> str:
    value = obj.get(field, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise InputFormatError(f"{where}: field '{field}' must be a non-empty string, got {value!r}")
    return value


def load_choice_items(path: str | Path = MC_PATH) -> list[ChoiceItem]:
    """Validated multiple-choice items (errors name the file, line and field)."""
    path = Path(path)
    items, seen = [], set()
    for number, obj in _jsonl_objects(path):
        where = f"{path}: line {number}"
        item_id, kind = _text(obj, "id", where), _text(obj, "kind", where)
        if kind not in KINDS:
            raise InputFormatError(f"{where}: field 'kind' is {kind!r}; expected one of {list(KINDS)}")
        if item_id in seen:
            raise InputFormatError(f"{where}: field 'id' {item_id!r} repeats an earlier item")
        seen.add(item_id)
        choices = obj.get("choices")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise InputFormatError(f"{where}: field 'choices' must be a list of at least 2 non-empty strings")
        if len(set(choices)) != len(choices):
            raise InputFormatError(f"{where}: field 'choices' has duplicates {choices}")
        answer = obj.get("answer")
        if type(answer) is not int or not 0 <= answer < len(choices):
            raise InputFormatError(f"{where}: field 'answer' must be an index into 'choices' (0–{len(choices) - 1}), got {answer!r}")
        items.append(ChoiceItem(item_id, kind, _text(obj, "question", where), tuple(choices), answer,
                                _text(obj, "passage", where, required=False),
                                _text(obj, "expression", where, required=False)))
    return items


def load_neutral_answers(path: str | Path = NEUTRAL_PATH) -> list[NeutralAnswer]:
    """Validated neutral question/answer pairs (errors name the file, line and field)."""
    path = Path(path)
    return [NeutralAnswer(_text(obj, "question", f"{path}: line {n}"), _text(obj, "answer", f"{path}: line {n}"))
            for n, obj in _jsonl_objects(path)]


@dataclass(frozen=True)
class CapabilityScores:
    """Per-item scores of one model setting.

    ``correct[i]``: item i's correct choice scored highest; ``margin[i]``: its mean log-prob minus
    the best wrong choice's; ``neutral_loglik`` / ``neutral_tokens``: summed log-prob and token
    count of each neutral answer.
    """

    correct: Bool[Tensor, " item"]
    margin: Float[Tensor, " item"]
    neutral_loglik: Float[Tensor, " answer"]
    neutral_tokens: Float[Tensor, " answer"]

    @property
    def accuracy(self) -> float:
        return float(self.correct.float().mean())

    @property
    def perplexity(self) -> float:
        return math.exp(-float(self.neutral_loglik.sum()) / float(self.neutral_tokens.sum()))

    def neutral_nll(self) -> Float[Tensor, " answer"]:
        """Mean per-token negative log-likelihood of each neutral answer."""
        return -self.neutral_loglik / self.neutral_tokens


def capability_scores(
    model, items: Sequence[ChoiceItem], neutral: Sequence[NeutralAnswer],
    interventions: Sequence[Intervention] = (), batch_size: int = 16, progress: bool = True,
) -> CapabilityScores:
    """Score every choice of every item and every neutral answer under ``interventions``."""
    if not items or not neutral:
        raise InputFormatError("capability scoring needs at least one item and one neutral answer")
    conversations = [messages(None, item.prompt(), choice) for item in items for choice in item.choices]
    conversations += [messages(None, n.question, n.answer) for n in neutral]
    loglik = response_loglik(model, conversations, interventions, batch_size, progress)
    per_token = loglik.per_token()
    correct, margin, at = [], [], 0
    for item in items:
        scores = per_token[at : at + len(item.choices)]
        at += len(item.choices)
        wrong = torch.cat([scores[: item.answer], scores[item.answer + 1 :]])
        correct.append(bool(scores.argmax() == item.answer))
        margin.append(float(scores[item.answer] - wrong.max()))
    return CapabilityScores(torch.tensor(correct), torch.tensor(margin), loglik.total[at:].clone(),
                            loglik.n_tokens[at:].clone())


@dataclass(frozen=True)
class CapabilityCost:
    """An intervention's capability against the plain model's, with paired 95% intervals.

    ``accuracy_change`` / ``margin_change``: intervened − plain over items; ``nll_change``: mean
    per-token NLL of neutral answers, intervened − plain (> 0: the text got less likely);
    ``perplexity_ratio``: intervened / plain perplexity (exp of the token-weighted NLL change).
    """

    plain_accuracy: Interval
    accuracy: Interval
    accuracy_change: Interval
    margin_change: Interval
    plain_perplexity: float
    perplexity: float
    perplexity_ratio: float
    nll_change: Interval

    def to_summary(self) -> dict[str, Any]:
        return {
            "plain_accuracy": self.plain_accuracy.to_summary(), "accuracy": self.accuracy.to_summary(),
            "accuracy_change": self.accuracy_change.to_summary(), "margin_change": self.margin_change.to_summary(),
            "plain_perplexity": self.plain_perplexity, "perplexity": self.perplexity,
            "perplexity_ratio": self.perplexity_ratio, "nll_change": self.nll_change.to_summary(),
        }


def capability_cost(plain: CapabilityScores, intervened: CapabilityScores) -> CapabilityCost:
    """Intervened − plain, item by item (the same items under both)."""
    if len(plain.correct) != len(intervened.correct) or len(plain.neutral_loglik) != len(intervened.neutral_loglik):
        raise InputFormatError("capability cost needs the same items scored under both settings")
    as_float = lambda t: np.asarray(t.float().tolist())  # noqa: E731
    return CapabilityCost(
        bootstrap_mean(as_float(plain.correct)), bootstrap_mean(as_float(intervened.correct)),
        paired_bootstrap_difference(as_float(intervened.correct), as_float(plain.correct)),
        paired_bootstrap_difference(as_float(intervened.margin), as_float(plain.margin)),
        plain.perplexity, intervened.perplexity, intervened.perplexity / plain.perplexity,
        paired_bootstrap_difference(as_float(intervened.neutral_nll()), as_float(plain.neutral_nll())),
    )
