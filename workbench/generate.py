"""Local batched generation with the hooked model, interventions active, KV cache on or off.

Prompts are left-padded with an explicit attention mask (TransformerLens offsets rotary positions
by it). During decode steps the shared :class:`~workbench.hooks.Positions` says ``decoding=True``,
so interventions on "response" positions reach every generated token; without the cache the same
positions are marked in ``response_mask``, so both paths steer identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from workbench.chat import Message, format_prompt, stop_token_ids
from workbench.errors import InputFormatError
from workbench.hooks import Intervention, Positions, apply


@dataclass(frozen=True)
class Sampling:
    """Decoding settings. ``temperature == 0`` means greedy.

    ``stop_at_eos=False`` always generates ``max_new_tokens`` (benchmarks need equal token counts).
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop_at_eos: bool = True

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise InputFormatError(f"max_new_tokens must be ≥ 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise InputFormatError(f"need temperature ≥ 0 and 0 < top_p ≤ 1, got {self.temperature}, {self.top_p}")


def _pad_left(prompts: Sequence[Sequence[int]], pad_id: int):
    width = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        tokens[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return tokens, mask


def _next_tokens(
    logits: Float[Tensor, "batch vocab"], sampling: Sampling, generator: torch.Generator
) -> Int[Tensor, " batch"]:
    if sampling.temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(dim=-1) - sorted_probs > sampling.top_p
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


def generate_tokens(
    model,
    prompts: Sequence[Sequence[int]],
    sampling: Sampling = Sampling(),
    interventions: Sequence[Intervention] = (),
    use_cache: bool = True,
    batch_size: int = 8,
    progress: bool = True,
) -> list[tuple[int, ...]]:
    """New token ids for each prompt, cut before the first stop token (EOS / end of turn)."""
    all_stops = torch.tensor(stop_token_ids(model.tokenizer))
    stops = all_stops if sampling.stop_at_eos else all_stops[:0]
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else int(all_stops[0])
    generator = torch.Generator().manual_seed(sampling.seed)
    device = model.cfg.device
    results: list[tuple[int, ...]] = []
    batches = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]
    with torch.inference_mode(), apply(model, interventions) as positions:
        for batch in tqdm(batches, desc="generate", disable=not progress, unit="batch"):
            tokens, mask = _pad_left(batch, pad_id)
            tokens, mask = tokens.to(device), mask.to(device)
            new = torch.empty(len(batch), 0, dtype=torch.long, device=device)
            done = torch.zeros(len(batch), dtype=torch.bool, device=device)
            cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, len(batch)) if use_cache else None
            positions.decoding = False
            positions.response_mask = torch.zeros_like(mask, dtype=torch.bool)
            logits = model(tokens, attention_mask=mask, past_kv_cache=cache)[:, -1]
            for _ in range(sampling.max_new_tokens):
                step = _next_tokens(logits, sampling, generator)
                step = torch.where(done, torch.full_like(step, pad_id), step)
                new = torch.cat([new, step[:, None]], dim=1)
                done |= torch.isin(step, stops.to(device))
                if done.all():
                    break
                if use_cache:
                    positions.decoding = True
                    logits = model(step[:, None], attention_mask=torch.ones_like(step[:, None]), past_kv_cache=cache)[:, -1]
                else:
                    full = torch.cat([tokens, new], dim=1)
                    full_mask = torch.cat([mask, torch.ones_like(new)], dim=1)
                    positions.response_mask = torch.cat(
                        [torch.zeros_like(mask, dtype=torch.bool), torch.ones_like(new, dtype=torch.bool)], dim=1
                    )
                    logits = model(full, attention_mask=full_mask)[:, -1]
            for row in new.tolist():
                cut = next((i for i, t in enumerate(row) if t in set(stops.tolist())), len(row))
                results.append(tuple(row[:cut]))
    return results


def generate_responses(
    model,
    conversations: Sequence[Sequence[Message]],
    sampling: Sampling = Sampling(),
    interventions: Sequence[Intervention] = (),
    use_cache: bool = True,
    batch_size: int = 8,
    progress: bool = True,
) -> list[str]:
    """Assistant replies (text) to each conversation, formatted with the model's chat template."""
    prompts = [format_prompt(model.tokenizer, c) for c in conversations]
    ids = generate_tokens(model, prompts, sampling, interventions, use_cache, batch_size, progress)
    return [model.tokenizer.decode(list(t), skip_special_tokens=True).strip() for t in ids]
