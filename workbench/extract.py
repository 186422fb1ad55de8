"""Per-sequence mean activations, many layers in one pass.

Built on :func:`workbench.forward.iter_batches` (sorted, right-padded batches) with
``stop_at_layer`` just past the deepest requested layer and each sequence cut after its last
selected token. Only [batch, d_model] sums per layer are kept (:class:`~workbench.hooks.MeanCapture`),
never a full cache.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from workbench.chat import ChatTokens
from workbench.distributed import DEFAULT_CHUNK, SINGLE, ChunkStore, Shard, map_chunks, n_chunks
from workbench.errors import InputFormatError
from workbench.forward import iter_batches
from workbench.hooks import Intervention, MeanCapture
from workbench.layers import check_layer

Selection = Literal["response", "prompt", "prompt_last"]


def selection_mask(chat: ChatTokens, select: Selection) -> Bool[Tensor, " pos"]:
    """Tokens averaged for ``select``: the assistant text, everything before it, or its last token."""
    if select == "response":
        return chat.response_mask()
    prompt = chat.prompt_mask()
    if select == "prompt":
        return prompt
    last = torch.zeros_like(prompt)
    last[int(prompt.nonzero().max())] = True
    return last


def extract_means(
    model,
    chats: Sequence[ChatTokens],
    layers: Sequence[int],
    select: Selection = "response",
    batch_size: int = 16,
    interventions: Sequence[Intervention] = (),
    progress: bool = True,
) -> Float[Tensor, "n layer d_model"]:
    """Mean residual stream (``blocks.L.hook_resid_post``) over the selected tokens of each chat.

    ``interventions`` run before the capture at each layer (e.g. to read a steered model).
    """
    layers = tuple(check_layer(layer, model.cfg.n_layers) for layer in layers)
    masks = [selection_mask(chat, select) for chat in chats]
    for i, mask in enumerate(masks):
        if not mask.any():
            raise InputFormatError(f"sequence {i}: no {select} tokens to average (empty response?)")
    # Tokens after the last selected one cannot change it (causal attention), so they are not run:
    # the template's end-of-turn tokens for responses, the whole reply for prompt selections.
    ends = [int(mask.nonzero().max()) + 1 for mask in masks]
    capture = MeanCapture(layers)
    out = torch.empty(len(chats), len(layers), model.cfg.d_model)
    for batch in iter_batches(
        model, chats, [*interventions, capture], batch_size=batch_size, stop_at_layer=max(layers) + 1,
        lengths=ends, read_masks=masks, progress=progress, desc=f"extract {select} means",
    ):
        out[list(batch.indices)] = capture.means()
    return out


def sharded_means(
    model,
    n: int,
    chats_for: Callable[[int, int], Sequence[ChatTokens]],
    layers: Sequence[int],
    select: Selection = "response",
    batch_size: int = 16,
    chunk: int = DEFAULT_CHUNK,
    store: ChunkStore | None = None,
    shard: Shard = SINGLE,
    progress: bool = True,
) -> Float[Tensor, "n layer d_model"] | None:
    """:func:`extract_means` of ``n`` chats, ``chunk`` at a time, over the ranks of ``shard``.

    ``chats_for(start, stop)`` formats chats ``start:stop`` (only a chunk's chats are held at once).
    Each chunk is the same :func:`extract_means` call however many ranks run, so the result equals
    the single-process one. Rank 0 returns all ``n`` means in order; other ranks return None.
    """
    def compute(index: int) -> dict[str, Tensor]:
        start, stop = index * chunk, min(n, (index + 1) * chunk)
        return {"means": extract_means(model, chats_for(start, stop), layers, select, batch_size, progress=False)}

    results, _ = map_chunks(n_chunks(n, chunk), compute, store, shard, progress, desc=f"extract {select} means")
    return None if results is None else torch.cat([r["means"] for r in results])
