"""Figure 3: plain, steered, capped and sampled generation against Hugging Face ``generate``, KV cache on.

EOS is ignored (``Sampling(stop_at_eos=False)``; ``min_new_tokens`` for ``generate``) so every variant
produces exactly the same number of tokens and tokens/s ratios are time ratios. The reference is
``transformers``' own ``generate`` on the Hugging Face model the hooked model was built from, on the
same left-padded prompts in the same run: greedy for plain/steered/capped, and temperature 0.7 with
top-p 0.9 (top-k off, as ours) for sampled. The steering direction is a fixed random vector: the cost
of a hook does not depend on its values. Capping spans a block of layers around the middle, as the
Assistant Axis paper caps over a layer range.
"""

from __future__ import annotations

from typing import Sequence

import torch

from workbench.benchmark.measure import interleaved
from workbench.forward import pad_token_id
from workbench.generate import Sampling, generate_tokens, pad_left
from workbench.hooks import AddVector, CapProjection, Intervention

OURS = ("plain", "steered", "capped", "sampled")
SAMPLED = {"temperature": 0.7, "top_p": 0.9}


def interventions(d_model: int, mid_layer: int, cap_layers: int) -> dict[str, list[Intervention]]:
    """The compared variants: none, additive steering at one layer, capping over a layer range."""
    direction = torch.randn(d_model, generator=torch.Generator().manual_seed(0))
    cap_range = range(max(0, mid_layer - cap_layers // 2), mid_layer - cap_layers // 2 + cap_layers)
    return {
        "plain": [],
        "steered": [AddVector({mid_layer: direction}, coefficient=2.0, where="response")],
        "capped": [CapProjection({layer: direction for layer in cap_range},
                                 {layer: 0.0 for layer in cap_range}, mode="floor")],
    }


def _hf_generate(hf_model, prompts: Sequence[Sequence[int]], pad_id: int, new_tokens: int, batch_size: int,
                 sampled: bool) -> int:
    """Plain ``generate`` over the prompts in batches; the number of tokens it produced."""
    settings = dict(do_sample=True, top_k=0, **SAMPLED) if sampled else dict(do_sample=False)
    count = 0
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            tokens, mask = pad_left(prompts[start : start + batch_size], pad_id)
            out = hf_model.generate(input_ids=tokens.to(hf_model.device), attention_mask=mask.to(hf_model.device),
                                    max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=pad_id,
                                    **settings)
            count += out[:, tokens.shape[1]:].numel()
    return count


def measure_generation(
    model, hf_model, prompts: Sequence[Sequence[int]], mid_layer: int, new_tokens: int, batch_size: int,
    cap_layers: int, repeats: int, progress: bool = True,
) -> dict:
    """Tokens/s of each variant (min and median over repeats), ours ÷ ``generate`` and intervened ÷ plain."""
    greedy = Sampling(max_new_tokens=new_tokens, stop_at_eos=False)
    sampled = Sampling(max_new_tokens=new_tokens, stop_at_eos=False, **SAMPLED)
    variants = interventions(model.cfg.d_model, mid_layer, cap_layers)
    pad_id = pad_token_id(model.tokenizer)
    counts: dict[str, int] = {}

    def ours(name: str) -> None:
        sampling, hooks = (sampled, []) if name == "sampled" else (greedy, variants[name])
        out = generate_tokens(model, prompts, sampling, hooks, batch_size=batch_size, progress=False)
        counts[name] = sum(len(t) for t in out)

    def reference(name: str) -> None:
        counts[name] = _hf_generate(hf_model, prompts, pad_id, new_tokens, batch_size, name.endswith("sampled"))

    runs = {name: (lambda name=name: ours(name)) for name in OURS}
    runs |= {name: (lambda name=name: reference(name)) for name in ("hf_generate", "hf_generate_sampled")}
    ours("plain")  # warm-up
    reference("hf_generate")
    timings = interleaved(runs, repeats, "bench generation", progress)
    n_tokens = len(prompts) * new_tokens
    if any(count != n_tokens for count in counts.values()):
        raise RuntimeError(f"token counts differ between variants: {counts}, expected {n_tokens} each")

    def ratios(of) -> dict:
        pairs = {f"{name}_vs_plain_tokens_per_s": ("plain", name) for name in ("steered", "capped")}
        pairs |= {f"{name}_vs_hf_generate_tokens_per_s": ("hf_generate", name) for name in ("plain", "steered", "capped")}
        pairs["sampled_vs_hf_generate_sampled_tokens_per_s"] = ("hf_generate_sampled", "sampled")
        return {key: of(timings[base]) / of(timings[name]) for key, (base, name) in pairs.items()}

    return {
        "prompts": len(prompts),
        "batch_size": batch_size,
        "new_tokens": new_tokens,
        "cap_layers": cap_layers,
        "sampled": SAMPLED,
        "timings": {name: t.to_json() for name, t in timings.items()},
        "tokens_per_s": {name: {"best": n_tokens / t.min, "median": n_tokens / t.median}
                         for name, t in timings.items()},
        "ratios": ratios(lambda t: t.min),
        "ratios_cpu_time": ratios(lambda t: t.cpu_min),
        "ratios_of_medians": ratios(lambda t: t.median),
    }
