"""Offline metrics of steering: the likelihood trait metric, perplexity (coherence) and repetition.

No judge is reachable offline, and a small model's generations are too few and too noisy to score
by eye, so the workbench measures a trait by *likelihood*: how much more probable the model (steered
or not) finds held-out responses that exhibit the trait than responses that show its opposite,
given the question alone. Coherence is the perplexity of generated text under the *unsteered*
model, and repetition catches the degenerate loops that perplexity rewards (a looping answer has a
low perplexity).

All log-likelihoods are read over the response tokens of :mod:`workbench.chat` (the assistant
message's text, without the template's header and end tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.chat import Message, format_conversation, messages
from workbench.errors import InputFormatError
from workbench.forward import iter_batches
from workbench.generate import Sampling, generate_responses
from workbench.hooks import Intervention


@dataclass(frozen=True)
class TraitExample:
    """A question with a held-out response that exhibits the trait and one that shows its opposite."""

    question: str
    positive: str
    negative: str


@dataclass(frozen=True)
class ResponseLogLik:
    """Summed log-probability of each conversation's last assistant message and its token count."""

    total: Float[Tensor, " n"]
    n_tokens: Float[Tensor, " n"]

    def per_token(self) -> Float[Tensor, " n"]:
        """Mean per-token log-likelihood of each response (NaN for an empty response)."""
        return self.total / self.n_tokens.where(self.n_tokens > 0, torch.tensor(float("nan")))


def response_loglik(
    model,
    conversations: Sequence[Sequence[Message]],
    interventions: Sequence[Intervention] = (),
    batch_size: int = 8,
    progress: bool = True,
) -> ResponseLogLik:
    """Log-likelihood of the last assistant message of each conversation under ``model``.

    Interventions see the same ``response_mask`` as in extraction, so ``where="response"`` steers
    the response tokens exactly as KV-cache generation does (the prediction of the first response
    token comes from the prompt's last position, which such a steer leaves alone, as in generation).
    """
    chats = []
    for i, conversation in enumerate(conversations):
        if not conversation or conversation[-1].get("role") != "assistant":
            raise InputFormatError(f"conversation {i}: the last message must be the assistant's response")
        chats.append(format_conversation(model.tokenizer, conversation))
    totals = torch.zeros(len(chats))
    counts = torch.zeros(len(chats))
    spans = [chat.assistant_spans[-1] for chat in chats]
    # Tokens after the response cannot change its likelihood: each sequence runs to the response's end.
    lengths = [max(end, 1) for _, end in spans]
    for batch in iter_batches(model, chats, interventions, batch_size=batch_size, stop_at_layer=model.cfg.n_layers,
                              lengths=lengths, progress=progress, desc="response log-likelihood"):
        for row, i in enumerate(batch.indices):
            start, end = spans[i]
            if end <= start or start == 0:
                continue
            predicted = next_token_logits(model, batch.output[row, start - 1 : end - 1]).float().log_softmax(dim=-1)
            targets = batch.tokens[row, start:end]
            totals[i] = predicted.gather(-1, targets[:, None]).sum().cpu()
            counts[i] = end - start
    return ResponseLogLik(totals, counts)


def next_token_logits(model, residual: Float[Tensor, "pos d_model"]) -> Float[Tensor, "pos d_vocab"]:
    """The model's logits from its final residual stream at chosen positions only.

    Why: the unembedding is the largest matrix of a small model (49k × 576 for SmolLM2, a fifth of
    a token's compute), and a likelihood needs it only where a response token is predicted. This is
    the tail of ``HookedTransformer.forward``: final norm, unembedding, output soft-capping (Gemma 2).
    """
    from transformer_lens.utilities.activation_functions import apply_softcap

    with torch.inference_mode():
        normalized = model.ln_final(residual[None]) if model.cfg.normalization_type is not None else residual[None]
        return apply_softcap(model.unembed(normalized), model.cfg.output_logits_soft_cap)[0]


