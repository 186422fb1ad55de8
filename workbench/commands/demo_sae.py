"""The demo's SAE stage: decompose the axis and trait vectors, compare feature-level steering.

Application layer (imports ``vectors`` and ``sae_analysis``): it reads the vectors the earlier
stages saved under ``out/artifacts``, runs :func:`sae_analysis.pipeline.run_decompose` and
:func:`~sae_analysis.pipeline.run_compare` (each writes a detailed page under ``out/sae/``), and adds
one summary section with inline charts to the demo report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAE = "shipped"
COMPARE_TRAIT = "pirate"  # the trait the small model expresses: the comparison has something to move


def _vectors(out: Path) -> dict[str, Path]:
    from vectors.traits.pipeline import DEMO_TRAITS

    found = {"assistant_axis": out / "artifacts" / "assistant_axis.safetensors"}
    found |= {t: out / "artifacts" / f"trait_{t}_response.safetensors" for t in DEMO_TRAITS}
    return {name: path for name, path in found.items() if path.is_file()}


def run_demo_stage(model, out: Path, report, quick: bool = False) -> dict[str, Any]:
    from sae_analysis.feature_steering import ComparisonConfig
    from sae_analysis.pipeline import reconstruction_figure, run_compare, run_decompose
    from vectors.traits.data import load_trait
    from workbench.generate import Sampling

    section = report.section("SAE decomposition and feature-level steering")
    decompositions, rows, curves = {}, [], {}
    vectors = _vectors(out)
    for name, path in vectors.items():
        summary = run_decompose(path, SAE, out / "sae" / name, model=model, corpus_limit=30 if quick else 120,
                                progress=False)
        result = summary["decomposition"]
        decompositions[name] = {k: result[k] for k in ("max_abs_cos", "beats_chance_p99", "n_top_above_chance_p99")} | {
            "chance_p99": result["baseline"]["p99_max_abs_cos"], "layer": summary["layer"],
            "reconstruction_k1_k5_k20": [result["reconstruction"][k - 1] for k in (1, 5, 20)],
            "top_features": [h["index"] for h in result["top_positive"][:5]],
        }
        rows.append({"vector": name, "layer": summary["layer"], "best |cos|": result["max_abs_cos"],
                     "chance p99": result["baseline"]["p99_max_abs_cos"], "above chance": result["beats_chance_p99"],
                     "top features": ", ".join(str(h["index"]) for h in result["top_positive"][:5])})
        curves[name] = result["reconstruction"]
    section.text(f"SAE: the project's SAE for SmolLM2 at layer 18 ({SAE}). Decoder cosine of each vector "
                 "against every feature, with the 99th percentile of the best |cos| of random directions as chance.")
    section.table(rows, "decoder-cosine decomposition")
    section.plotly(reconstruction_figure(curves))
    for name in decompositions:
        section.link(f"sae/{name}/report.html", f"{name}: features, attribution, max-activating contexts")
    comparison = None
    trait_path = vectors.get(COMPARE_TRAIT)
    if trait_path is not None:
        examples = load_trait(COMPARE_TRAIT).heldout[: 2 if quick else 4]
        config = ComparisonConfig(ks=(1, 5, 20), coefficients=(0.1,) if quick else (-0.1, 0.05, 0.1),
                                  n_random=1 if quick else 3, sampling=Sampling(max_new_tokens=6 if quick else 16))
        summary = run_compare(trait_path, SAE, out / "sae" / f"compare_{COMPARE_TRAIT}", examples,
                              config=config, corpus_limit=30 if quick else 80, progress=False, model=model)
        comparison = summary["summary"]
        table = [{k: v for k, v in r.items() if k not in ("features",)} for r in summary["rows"]]
        section.text(f"Feature-level against whole-vector steering of the {COMPARE_TRAIT} vector at matched norm "
                     f"(coefficients × mean activation norm), with {config.n_random} random directions of the same norm as control; "
                     "trait metric = held-out log-likelihood difference per token, mean with 95% interval.")
        section.table(table, "steering comparison")
        section.link(f"sae/compare_{COMPARE_TRAIT}/report.html", "comparison details and chart")
    return {"sae": {"decompositions": decompositions, "steering_comparison": comparison}}
