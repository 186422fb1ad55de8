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
from workbench.metrics import TraitExample, evaluate_steering, trait_metric

from sae_analysis.decompose import decoder_cosines


def topk_direction(
    vector: Float[Tensor, " d_in"], W_dec: Float[Tensor, "d_sae d_in"], k: int
) -> tuple[Float[Tensor, " d_in"], list[int]]:
    """Sum of the k decoder rows with the largest |cos| to v, each signed and unit, scaled to ‖v‖."""
    cos = decoder_cosines(vector, W_dec)
    top = torch.topk(cos.abs(), k).indices.tolist()
    return _unit_sum(W_dec, top, [1.0 if cos[f] >= 0 else -1.0 for f in top]) * vector.float().norm(), top


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
    output_score_ks: tuple[int, ...] = (1, 5)
    n_candidates: int = 20


@dataclass(frozen=True)
class Baselines:
    """What the field's baselines add to the comparison (each optional).

    ``instruction``: the trait's positive instruction, used as a system prompt with no intervention
    (``prompt``) and with the whole vector (``prompt+whole``), and by the behavioural score
    (:mod:`sae_analysis.behaviour`). ``selection_examples``: held-out examples the output-score
    ranking is measured on (disjoint from the scored ones; when empty the scored examples are used
    and the summary says ``in-sample``). ``judge``: a :class:`~workbench.api.ChatClient` scoring
    the trait 0–100 of every generation.
    """

    instruction: str | None = None
    selection_examples: tuple[TraitExample, ...] = ()
    judge: Any = None
    trait: str = "the trait"
    description: str = ""


@dataclass(frozen=True)
class _Setting:
    method: str
    k: int | None
    knob: float | None
    interventions: list
    features: list[int]
    system: str | None = None


def _unit_sum(W_dec: Tensor, features: Sequence[int], signs: Sequence[float]) -> Float[Tensor, " d_in"]:
    rows = W_dec[torch.tensor(list(features), dtype=torch.long)].float()
    summed = (torch.tensor(list(signs), dtype=torch.float)[:, None] * rows / rows.norm(dim=-1, keepdim=True)).sum(0)
    return summed / summed.norm()


@torch.no_grad()
def output_score_ranking(
    model, vector: Float[Tensor, " d_in"], layer: int, W_dec: Float[Tensor, "d_sae d_in"],
    examples: Sequence[TraitExample], activation_norm: float, coefficient: float, n_candidates: int = 20,
    where: Where = "all",
) -> list[tuple[int, float, float]]:
    """Candidates (the ``n_candidates`` features by decoder |cos| with v), each steered alone along its
    signed unit decoder row at ``coefficient`` × norm, ranked by how much that raises the trait
    metric on ``examples`` (Arad et al. 2025 keep features by their effect on the output, not their
    input alignment). Returns (feature, sign, raise), best first."""
    cos = decoder_cosines(vector, W_dec)
    candidates = torch.topk(cos.abs(), min(n_candidates, len(cos))).indices.tolist()
    base = trait_metric(model, examples, progress=False).value
    scored = []
    for f in candidates:
        sign = 1.0 if cos[f] >= 0 else -1.0
        direction = _unit_sum(W_dec, [f], [sign])
        steered = trait_metric(model, examples, [AddVector({layer: direction * coefficient * activation_norm}, 1.0, where)],
                               progress=False).value
        scored.append((int(f), sign, steered - base))
    return sorted(scored, key=lambda item: -item[2])


