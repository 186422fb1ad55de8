"""Feature-level against whole-vector steering, with random directions of matched norm as control.

The question a researcher asks after a decomposition: do the few features the vector aligns with
*do* what the vector does? Two feature-level interventions answer it:

(a) **top-k decoder directions**: the sum of the k decoder rows most aligned with v (each signed by
    its cosine, unit norm), rescaled to v's norm, added like v (:class:`~workbench.hooks.AddVector`);
(b) **SAE splice**: clamp the k features to a multiple of their reference activation (0 = ablate),
    keeping the SAE's error term (:class:`~workbench.hooks.SpliceSAE`).

Every additive method is a unit direction pushed by ``coefficient × activation norm`` (the
convention of the trait sweep), so whole vector, top-k and random rows have matched norms. Scores
come from :mod:`workbench.metrics`: the offline likelihood trait metric (mean ± 95% interval over
held-out examples), perplexity of the steered generations under the unsteered model, repetition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from workbench.errors import InputFormatError
from workbench.generate import Sampling
from workbench.hooks import AddVector, SpliceSAE, Where
from workbench.metrics import TraitExample, evaluate_steering

from sae_analysis.decompose import decoder_cosines


def topk_direction(
    vector: Float[Tensor, " d_in"], W_dec: Float[Tensor, "d_sae d_in"], k: int
) -> tuple[Float[Tensor, " d_in"], list[int]]:
    """Sum of the k decoder rows with the largest |cos| to v, each signed and unit, scaled to ‖v‖."""
    cos = decoder_cosines(vector, W_dec)
    top = torch.topk(cos.abs(), k).indices
    rows = W_dec[top].float()
    summed = (torch.sign(cos[top])[:, None] * rows / rows.norm(dim=-1, keepdim=True)).sum(0)
    return summed / summed.norm() * vector.float().norm(), top.tolist()


def random_directions(d_in: int, n: int, norm: float, seed: int = 0) -> list[Float[Tensor, " d_in"]]:
    """``n`` isotropic random directions of norm ``norm`` (the control rows)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        r = torch.randn(d_in, generator=gen)
        out.append(r / r.norm() * norm)
    return out


@torch.no_grad()
def reference_activations(sae, acts: Float[Tensor, "n d_in"], chunk: int = 2048) -> Float[Tensor, " d_sae"]:
    """Each feature's max activation over reference tokens: the scale splice clamps are set in."""
    best = torch.zeros(sae.cfg.d_sae)
    for start in range(0, len(acts), chunk):
        best = torch.maximum(best, sae.encode(acts[start:start + chunk].float()).max(0).values.cpu())
    return best


@dataclass(frozen=True)
class ComparisonConfig:
    """What to compare. ``coefficients`` are multiples of the mean activation norm at the layer
    (additive methods); ``clamp_multiples`` multiply each spliced feature's reference activation."""

    ks: tuple[int, ...] = (1, 5, 20)
    coefficients: tuple[float, ...] = (-0.1, 0.05, 0.1)
    clamp_multiples: tuple[float, ...] = (0.0, 2.0)
    n_random: int = 3
    seed: int = 0
    where: Where = "all"
    sampling: Sampling = Sampling(max_new_tokens=24)


def _settings(vector, layer, W_dec, sae, ref, norm, config: ComparisonConfig):
    """(method, k, knob, interventions, features) for every row except the unsteered baseline."""
    unit = vector.float() / vector.float().norm()
    out = []
    for c in config.coefficients:
        out.append(("whole", None, c, [AddVector({layer: unit * c * norm}, 1.0, config.where)], []))
    for k in config.ks:
        direction, features = topk_direction(vector, W_dec, k)
        for c in config.coefficients:
            steer = AddVector({layer: direction / direction.norm() * c * norm}, 1.0, config.where)
            out.append((f"top{k}", k, c, [steer], features))
    for i, r in enumerate(random_directions(vector.shape[0], config.n_random, 1.0, config.seed)):
        for c in config.coefficients:
            out.append((f"random{i}", None, c, [AddVector({layer: r * c * norm}, 1.0, config.where)], []))
    if sae is not None:
        cos = decoder_cosines(vector, W_dec)
        for k in config.ks:
            features = torch.topk(cos, k).indices.tolist()  # features v points *toward*
            for m in config.clamp_multiples:
                clamp = {f: float(m * ref[f]) for f in features}
                out.append((f"splice{k}", k, m, [SpliceSAE(sae, layer, clamp, config.where)], features))
    return out


