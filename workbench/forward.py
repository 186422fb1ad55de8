"""The one batched forward pass over chat-formatted sequences: every full-sequence read is built on it.

Extraction of mean activations, response log-likelihoods, activation norms, SAE token activations
and the extraction benchmark all run many conversations through the hooked model, and they share
rules that are written here once:

- **Sorting and batching**: sequences are sorted by the length that is run (stable, so ties keep
  the caller's order) and cut into batches of ``batch_size``; each batch says which input sequences
  its rows are (``ForwardBatch.indices``), so callers write results back in their own order.
- **Right padding** with :func:`pad_token_id`. A causal model needs no attention mask for it: a
  real token never attends to the pads that follow it, so each row equals its unbatched pass (up to
  the float rounding of different matrix shapes).
- **Positions**: ``response_mask`` comes from the chat spans, so an intervention with
  ``where="response"`` steers the same tokens here as in generation; ``read_mask`` carries the
  caller's per-sequence token selection to readers such as :class:`~workbench.hooks.MeanCapture`.
- **Only what is needed runs**: ``lengths`` cuts each sequence (later tokens cannot change earlier
  ones), ``stop_at_layer`` stops after block ``stop_at_layer - 1`` (no later blocks, no unembedding).
- **Scope**: each pass runs under ``torch.inference_mode`` with the interventions installed by
  :func:`workbench.hooks.apply`; both end before the batch is handed to the caller, so no hook and
  no inference mode outlives a pass, whether the caller finishes, stops early or raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from workbench.chat import ChatTokens
from workbench.errors import InputFormatError
from workbench.hooks import Intervention, Positions, apply


def pad_token_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else 0.

    The value never reaches a real token's result (right pads come after every real token of a
    causal model's row; left pads are masked out), so any valid id serves where none is set.
    """
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> Int[Tensor, "batch pos"]:
    """Right-pad integer sequences (token ids, or 0/1 masks) into one tensor."""
    width = max(len(s) for s in sequences)
    out = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def plan_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of the sequences in each batch: sorted by length (stable), ``batch_size`` at a time."""
    if batch_size < 1:
        raise InputFormatError(f"batch_size must be ≥ 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@dataclass(frozen=True)
class ForwardBatch:
    """One pass that has run: which input sequences its rows are, what was run, what came out.

    ``output`` is the model's return value: logits ``[batch, pos, d_vocab]``, or with
    ``stop_at_layer=L`` the residual stream after block ``L - 1`` ``[batch, pos, d_model]``.
    Interventions (captures included) saw this pass; read them before the next batch.
    """

    indices: tuple[int, ...]
    tokens: Int[Tensor, "batch pos"]
    lengths: tuple[int, ...]
    response_mask: Bool[Tensor, "batch pos"]
    output: Float[Tensor, "batch pos d_out"]


def iter_batches(
    model,
    chats: Sequence[ChatTokens],
    interventions: Sequence[Intervention] = (),
    *,
    batch_size: int = 16,
    stop_at_layer: int | None = None,
    lengths: Sequence[int] | None = None,
    read_masks: Sequence[Bool[Tensor, " pos"]] | None = None,
    progress: bool = False,
    desc: str = "forward",
) -> Iterator[ForwardBatch]:
    """Run ``chats`` through ``model`` in sorted, right-padded batches; yield each pass.

    ``lengths[i]``: run only the first ``lengths[i]`` tokens of chat ``i`` (default: all of it).
    ``read_masks[i]``: the tokens of chat ``i`` a reader averages (``Positions.read_mask``).
    Raises InputFormatError naming the sequence when one exceeds the model's context.
    """
    lengths = [len(chat) for chat in chats] if lengths is None else list(lengths)
    if len(lengths) != len(chats) or (read_masks is not None and len(read_masks) != len(chats)):
        raise InputFormatError(f"{len(chats)} chats but {len(lengths)} lengths / read masks")
    for i, n in enumerate(lengths):
        if n > model.cfg.n_ctx:
            raise InputFormatError(f"sequence {i}: {n} tokens exceed the context of {model.cfg.n_ctx}")
    pad_id = pad_token_id(model.tokenizer)
    positions = Positions()
    for batch in tqdm(plan_batches(lengths, batch_size), desc=desc, disable=not progress, unit="batch"):
        tokens = pad_right([chats[i].ids[: lengths[i]] for i in batch], pad_id).to(model.cfg.device)
        response_mask = pad_right([chats[i].response_mask()[: lengths[i]].tolist() for i in batch], 0).bool()
        positions.response_mask = response_mask
        if read_masks is not None:
            positions.read_mask = pad_right([read_masks[i][: lengths[i]].tolist() for i in batch], 0).bool()
        with torch.inference_mode(), apply(model, interventions, positions):
            output = model(tokens, stop_at_layer=stop_at_layer)
        yield ForwardBatch(tuple(batch), tokens, tuple(lengths[i] for i in batch), response_mask, output)
