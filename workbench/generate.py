"""Local batched generation with interventions active, KV cache on or off.

Two engines run the same loop. A hooked model built from an in-memory Hugging Face model (the
shipped one, a local folder) carries that model as its *twin*, sharing the weights
(:func:`workbench.models.hf_twin`); generation then runs on the twin with Hugging Face's attention
and ``DynamicCache``, the interventions installed as forward hooks on its decoder layers by the
same :func:`~workbench.hooks.apply` (``workbench bench`` compares it with plain ``transformers``
``generate`` in the same run; TransformerLens' eager decoding was 2.1× slower, issue 20). A hooked model
without a twin (hub models loaded by TransformerLens) generates with TransformerLens and its cache.
Greedy outputs agree token for token between the two (tests/test_generate_hf.py).

Prompts are left-padded with an explicit attention mask (rotary positions count real tokens only,
in both engines). During decode steps the shared :class:`~workbench.hooks.Positions` says
``decoding=True``, so interventions on "response" positions reach every generated token; without
the cache the same positions are marked in ``response_mask``, so both paths steer identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from workbench.chat import Message, format_prompt, stop_token_ids
from workbench.errors import InputFormatError
from workbench.forward import pad_token_id
from workbench.hooks import Intervention, apply
from workbench.models import hf_twin

Engine = Literal["auto", "hooked", "hf"]


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


def pad_left(
    prompts: Sequence[Sequence[int]], pad_id: int
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Token ids left-padded to the longest prompt, and the attention mask (1 = real token)."""
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
        probs = _nucleus(probs, sampling.top_p)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


_NUCLEUS_CANDIDATES = 1024


def _nucleus(probs: Float[Tensor, "batch vocab"], top_p: float) -> Float[Tensor, "batch vocab"]:
    """``probs`` with every token outside the top-p nucleus set to 0 (vocabulary order kept).

    The nucleus is found among the 1024 most probable tokens (``topk``: a tenth of the time of
    sorting a 49k vocabulary, the largest cost of a sampled step); only when those hold no more
    than ``top_p`` of the mass does it sort the whole vocabulary. Same result either way.
    """
    sorted_probs, order = probs.topk(min(_NUCLEUS_CANDIDATES, probs.shape[-1]), dim=-1)
    cumulative = sorted_probs.cumsum(dim=-1)
    if (cumulative[:, -1] <= top_p).any():
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cumulative = sorted_probs.cumsum(dim=-1)
    outside = cumulative - sorted_probs > top_p
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(outside, 0))


class _HookedSteps:
    """Forward passes of one batch on the TransformerLens model (its own KV cache)."""

    def __init__(self, model, batch: int, use_cache: bool):
        self.model = model
        self.cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, batch) if use_cache else None

    def prefill(self, tokens: Int[Tensor, "batch pos"], mask: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch vocab"]:
        return self.model(tokens, attention_mask=mask, past_kv_cache=self.cache)[:, -1]

    def decode(self, step: Int[Tensor, " batch"]) -> Float[Tensor, "batch vocab"]:
        return self.model(step[:, None], attention_mask=torch.ones_like(step[:, None]), past_kv_cache=self.cache)[:, -1]


class _HFSteps:
    """Forward passes of one batch on a Hugging Face model: ``DynamicCache``, last-position logits only.

    Position ids count real tokens (``cumsum(mask) − 1``), as ``generate`` and TransformerLens do.
    """

    def __init__(self, model, batch: int, use_cache: bool):
        from transformers import DynamicCache

        self.model = model
        self.use_cache = use_cache
        self.cache = DynamicCache(config=model.config) if use_cache else None
        self.mask: Tensor | None = None

    def prefill(self, tokens: Int[Tensor, "batch pos"], mask: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch vocab"]:
        self.mask = mask
        return self._forward(tokens)

    def decode(self, step: Int[Tensor, " batch"]) -> Float[Tensor, "batch vocab"]:
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        return self._forward(step[:, None])

    def _forward(self, tokens: Int[Tensor, "batch new"]) -> Float[Tensor, "batch vocab"]:
        position_ids = (self.mask.cumsum(dim=1) - 1).clamp(min=0)[:, -tokens.shape[1]:]
        out = self.model(input_ids=tokens, attention_mask=self.mask, position_ids=position_ids,
                         past_key_values=self.cache, use_cache=self.use_cache, logits_to_keep=1)
        return out.logits[:, -1]


def _engine(model, engine: Engine):
    """The model generation runs on (the hooked model or its Hugging Face twin) and its step class."""
    twin = hf_twin(model) if engine != "hooked" else None
    if engine == "hf" and twin is None:
        raise InputFormatError("engine='hf' needs a hooked model built from a Hugging Face model (no twin here)")
    return (twin, _HFSteps) if twin is not None else (model, _HookedSteps)


def generate_tokens(
    model,
    prompts: Sequence[Sequence[int]],
    sampling: Sampling = Sampling(),
    interventions: Sequence[Intervention] = (),
    use_cache: bool = True,
    batch_size: int = 8,
    progress: bool = True,
    *,
    engine: Engine = "auto",
) -> list[tuple[int, ...]]:
    """New token ids for each prompt, cut before the first stop token (EOS / end of turn).

    ``engine``: ``"auto"`` runs on the Hugging Face twin where the model has one, else on the
    hooked model; ``"hooked"`` / ``"hf"`` force one (tests compare them token for token).
    """
    all_stops = torch.tensor(stop_token_ids(model.tokenizer))
    stops = all_stops if sampling.stop_at_eos else all_stops[:0]
    pad_id = pad_token_id(model.tokenizer)
    generator = torch.Generator().manual_seed(sampling.seed)
    runner, steps_class = _engine(model, engine)
    device = model.cfg.device
    results: list[tuple[int, ...]] = []
    batches = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]
    with torch.inference_mode(), apply(runner, interventions) as positions:
        for batch in tqdm(batches, desc="generate", disable=not progress, unit="batch"):
            tokens, mask = pad_left(batch, pad_id)
            tokens, mask = tokens.to(device), mask.to(device)
            new = torch.empty(len(batch), 0, dtype=torch.long, device=device)
            done = torch.zeros(len(batch), dtype=torch.bool, device=device)
            steps = steps_class(runner, len(batch), use_cache)
            positions.decoding = False
            positions.response_mask = torch.zeros_like(mask, dtype=torch.bool)
            logits = steps.prefill(tokens, mask)
            for _ in range(sampling.max_new_tokens):
                step = _next_tokens(logits, sampling, generator)
                step = torch.where(done, torch.full_like(step, pad_id), step)
                new = torch.cat([new, step[:, None]], dim=1)
                done |= torch.isin(step, stops.to(device))
                if done.all():
                    break
                if use_cache:
                    positions.decoding = True
                    logits = steps.decode(step)
                else:
                    positions.response_mask = torch.cat(
                        [torch.zeros_like(mask, dtype=torch.bool), torch.ones_like(new, dtype=torch.bool)], dim=1
                    )
                    logits = steps_class(runner, len(batch), False).prefill(
                        torch.cat([tokens, new], dim=1), torch.cat([mask, torch.ones_like(new)], dim=1))
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
