"""A behavioural score of generated text, offline: the model as its own trait classifier, with fluency
and repetition, combined like AxBench's harmonic mean.

Why: the likelihood trait metric scores held-out responses the steered model *reads*; steering is
for what it *writes*. AxBench judges each generation for concept, instruction and fluency (0–2)
and takes the harmonic mean, so a method only scores when it is on-concept *and* fluent. Offline,
with no judge, each part is a number in [0, 1] per generated response r to question q:

- **concept** = P(trait-prompted | r) with equal priors = σ(log p(r | instruction, q) − log p(r | q))
  under the unsteered model: how much more the model, told to show the trait (the trait's positive
  instruction as system prompt), expects r than the neutral model does;
- **fluency** = min(1, exp(ℓ(r) − ℓ₀)), ℓ = mean per-token log-likelihood of r under the unsteered,
  neutral model and ℓ₀ the same over the unsteered generations: perplexity relative to unsteered text;
- **non-repetition** = 1 − share of r's word 3-grams seen earlier in r (loops score 0).

The score is the harmonic mean of the three (0 when one is 0, and for an empty response); its mean
and 95% interval are over questions. AxBench's third part, instruction relevance, has no offline
stand-in here; a configured judge's trait score is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from workbench.chat import messages
from workbench.errors import InputFormatError
from workbench.metrics import repetition, response_loglik


@dataclass(frozen=True)
class BehaviourScore:
    """Per-question parts and harmonic score of one setting's generations, with mean and 95% interval."""

    concept: list[float]
    fluency: list[float]
    non_repetition: list[float]
    harmonic: list[float]

    @staticmethod
    def _mean_ci(values: Sequence[float]) -> tuple[float, float]:
        n = len(values)
        if not n:
            return float("nan"), float("nan")
        mean = sum(values) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
        return mean, 1.96 * sd / math.sqrt(n)

    def row(self) -> dict[str, float]:
        """The comparison table's columns: ``behaviour`` (harmonic), its ``behaviour_ci95``, and the parts' means."""
        mean, ci = self._mean_ci(self.harmonic)
        return {"behaviour": mean, "behaviour_ci95": ci, "concept": self._mean_ci(self.concept)[0],
                "fluency": self._mean_ci(self.fluency)[0], "non_repetition": self._mean_ci(self.non_repetition)[0]}


def _harmonic(parts: Sequence[float]) -> float:
    return 0.0 if min(parts) <= 0 else len(parts) / sum(1 / p for p in parts)


@torch.no_grad()
def per_token_loglik(model, questions: Sequence[str], responses: Sequence[str], system: str | None = None):
    """(summed, per-token) log-likelihood of each non-empty response under the unsteered model;
    NaN for empty responses."""
    kept = [i for i, r in enumerate(responses) if r.strip()]
    total = torch.full((len(responses),), float("nan"))
    per_token = torch.full((len(responses),), float("nan"))
    if kept:
        ll = response_loglik(model, [messages(system, questions[i], responses[i]) for i in kept], progress=False)
        total[kept], per_token[kept] = ll.total, ll.per_token()
    return total, per_token


def reference_loglik(model, questions: Sequence[str], responses: Sequence[str]) -> float:
    """ℓ₀: token-weighted mean per-token log-likelihood of the unsteered generations (neutral prompt)."""
    kept = [(q, r) for q, r in zip(questions, responses) if r.strip()]
    if not kept:
        return float("nan")
    ll = response_loglik(model, [messages(None, q, r) for q, r in kept], progress=False)
    return float(ll.total.sum() / ll.n_tokens.sum())


def behaviour_score(
    model, questions: Sequence[str], responses: Sequence[str], instruction: str, reference: float
) -> BehaviourScore:
    """Concept, fluency, non-repetition and their harmonic mean for each generated response.

    ``instruction``: the trait's positive system prompt; ``reference``: ℓ₀ from :func:`reference_loglik`.
    """
    if len(questions) != len(responses):
        raise InputFormatError(f"{len(questions)} questions but {len(responses)} responses")
    if not instruction.strip():
        raise InputFormatError("the behavioural score needs the trait's positive instruction")
    prompted, _ = per_token_loglik(model, questions, responses, instruction)
    neutral, neutral_per_token = per_token_loglik(model, questions, responses)
    concept, fluency, non_rep, harmonic = [], [], [], []
    for i, text in enumerate(responses):
        if not text.strip():
            c = f = 0.0
        else:
            c = float(torch.sigmoid(prompted[i] - neutral[i]))
            f = min(1.0, math.exp(float(neutral_per_token[i]) - reference)) if reference == reference else 1.0
        share = repetition([text]).repeated_ngram_share
        n = 1.0 - share if share == share else 1.0  # too short for a 3-gram: no repeat
        concept.append(c), fluency.append(f), non_rep.append(n), harmonic.append(_harmonic([c, f, n]))
    return BehaviourScore(concept, fluency, non_rep, harmonic)
