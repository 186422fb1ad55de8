"""Figure 3: steered and capped greedy generation against plain generation, KV cache on.

EOS is ignored (``Sampling(stop_at_eos=False)``) so every variant produces exactly the same number
of tokens and tokens/s ratios are time ratios. The steering direction is a fixed random vector: the
cost of a hook does not depend on its values. Capping spans a block of layers around the middle,
as the Assistant Axis paper caps over a layer range.
"""

from __future__ import annotations

from typing import Sequence

import torch

from workbench.benchmark.measure import interleaved
from workbench.generate import Sampling, generate_tokens
from workbench.hooks import AddVector, CapProjection, Intervention


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


def measure_generation(
    model, prompts: Sequence[Sequence[int]], mid_layer: int, new_tokens: int, batch_size: int,
    cap_layers: int, repeats: int, progress: bool = True,
) -> dict:
    """Tokens/s of each variant (min and median over repeats) and steered/capped ÷ plain."""
    sampling = Sampling(max_new_tokens=new_tokens, stop_at_eos=False)
    variants = interventions(model.cfg.d_model, mid_layer, cap_layers)
    counts: dict[str, int] = {}

    def run(name: str) -> None:
        out = generate_tokens(model, prompts, sampling, variants[name], batch_size=batch_size, progress=False)
        counts[name] = sum(len(t) for t in out)

    run("plain")  # warm-up
    timings = interleaved({name: (lambda name=name: run(name)) for name in variants}, repeats,
                          "bench generation", progress)
    n_tokens = len(prompts) * new_tokens
    if any(count != n_tokens for count in counts.values()):
        raise RuntimeError(f"token counts differ between variants: {counts}, expected {n_tokens} each")
    return {
        "prompts": len(prompts),
        "batch_size": batch_size,
        "new_tokens": new_tokens,
        "cap_layers": cap_layers,
        "timings": {name: t.to_json() for name, t in timings.items()},
        "tokens_per_s": {name: {"best": n_tokens / t.min, "median": n_tokens / t.median}
                         for name, t in timings.items()},
        "ratios": {f"{name}_vs_plain_tokens_per_s": timings["plain"].min / timings[name].min
                   for name in ("steered", "capped")},
        "ratios_cpu_time": {f"{name}_vs_plain_tokens_per_s": timings["plain"].cpu_min / timings[name].cpu_min
                            for name in ("steered", "capped")},
        "ratios_of_medians": {f"{name}_vs_plain_tokens_per_s": timings["plain"].median / timings[name].median
                              for name in ("steered", "capped")},
    }
