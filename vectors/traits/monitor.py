"""Monitoring and data screening with a trait vector.

Monitoring (the paper's §4): before the model writes a token, the projection of the last prompt
token onto the trait vector should predict how strongly the response will show the trait; the
response mean's projection should track it too. We report Pearson r of each against a trait score:
the judge's when configured, else an offline likelihood score of the response (how much more likely
it is under the trait-eliciting system prompt than under the suppressing one).

Screening (§5): ΔP_i = [a_L(x_i, y_i) − a_L(x_i, y′_i)] · v̂, where y_i is a training example's
response and y′_i the model's own response to the same prompt: large values flag examples that
would push the model toward the trait if trained on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench.artifacts import LayerVectors
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.chat import Message, format_conversation, messages, validate_messages
from workbench.errors import InputFormatError
from workbench.extract import extract_means
from workbench.generate import Sampling, generate_responses
from workbench.metrics import response_loglik
from workbench.responses import record_chats



def pearson_r(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation over the pairs where both values exist; NaN if fewer than 3 or constant."""
    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 3:
        return float("nan")
    a, b = np.array(pairs, dtype=float).T
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def likelihood_trait_scores(
    model, records: Sequence[dict[str, Any]], positive_system: str, negative_system: str, progress: bool = True
) -> list[float]:
    """Offline per-response trait score: mean per-token log-lik of the response under the
    trait-eliciting system prompt minus under the suppressing one (no judge needed)."""
    pos = response_loglik(model, [messages(positive_system, r["question"], r["response"]) for r in records], progress=progress)
    neg = response_loglik(model, [messages(negative_system, r["question"], r["response"]) for r in records], progress=progress)
    return (pos.per_token() - neg.per_token()).tolist()


def projections(
    model, records: Sequence[dict[str, Any]], vector: LayerVectors, layer: int, progress: bool = True
) -> dict[str, list[float]]:
    """Projection onto the unit trait vector of the last prompt token and of the response mean."""
    chats = record_chats(model, records)
    unit = vector.unit(layer)
    return {
        select: (extract_means(model, chats, [layer], select=select, progress=progress)[:, 0] @ unit).tolist()
        for select in ("prompt_last", "response")
    }


def monitor(
    model, records: Sequence[dict[str, Any]], scores: Sequence[float | None], vector: LayerVectors, layer: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Pearson r of the prompt-last and response-mean projections against the trait scores; both
    None, with ``unavailable`` saying why, when fewer than 3 responses have a score or the scores
    (or projections) are constant (a NaN would make summary.json invalid JSON)."""
    proj = projections(model, records, vector, layer, progress)
    r_last, r_mean = pearson_r(proj["prompt_last"], scores), pearson_r(proj["response"], scores)
    out: dict[str, Any] = {}
    if math.isnan(r_last) or math.isnan(r_mean):
        n_scored = sum(s is not None and math.isfinite(s) for s in scores)
        out["unavailable"] = (f"Pearson r needs at least 3 scored responses with varying scores and projections; "
                              f"{n_scored} of {len(records)} responses have a score")
        r_last = r_mean = None
    return out | {
        "layer": layer, "n": len(records),
        "r_prompt_last": r_last,
        "r_response_mean": r_mean,
        "points": [
            {"polarity": r.get("polarity"), "instruction": r.get("instruction"), "score": s,
             "prompt_last": p, "response_mean": m}
            for r, s, p, m in zip(records, scores, proj["prompt_last"], proj["response"])
        ],
    }


def load_screen_data(path: str | Path) -> list[list[Message]]:
    """Conversations from JSONL lines ``{"messages": [...]}`` whose last message is the assistant's."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    conversations = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFormatError(f"{source}: invalid JSON ({exc})") from None
        if not isinstance(data, dict) or "messages" not in data:
            raise InputFormatError(f"{source}: expected an object with a field 'messages'")
        conversation = data["messages"]
        validate_messages(conversation, f"{source} field 'messages'")
        if conversation[-1]["role"] != "assistant" or len(conversation) < 2:
            raise InputFormatError(f"{source}: field 'messages' must end with an assistant message after a prompt")
        if not conversation[-1]["content"].strip():
            raise InputFormatError(f"{source}: the last assistant message is empty")
        conversations.append(conversation)
    if not conversations:
        raise InputFormatError(f"{path}: no conversations")
    return conversations


def screen(
    model, conversations: Sequence[Sequence[Message]], vector: LayerVectors, layer: int, cache: JsonlCache,
    sampling: Sampling = Sampling(max_new_tokens=48), progress: bool = True,
) -> dict[str, Any]:
    """Per-sample ΔP and its mean; the model's own responses y′ are generated once and cached."""
    items = [(cache_key(prompt=list(c[:-1]), sampling=sampling.__dict__), list(c[:-1])) for c in conversations]

    def work(batch: list[list[Message]]) -> list[dict[str, Any]]:
        return [{"response": text} for text in generate_responses(model, batch, sampling, progress=False)]

    own = [r["response"] for r in run_cached(cache, items, work, 8, "screen: model's own responses", progress)]
    kept = [i for i, text in enumerate(own) if text.strip()]
    unit = vector.unit(layer)
    data_chats = [format_conversation(model.tokenizer, conversations[i]) for i in kept]
    own_chats = [format_conversation(model.tokenizer, [*conversations[i][:-1], {"role": "assistant", "content": own[i]}]) for i in kept]
    data_proj = extract_means(model, data_chats, [layer], progress=progress)[:, 0] @ unit
    own_proj = extract_means(model, own_chats, [layer], progress=progress)[:, 0] @ unit
    delta = dict(zip(kept, (data_proj - own_proj).tolist()))
    samples = [
        {"index": i, "delta_p": delta.get(i), "response": c[-1]["content"], "own_response": own[i]}
        for i, c in enumerate(conversations)
    ]
    values = [s["delta_p"] for s in samples if s["delta_p"] is not None]
    return {"layer": layer, "mean_delta_p": float(np.mean(values)) if values else None, "n": len(values), "samples": samples}
