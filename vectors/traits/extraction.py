"""Trait vectors per layer: mean(positive) − mean(negative) activations, and persona_vectors imports.

Three readings of the same contrastive pairs, as in the paper: the mean over response tokens
(``response``, the one it steers with), over the prompt (``prompt``), and at the last prompt token
(``prompt_last``, what monitoring reads before a single response token exists). All come from one
batched extraction per reading (:func:`workbench.extract.extract_means`) at every layer.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor

from workbench.artifacts import LayerVectors, check_vector_shape, inputs_hash, load_pt_tensors, provenance
from workbench.chat import format_conversation, messages
from workbench.errors import InputFormatError, ShapeError
from workbench.extract import Selection, extract_means
from workbench.layers import from_hidden_states_index

SELECTIONS: tuple[Selection, ...] = ("response", "prompt", "prompt_last")


def record_chats(model, records: Sequence[dict[str, Any]]):
    """Chat tokens of generated records (system, question, response)."""
    return [format_conversation(model.tokenizer, messages(r["system"], r["question"], r["response"])) for r in records]


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


def import_persona_vectors_pt(path: str, n_layers: int, d_model: int, trait: str | None = None) -> LayerVectors:
    """A persona_vectors ``.pt`` vector set [n_layers + 1, d_model] as our [n_layers, d_model].

    Its row ``i`` is Hugging Face ``hidden_states[i]``: row 0 is the embedding output (no block of
    ours) and row ``i ≥ 1`` is our layer ``i − 1``. Loaded with ``weights_only=True``.
    """
    tensor = load_pt_tensors(path)
    if not isinstance(tensor, Tensor):
        raise InputFormatError(f"{path}: expected one tensor [n_layers + 1, d_model], found {type(tensor).__name__}")
    if tensor.ndim != 2 or tuple(tensor.shape) != (n_layers + 1, d_model):
        raise ShapeError(
            f"{path}: tensor has shape {tuple(tensor.shape)}; a persona_vectors file for this model is "
            f"[n_layers + 1, d_model] = [{n_layers + 1}, {d_model}] (row i = hidden_states[i])"
        )
    rows = [from_hidden_states_index(i) for i in range(1, n_layers + 1)]
    vectors = check_vector_shape(tensor[1:].float(), n_layers, d_model, str(path))
    return LayerVectors(vectors, provenance(
        method="imported persona_vectors .pt", trait=trait, source=str(path),
        layer_convention=f"row L = blocks.L.hook_resid_post (file rows 1..{n_layers} -> layers {rows[0]}..{rows[-1]})",
    ))

