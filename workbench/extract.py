"""Batched extraction of per-sequence mean activations, many layers in one pass.

Sequences are sorted by length, right-padded and run in batches with ``stop_at_layer`` just past
the deepest requested layer (no later blocks, no unembedding). Right padding needs no attention
mask in a causal model: real tokens never attend to the pads that follow them, so a batched mean
equals the unbatched one. Only [batch, d_model] sums per layer are kept, never a full cache.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from workbench.chat import ChatTokens
from workbench.errors import InputFormatError
from workbench.hooks import Intervention, MeanCapture, Positions, apply
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


def pad_right(
    sequences: Sequence[Sequence[int]], pad_id: int
) -> Int[Tensor, "batch pos"]:
    """Right-pad token id sequences into one tensor."""
    width = max(len(s) for s in sequences)
    out = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


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
    for i, (chat, mask) in enumerate(zip(chats, masks)):
        if not mask.any():
            raise InputFormatError(f"sequence {i}: no {select} tokens to average (empty response?)")
        if len(chat) > model.cfg.n_ctx:
            raise InputFormatError(f"sequence {i}: {len(chat)} tokens exceed the context of {model.cfg.n_ctx}")
    # Tokens after the last selected one cannot change it (causal attention), so they are not run:
    # the template's end-of-turn tokens for responses, the whole reply for prompt selections.
    ends = [int(mask.nonzero().max()) + 1 for mask in masks]
    order = sorted(range(len(chats)), key=lambda i: ends[i])
    capture = MeanCapture(layers)
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    device = model.cfg.device
    out = torch.empty(len(chats), len(layers), model.cfg.d_model)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.inference_mode(), apply(model, [*interventions, capture]) as positions:
        for batch in tqdm(batches, desc=f"extract {select} means", disable=not progress, unit="batch"):
            tokens = pad_right([chats[i].ids[: ends[i]] for i in batch], pad_id).to(device)
            capture.mask = pad_right([masks[i][: ends[i]].tolist() for i in batch], 0).bool()
            positions.response_mask = pad_right([chats[i].response_mask()[: ends[i]].tolist() for i in batch], 0).bool()
            model(tokens, stop_at_layer=max(layers) + 1)
            out[batch] = capture.means()
    return out
