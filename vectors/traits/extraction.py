"""Trait vectors per layer: mean(positive) − mean(negative) activations.

Three readings of the same contrastive pairs, as in the paper: the mean over response tokens
(``response``, the one it steers with), over the prompt (``prompt``), and at the last prompt token
(``prompt_last``, what monitoring reads before a single response token exists). All come from one
batched extraction per reading (:func:`workbench.extract.extract_means`) at every layer.
"""

from __future__ import annotations

from typing import Any, Sequence

from workbench.artifacts import LayerVectors, inputs_hash, provenance
from workbench.errors import InputFormatError
from workbench.extract import Selection, extract_means
from workbench.responses import record_chats

SELECTIONS: tuple[Selection, ...] = ("response", "prompt", "prompt_last")


def extract_trait_vectors(
    model,
    pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    trait: str,
    selections: Sequence[Selection] = SELECTIONS,
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, LayerVectors]:
    """Per selection, the [n_layers, d_model] difference of mean activations, with provenance."""
    if not pairs:
        raise InputFormatError(f"trait {trait!r}: no contrastive pairs left to extract from (all filtered out?)")
    layers = list(range(model.cfg.n_layers))
    chats = record_chats(model, [p for p, _ in pairs] + [n for _, n in pairs])
    out = {}
    for select in selections:
        means = extract_means(model, chats, layers, select=select, batch_size=batch_size, progress=progress)
        diff = means[: len(pairs)].mean(0) - means[len(pairs) :].mean(0)
        out[select] = LayerVectors(diff, provenance(
            method=f"trait vector ({select} mean, pos - neg)", trait=trait, model=model.cfg.model_name,
            selection=select, n_pairs=len(pairs), layer_convention="row L = blocks.L.hook_resid_post",
            inputs=inputs_hash([(p["key"], n["key"]) for p, n in pairs]),
        ))
    return out