@dataclass(frozen=True)
class TraitScore:
    """The likelihood trait metric: mean per-token log-lik of positive minus negative responses.

    ``value`` > 0 means the model prefers trait-exhibiting responses; steering toward the trait
    should raise it. ``positive``/``negative`` are per-example means, for error bars and pairing.
    """

    value: float
    positive: Float[Tensor, " n"]
    negative: Float[Tensor, " n"]

    @property
    def per_example(self) -> Float[Tensor, " n"]:
        return self.positive - self.negative

    def stderr(self) -> float:
        diffs = self.per_example
        return float(diffs.std() / math.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")


def trait_metric(
    model,
    examples: Sequence[TraitExample],
    interventions: Sequence[Intervention] = (),
    system: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> TraitScore:
    """Offline trait metric of ``model`` (steered by ``interventions``) on held-out examples.

    ``system``: the system prompt to condition on; None = the question alone (the model's default).
    """
    if not examples:
        raise InputFormatError("trait_metric needs at least one held-out example")
    conversations = [messages(system, e.question, e.positive) for e in examples]
    conversations += [messages(system, e.question, e.negative) for e in examples]
    per_token = response_loglik(model, conversations, interventions, batch_size, progress).per_token()
    if torch.isnan(per_token).any():
        bad = int(torch.isnan(per_token).nonzero()[0]) % len(examples)
        raise InputFormatError(f"example {bad}: a positive or negative response has no tokens")
    positive, negative = per_token[: len(examples)], per_token[len(examples) :]
    return TraitScore(float((positive - negative).mean()), positive, negative)


def perplexity(
    model,
    questions: Sequence[str],
    responses: Sequence[str],
    system: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> float:
    """Perplexity of generated ``responses`` to ``questions`` under the unsteered ``model``.

    Token-weighted over all non-empty responses; NaN when every response is empty. Low values can
    mean fluent text *or* a loop: read it beside :func:`repetition`.
    """
    if len(questions) != len(responses):
        raise InputFormatError(f"{len(questions)} questions but {len(responses)} responses")
    kept = [(q, r) for q, r in zip(questions, responses) if r.strip()]
    if not kept:
        return float("nan")
    loglik = response_loglik(model, [messages(system, q, r) for q, r in kept], (), batch_size, progress)
    n_tokens = float(loglik.n_tokens.sum())
    return math.exp(-float(loglik.total.sum()) / n_tokens) if n_tokens else float("nan")


@dataclass(frozen=True)
class RepetitionScore:
    """``repeated_ngram_share``: share of a text's word n-grams that already occurred earlier in it
    (0 = no repeats, → 1 for a loop); ``distinct_2``: unique word bigrams / bigrams. Both are means
    over texts long enough to have one n-gram (NaN when none is)."""

    repeated_ngram_share: float
    distinct_2: float
    n: int


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def repetition(texts: Sequence[str], n: int = 3) -> RepetitionScore:
    """Within-text repetition of generated texts (lower-cased whitespace words)."""
    if n < 1:
        raise InputFormatError(f"repetition n-gram size must be ≥ 1, got {n}")
    repeated, distinct = [], []
    for text in texts:
        words = text.lower().split()
        grams = _ngrams(words, n)
        if grams:
            repeated.append(1 - len(set(grams)) / len(grams))
        bigrams = _ngrams(words, 2)
        if bigrams:
            distinct.append(len(set(bigrams)) / len(bigrams))
    return RepetitionScore(_mean(repeated), _mean(distinct), n)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


@dataclass(frozen=True)
class SteeringEvaluation:
    """Trait metric of a steered model with the coherence of what it generates.

    ``perplexity`` is measured under the unsteered model; ``responses`` are the steered generations.
    """

    trait: float
    trait_stderr: float
    perplexity: float
    repeated_ngram_share: float
    distinct_2: float
    responses: tuple[str, ...]


def evaluate_steering(
    model,
    examples: Sequence[TraitExample],
    questions: Sequence[str],
    interventions: Sequence[Intervention] = (),
    sampling: Sampling = Sampling(max_new_tokens=32),
    system: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> SteeringEvaluation:
    """Score one steering setting: trait metric on ``examples``, then generate answers to
    ``questions`` under the same interventions and measure their perplexity and repetition."""
    score = trait_metric(model, examples, interventions, system, batch_size, progress)
    conversations = [messages(system, q) for q in questions]
    responses = generate_responses(model, conversations, sampling, interventions, batch_size=batch_size, progress=progress)
    coherence = perplexity(model, questions, responses, system, batch_size, progress)
    repeats = repetition(responses)
    return SteeringEvaluation(
        score.value, score.stderr(), coherence, repeats.repeated_ngram_share, repeats.distinct_2, tuple(responses)
    )
