"""Layer × coefficient steering sweeps with a random-direction control band, and the choice of both.

Why coefficients are relative: a raw coefficient means different things at different layers (the
residual norm grows with depth), so ``coefficient = 0.1`` adds a vector whose norm is 10% of the
mean activation norm at that layer (response tokens of the extraction data). Every setting is also
run with random directions of the same norm at the same layer (fixed seeds): a trait vector's effect
only counts where it leaves that band. Each scored setting is one cached record, so a re-run or a
wider sweep computes only the new settings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.chat import ChatTokens
from workbench.forward import iter_batches
from workbench.generate import Sampling
from workbench.hooks import AddVector, TokenCapture, Where
from workbench.metrics import TraitExample, evaluate_steering, trait_metric
from workbench.artifacts import LayerVectors, inputs_hash


@dataclass(frozen=True)
class SweepConfig:
    """What to sweep and the coherence bounds a chosen setting must respect.

    ``max_perplexity_ratio``: perplexity at most this multiple of the unsteered one;
    ``max_repeated_share``: repeated word-trigram share of the generations at most this.
    """

    layers: tuple[int, ...]
    coefficients: tuple[float, ...] = (-0.1, 0.0, 0.05, 0.1, 0.15)
    n_random: int = 3
    seed: int = 0
    sampling: Sampling = Sampling(max_new_tokens=24)
    n_coherence_questions: int = 4
    random_coherence: bool = False
    where: Where = "all"
    max_perplexity_ratio: float = 2.0
    max_repeated_share: float = 0.25


def activation_norm(
    model, chats: Sequence[ChatTokens], layer: int, batch_size: int = 8
) -> float:
    """Mean L2 norm of the residual stream at ``layer`` over the response tokens of ``chats``
    (summed in the chats' order, so the batching leaves the float result unchanged)."""
    capture = TokenCapture((layer,))
    norms: list[Tensor] = [torch.empty(0)] * len(chats)
    for batch in iter_batches(model, chats, [capture], batch_size=batch_size, stop_at_layer=layer + 1):
        for row, i in enumerate(batch.indices):
            norms[i] = capture.values[layer][row][batch.response_mask[row]].norm(dim=-1)
    return float(torch.cat(norms).mean())


def random_direction(d_model: int, layer: int, index: int, seed: int) -> Float[Tensor, " d_model"]:
    """A unit random direction, fixed by (seed, layer, index)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + layer * 101 + index)
    direction = torch.randn(d_model, generator=generator)
    return direction / direction.norm()


def _directions(vector: LayerVectors, layer: int, config: SweepConfig) -> dict[str, Float[Tensor, " d_model"]]:
    directions = {"trait": vector.unit(layer)}
    for k in range(config.n_random):
        directions[f"random{k}"] = random_direction(vector.d_model, layer, k, config.seed)
    return directions


def run_sweep(
    model,
    cache: JsonlCache,
    trait: str,
    vector: LayerVectors,
    norms: dict[int, float],
    examples: Sequence[TraitExample],
    questions: Sequence[str],
    config: SweepConfig,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Score every (layer, coefficient, direction): trait metric always; perplexity and repetition of
    generations for the trait vector (and random directions when ``random_coherence``).

    At coefficient 0 every direction is the unsteered model, so it is scored once as "trait" and
    copied to the random rows.
    """
    questions = list(questions[: config.n_coherence_questions])
    # The vector enters by rounded per-layer statistics: thread counts change its last bits, not the run.
    fingerprint = [f"{x:.4g}" for x in (*vector.vectors.norm(dim=-1).tolist(), *vector.vectors.sum(dim=-1).tolist())]
    tag = inputs_hash(asdict(config) | {"layers": None}, fingerprint, [asdict(e) for e in examples], questions)
    items = []
    for layer in config.layers:
        for name, direction in _directions(vector, layer, config).items():
            for coefficient in config.coefficients:
                if coefficient == 0 and name != "trait":
                    continue
                key = cache_key(trait=trait, layer=layer, coefficient=coefficient, direction=name, setup=tag)
                items.append((key, (layer, coefficient, name, direction)))

    def work(batch: list[tuple]) -> list[dict[str, Any]]:
        out = []
        for layer, coefficient, name, direction in batch:
            steer = [AddVector({layer: direction * coefficient * norms[layer]}, 1.0, config.where)]
            row: dict[str, Any] = {"trait": trait, "layer": layer, "coefficient": coefficient, "direction": name}
            if name == "trait" or config.random_coherence:
                result = evaluate_steering(model, examples, questions, steer, config.sampling, progress=False)
                row |= {"trait_metric": result.trait, "stderr": result.trait_stderr, "perplexity": result.perplexity,
                        "repeated_ngram_share": result.repeated_ngram_share, "distinct_2": result.distinct_2,
                        "sample_response": result.responses[0] if result.responses else ""}
            else:
                score = trait_metric(model, examples, steer, progress=False)
                row |= {"trait_metric": score.value, "stderr": score.stderr()}
            out.append(row)
        return out

    rows = run_cached(cache, items, work, 1, f"steering sweep {trait}", progress)
    baseline = {r["layer"]: r for r in rows if r["coefficient"] == 0}
    for base in baseline.values():
        rows += [{**base, "direction": f"random{k}"} for k in range(config.n_random)]
    return sorted(rows, key=lambda r: (r["layer"], r["direction"], r["coefficient"]))


def _slope(rows: Sequence[dict[str, Any]]) -> float:
    x = np.array([r["coefficient"] for r in rows], dtype=float)
    y = np.array([r["trait_metric"] for r in rows], dtype=float)
    return float(np.polyfit(x, y, 1)[0]) if len(set(x)) > 1 else float("nan")


def summarize_layer(rows: Sequence[dict[str, Any]], layer: int, config: SweepConfig) -> dict[str, Any]:
    """Slope of the trait metric per unit relative coefficient, the random band, and the checks the
    issue asks for: monotonic rise, beyond the band at every positive coefficient, negatives lower it."""
    at = [r for r in rows if r["layer"] == layer]
    trait = sorted((r for r in at if r["direction"] == "trait"), key=lambda r: r["coefficient"])
    randoms = {}
    for r in at:
        if r["direction"] != "trait":
            randoms.setdefault(r["direction"], []).append(r)
    metric = {r["coefficient"]: r["trait_metric"] for r in trait}
    base = metric.get(0.0, trait[0]["trait_metric"])
    band = {c: [r["trait_metric"] for rs in randoms.values() for r in rs if r["coefficient"] == c] for c in metric}
    random_slopes = [_slope(rs) for rs in randoms.values()]
    positive = [c for c in metric if c > 0]
    values = [metric[c] for c in sorted(metric)]
    return {
        "layer": layer,
        "slope": _slope(trait),
        "random_slopes": random_slopes,
        "random_slope_max_abs": max((abs(s) for s in random_slopes), default=float("nan")),
        "monotonic": all(b > a for a, b in zip(values, values[1:])),
        "beyond_random_band": all(metric[c] > max(band[c], default=-np.inf) for c in positive) and bool(positive),
        "negative_lowers": all(metric[c] < base for c in metric if c < 0) and any(c < 0 for c in metric),
        "baseline_trait_metric": base,
        "band": {str(c): [min(v), max(v)] for c, v in band.items() if v},
    }


def choose_setting(rows: Sequence[dict[str, Any]], config: SweepConfig) -> dict[str, Any]:
    """The (layer, coefficient) with the largest trait gain whose generations stay coherent:
    perplexity ≤ ``max_perplexity_ratio`` × unsteered and repeated-trigram share ≤ the bound."""
    trait = [r for r in rows if r["direction"] == "trait"]
    base = {r["layer"]: r for r in trait if r["coefficient"] == 0}
    candidates = []
    for r in trait:
        b = base.get(r["layer"])
        if r["coefficient"] <= 0 or b is None:
            continue
        ppl_ok = math.isfinite(r["perplexity"]) and r["perplexity"] <= config.max_perplexity_ratio * b["perplexity"]
        rep_ok = not r["repeated_ngram_share"] > config.max_repeated_share  # NaN (too short to tell) passes
        candidates.append((ppl_ok and rep_ok, r["trait_metric"] - b["trait_metric"], r))
    if not candidates:
        return {"layer": None, "coefficient": None, "within_bounds": False}
    within = [c for c in candidates if c[0]]
    ok, gain, row = max(within or candidates, key=lambda c: c[1])
    b = base[row["layer"]]
    return {
        "layer": row["layer"], "coefficient": row["coefficient"], "trait_gain": gain, "within_bounds": ok,
        "perplexity": row["perplexity"], "baseline_perplexity": b["perplexity"],
        "repeated_ngram_share": row["repeated_ngram_share"], "baseline_repeated_ngram_share": b["repeated_ngram_share"],
        "distinct_2": row["distinct_2"],
    }