def _settings(vector, layer, W_dec, sae, ref, norm, config: ComparisonConfig, instruction, ranking) -> list[_Setting]:
    """Every row except the unsteered baseline."""
    unit = vector.float() / vector.float().norm()
    add = lambda direction, c: [AddVector({layer: direction * c * norm}, 1.0, config.where)]  # noqa: E731
    out = [_Setting("whole", None, c, add(unit, c), []) for c in config.coefficients]
    for k in config.ks:
        direction, features = topk_direction(vector, W_dec, k)
        out += [_Setting(f"top{k}", k, c, add(direction / direction.norm(), c), features) for c in config.coefficients]
    for k in config.output_score_ks if ranking else ():
        chosen = ranking[:k]
        direction = _unit_sum(W_dec, [f for f, _, _ in chosen], [s for _, s, _ in chosen])
        out += [_Setting(f"outscore{k}", k, c, add(direction, c), [f for f, _, _ in chosen]) for c in config.coefficients]
    if instruction:
        out.append(_Setting("prompt", None, None, [], [], instruction))
        out += [_Setting("prompt+whole", None, c, add(unit, c), [], instruction) for c in config.coefficients]
    for i, r in enumerate(random_directions(vector.shape[0], config.n_random, 1.0, config.seed)):
        out += [_Setting(f"random{i}", None, c, add(r, c), []) for c in config.coefficients]
    if sae is not None:
        cos = decoder_cosines(vector, W_dec)
        for k in config.ks:
            features = torch.topk(cos, k).indices.tolist()  # features v points *toward*
            for m in config.clamp_multiples:
                clamp = {f: float(m * ref[f]) for f in features}
                out.append(_Setting(f"splice{k}", k, m, [SpliceSAE(sae, layer, clamp, config.where)], features))
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
    baselines: Baselines = Baselines(),
) -> tuple[list[dict[str, Any]], list[tuple[int, float, float]]]:
    """One row per (method, knob): trait metric with 95% interval, perplexity, repetition, the
    behavioural score with its interval (when ``baselines.instruction`` is given), the judge's mean
    trait score (when a judge is given), a sample; and the output-score ranking used.

    ``sae``: a sae-lens SAE reading ``layer`` (its ``W_dec`` gives the features); ``reference``:
    per-feature max activations (see :func:`reference_activations`), needed for splice rows.
    """
    from sae_analysis.behaviour import behaviour_score, reference_loglik

    if not examples:
        raise InputFormatError("compare_steering needs held-out trait examples (question, positive, negative)")
    W_dec = sae.W_dec.detach().float()
    if vector.shape[0] != W_dec.shape[1]:
        raise InputFormatError(f"vector has d_model {vector.shape[0]} but the SAE's d_in is {W_dec.shape[1]}")
    splice_sae = sae if reference is not None else None
    ranking = []
    if config.output_score_ks:
        positive = [c for c in config.coefficients if c > 0]
        ranking = output_score_ranking(model, vector, layer, W_dec, baselines.selection_examples or examples,
                                       activation_norm, max(positive, default=max(abs(c) for c in config.coefficients)),
                                       max(config.n_candidates, max(config.output_score_ks)), config.where)
    settings = [_Setting("none", None, 0.0, [], [])] + _settings(
        vector, layer, W_dec, splice_sae, reference, activation_norm, config, baselines.instruction, ranking)
    rows, ell0 = [], float("nan")
    for s in tqdm(settings, desc="compare steering", disable=not progress):
        result = evaluate_steering(model, examples, questions, s.interventions, config.sampling, s.system, progress=False)
        row: dict[str, Any] = {"method": s.method, "k": s.k}
        if s.method.startswith("splice"):
            row["clamp_multiple"] = s.knob
        elif s.knob is not None:
            row["coefficient"] = s.knob
        row |= {"trait_metric": result.trait, "ci95": 1.96 * result.trait_stderr, "perplexity": result.perplexity,
                "repeated_ngram_share": result.repeated_ngram_share}
        if baselines.instruction:
            if s.method == "none":
                ell0 = reference_loglik(model, questions, result.responses)
            row |= behaviour_score(model, questions, result.responses, baselines.instruction, ell0).row()
        if baselines.judge is not None:
            from workbench.judge import judge_trait

            scores = [j.score for j in judge_trait(baselines.judge, baselines.trait, list(zip(questions, result.responses)),
                                                   baselines.description) if j.score is not None]
            row["judge_trait"] = sum(scores) / len(scores) if scores else None
        row |= {"features": s.features[:20], "sample_response": result.responses[0] if result.responses else ""}
        rows.append(row)
    return rows, ranking


