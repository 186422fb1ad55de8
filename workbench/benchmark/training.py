"""Figure: one LoRA training step (:mod:`workbench.train`) beside the plain forward pass, in tokens/s.

Three variants on the same batch of chat-formatted conversations cut to ``max_tokens``:
``forward`` (the batched forward primitive to the logits, no autograd), ``lora_step`` (the
workbench's step: adapters on layers ≥ ``first_layer`` so backward stops there, logits only at
response positions) and ``lora_step_naive`` (adapters on every layer, the unembedding over every
position, as a plain ``model(input_ids, labels=...)`` step would run). Tokens/s counts every token
of the batch for all three, so the ratios are the cost per token.
"""

from __future__ import annotations

from typing import Sequence

import torch

from workbench.benchmark.measure import interleaved
from workbench.chat import ChatTokens
from workbench.forward import iter_batches
from workbench.train import LoraConfig, _batch, lora_model, response_loss


def measure_training(model, hf_model, chats: Sequence[ChatTokens], first_layer: int, max_tokens: int,
                     repeats: int, progress: bool = True) -> dict:
    """Timings and tokens/s of the forward pass, the workbench's LoRA step and the naive one."""
    tokens, mask = _batch(chats, range(len(chats)), max_tokens, 0)
    n_tokens = int(tokens.numel())
    lengths = [min(len(c), max_tokens) for c in chats]
    fast = lora_model(hf_model, LoraConfig(first_layer=first_layer))
    naive = lora_model(hf_model, LoraConfig(first_layer=0))
    optimizers = {name: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
                  for name, m in (("fast", fast), ("naive", naive))}

    def step(name: str, loss_fn) -> None:
        optimizers[name].zero_grad()
        loss_fn().backward()
        optimizers[name].step()

    def naive_loss():
        labels = tokens.masked_fill(~mask, -100)
        return naive(input_ids=tokens, labels=labels).loss

    timings = interleaved(
        {
            "forward": lambda: [None for _ in iter_batches(model, chats, batch_size=len(chats), lengths=lengths)],
            "lora_step": lambda: step("fast", lambda: response_loss(fast, tokens, mask)),
            "lora_step_naive": lambda: step("naive", naive_loss),
        },
        repeats, "bench training", progress,
    )
    return {
        "batch": len(chats), "max_tokens": max_tokens, "tokens": n_tokens, "first_layer": first_layer,
        "timings": {name: t.to_json() for name, t in timings.items()},
        "tokens_per_s": {name: {"best": n_tokens / t.min, "median": n_tokens / t.median} for name, t in timings.items()},
    }