def compare_steering(
    model,
    vector: Float[Tensor, " d_in"],
    layer: int,
    sae,
    examples: Sequence[TraitExample],
    questions: Sequence[str],
    activation_norm: float,
    reference: Float[Tensor, " d_sae"] | None = None,
    config: ComparisonConfig = ComparisonConfig(),
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One row per (method, knob): trait metric with 95% interval, perplexity, repetition, a sample.

    ``sae``: a sae-lens SAE reading ``layer`` (its ``W_dec`` gives the features); ``reference``:
    per-feature max activations (see :func:`reference_activations`), needed for splice rows.
    """
    if not examples:
        raise InputFormatError("compare_steering needs held-out trait examples (question, positive, negative)")
    W_dec = sae.W_dec.detach().float()
    if vector.shape[0] != W_dec.shape[1]:
        raise InputFormatError(f"vector has d_model {vector.shape[0]} but the SAE's d_in is {W_dec.shape[1]}")
    splice_sae = sae if reference is not None else None
    settings = [("none", None, 0.0, [], [])] + _settings(vector, layer, W_dec, splice_sae, reference, activation_norm, config)
    rows = []
    for method, k, knob, interventions, features in tqdm(settings, desc="compare steering", disable=not progress):
        result = evaluate_steering(model, examples, questions, interventions, config.sampling, progress=False)
        rows.append({
            "method": method, "k": k, "coefficient" if not method.startswith("splice") else "clamp_multiple": knob,
            "trait_metric": result.trait, "ci95": 1.96 * result.trait_stderr, "perplexity": result.perplexity,
            "repeated_ngram_share": result.repeated_ngram_share, "features": features[:20],
            "sample_response": result.responses[0] if result.responses else "",
        })
    return rows


def summarize(rows: Sequence[dict[str, Any]], max_perplexity_ratio: float = 2.0) -> dict[str, Any]:
    """Which method moves the trait metric most at each coefficient, among coherent settings.

    Coherent: perplexity at most ``max_perplexity_ratio`` × the unsteered one. The random rows'
    largest |shift| is the noise floor a method must beat to count as doing something.
    """
    base = next(r for r in rows if r["method"] == "none")
    ceiling = max_perplexity_ratio * base["perplexity"] if base["perplexity"] == base["perplexity"] else float("inf")
    shift = lambda r: r["trait_metric"] - base["trait_metric"]  # noqa: E731
    out: dict[str, Any] = {"unsteered_trait_metric": base["trait_metric"], "unsteered_perplexity": base["perplexity"],
                           "by_coefficient": {}}
    for c in sorted({r["coefficient"] for r in rows if "coefficient" in r and r["method"] != "none"}):
        at_c = [r for r in rows if r.get("coefficient") == c and r["method"] != "none"]
        random_floor = max((abs(shift(r)) for r in at_c if r["method"].startswith("random")), default=0.0)
        coherent = [r for r in at_c if not r["perplexity"] > ceiling and not r["method"].startswith("random")]
        sign = 1 if c > 0 else -1
        best = max(coherent, key=lambda r: sign * shift(r), default=None)
        out["by_coefficient"][str(c)] = {
            "best_method": best["method"] if best else None,
            "best_shift": shift(best) if best else None,
            "random_max_abs_shift": random_floor,
            "shifts": {r["method"]: shift(r) for r in at_c},
            "beats_random": bool(best and abs(shift(best)) > random_floor),
        }
    splice = [r for r in rows if r["method"].startswith("splice")]
    out["splice_shifts"] = {f'{r["method"]}@{r["clamp_multiple"]}': shift(r) for r in splice}
    return out