def _separated(a: dict[str, Any], b: dict[str, Any], key: str = "behaviour") -> bool:
    """Whether a's 95% interval of ``key`` lies wholly above b's."""
    return bool(a[key] - a[f"{key}_ci95"] > b[key] + b[f"{key}_ci95"])


def summarize(rows: Sequence[dict[str, Any]], max_perplexity_ratio: float = 2.0) -> dict[str, Any]:
    """Which method moves the trait metric most at each coefficient, among coherent settings, and,
    with the behavioural score, which scores best and whether it beats random and prompting.

    Coherent: perplexity at most ``max_perplexity_ratio`` × the unsteered one. The random rows'
    largest |shift| is the noise floor a method must beat to count as doing something. The
    behavioural best (positive coefficients: steering *toward* the trait) is compared with the
    best random row and with prompting, by mean and by non-overlapping 95% intervals.
    """
    base = next(r for r in rows if r["method"] == "none")
    prompt = next((r for r in rows if r["method"] == "prompt"), None)
    ceiling = max_perplexity_ratio * base["perplexity"] if base["perplexity"] == base["perplexity"] else float("inf")
    shift = lambda r: r["trait_metric"] - base["trait_metric"]  # noqa: E731
    out: dict[str, Any] = {"unsteered_trait_metric": base["trait_metric"], "unsteered_perplexity": base["perplexity"],
                           "by_coefficient": {}}
    if prompt is not None:
        out["prompting"] = {"trait_shift": shift(prompt), "behaviour": prompt.get("behaviour"),
                            "behaviour_ci95": prompt.get("behaviour_ci95")}
    if "behaviour" in base:
        out["unsteered_behaviour"] = base["behaviour"]
    for c in sorted({r["coefficient"] for r in rows if "coefficient" in r and r["method"] != "none"}):
        at_c = [r for r in rows if r.get("coefficient") == c and r["method"] != "none"]
        random_floor = max((abs(shift(r)) for r in at_c if r["method"].startswith("random")), default=0.0)
        coherent = [r for r in at_c if not r["perplexity"] > ceiling and not r["method"].startswith("random")]
        sign = 1 if c > 0 else -1
        best = max(coherent, key=lambda r: sign * shift(r), default=None)
        entry = out["by_coefficient"][str(c)] = {
            "best_method": best["method"] if best else None,
            "best_shift": shift(best) if best else None,
            "random_max_abs_shift": random_floor,
            "shifts": {r["method"]: shift(r) for r in at_c},
            "beats_random": bool(best and abs(shift(best)) > random_floor),
        }
        if prompt is not None and c > 0:
            entry["beats_prompting"] = bool(best and shift(best) > shift(prompt))
        if "behaviour" in base and c > 0:
            methods = [r for r in at_c if not r["method"].startswith("random")]
            randoms = [r for r in at_c if r["method"].startswith("random")]
            top = max(methods, key=lambda r: r["behaviour"], default=None)
            top_random = max(randoms, key=lambda r: r["behaviour"], default=None)
            entry["behaviour"] = {r["method"]: r["behaviour"] for r in at_c}
            entry["best_by_behaviour"] = top["method"] if top else None
            if top and top_random:
                entry["behaviour_beats_random"] = {"mean": top["behaviour"] > top_random["behaviour"],
                                                   "interval_separated": _separated(top, top_random)}
            if top and prompt is not None:
                entry["behaviour_beats_prompting"] = {"mean": top["behaviour"] > prompt["behaviour"],
                                                      "interval_separated": _separated(top, prompt)}
    splice = [r for r in rows if r["method"].startswith("splice")]
    out["splice_shifts"] = {f'{r["method"]}@{r["clamp_multiple"]}': shift(r) for r in splice}
    return out
