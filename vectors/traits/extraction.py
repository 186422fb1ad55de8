"""Trait vectors per layer: mean(positive) − mean(negative) activations.

Three readings of the same contrastive pairs, as in the paper: the mean over response tokens
(``response``, the one it steers with), over the prompt (``prompt``), and at the last prompt token
(``prompt_last``, what monitoring reads before a single response token exists). All come from one
batched extraction per reading (:func:`workbench.extract.sharded_means`) at every layer, chunk by
chunk over the ranks of a ``torchrun`` run when one is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from workbench.artifacts import LayerVectors, inputs_hash, provenance
from workbench.errors import InputFormatError
from workbench.distributed import DEFAULT_CHUNK, SINGLE, ChunkStore, Shard
from workbench.extract import Selection, sharded_means
from workbench.responses import record_chats

SELECTIONS: tuple[Selection, ...] = ("response", "prompt", "prompt_last")


def extract_trait_vectors(
    model,
    pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    trait: str,
    selections: Sequence[Selection] = SELECTIONS,
    batch_size: int = 16,
    progress: bool = True,
    chunk: int = DEFAULT_CHUNK,
    store_dir: Path | None = None,
    shard: Shard = SINGLE,
) -> dict[str, LayerVectors] | None:
    """Per selection, the [n_layers, d_model] difference of mean activations, with provenance.

    ``store_dir``: where finished chunks are kept (resume; needed with a distributed ``shard``).
    Ranks other than 0 of a distributed run return None.
    """
    if not pairs:
        raise InputFormatError(f"trait {trait!r}: no contrastive pairs left to extract from (all filtered out?)")
    layers = list(range(model.cfg.n_layers))
    records = [p for p, _ in pairs] + [n for _, n in pairs]
    key = inputs_hash([r["key"] for r in records], [r["response"] for r in records], chunk, batch_size)
    out = {}
    for select in selections:
        store = None if store_dir is None else ChunkStore(Path(store_dir) / f"trait_{trait}_{select}", key)
        means = sharded_means(model, len(records), lambda a, b: record_chats(model, records[a:b]), layers, select,
                              batch_size, chunk, store, shard, progress)
        if means is None:
            continue
        diff = means[: len(pairs)].mean(0) - means[len(pairs) :].mean(0)
        out[select] = LayerVectors(diff, provenance(
            method=f"trait vector ({select} mean, pos - neg)", trait=trait, model=model.cfg.model_name,
            selection=select, n_pairs=len(pairs), layer_convention="row L = blocks.L.hook_resid_post",
            inputs=inputs_hash([(p["key"], n["key"]) for p, n in pairs]),
        ))
    return out or None
