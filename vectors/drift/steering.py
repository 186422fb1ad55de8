"""Additive steering along a saved direction: one generation, or sweeps over coefficients.

Steering adds ``coefficient × vector`` (the raw, unnormalised direction, as the papers do) at the
chosen layers through :class:`~workbench.hooks.AddVector`. With the Assistant Axis
(mean(default) − mean(roles)) a **negative** coefficient pushes the model away from the Assistant
toward role-play, a positive one toward it. Sweeps are cached (JSONL), so re-runs are free.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from workbench.artifacts import LayerVectors
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.chat import messages
from workbench.errors import InputFormatError
from workbench.generate import Sampling, generate_responses
from workbench.hooks import AddVector, Where
from workbench.layers import check_layer


def vector_fingerprint(vectors: LayerVectors) -> str:
    """Short hash of a vector set's values, so cache keys change when the vector does."""
    return hashlib.sha256(vectors.vectors.float().contiguous().numpy().tobytes()).hexdigest()[:16]


def steering(vectors: LayerVectors, layers: Sequence[int], coefficient: float, where: Where = "all") -> AddVector:
    """``h ← h + coefficient · vectors[L]`` at each of ``layers``."""
    if not layers:
        raise InputFormatError("steering needs at least one layer")
    return AddVector({check_layer(layer, vectors.n_layers): vectors.at(layer).float() for layer in layers},
                     coefficient=coefficient, where=where)


def steer_sweep(
    model,
    vectors: LayerVectors,
    prompts: Sequence[str],
    layers: Sequence[int],
    coefficients: Sequence[float],
    cache: JsonlCache,
    sampling: Sampling = Sampling(max_new_tokens=48),
    system: str | None = None,
    where: Where = "all",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One response per (coefficient, prompt); rows ``{coefficient, prompt, response, layers}``."""
    fingerprint = vector_fingerprint(vectors)
    rows = []
    for coefficient in coefficients:
        intervention = steering(vectors, layers, coefficient, where)

        def work(batch: list[str]) -> list[dict[str, Any]]:
            convs = [messages(system, prompt) for prompt in batch]
            replies = generate_responses(model, convs, sampling, [intervention], progress=False)
            return [{"prompt": p, "response": r} for p, r in zip(batch, replies)]

        items = [(cache_key(kind="steer", model=model.cfg.model_name, vector=fingerprint, layers=list(layers),
                            coefficient=coefficient, where=where, system=system, prompt=p,
                            sampling=repr(sampling)), p) for p in prompts]
        for record in run_cached(cache, items, work, batch_size=8, desc=f"steer coef {coefficient:+g}",
                                 progress=progress):
            rows.append({"coefficient": coefficient, "layers": list(layers), "prompt": record["prompt"],
                         "response": record["response"]})
    return rows
