"""The demo's SAE stage: decompose the axis and trait vectors, compare feature-level steering.

Application layer (imports ``vectors`` and ``sae_analysis``): it reads the vectors the earlier
stages saved under ``out/artifacts`` (through :func:`workbench.artifacts.load_vectors`), computes
with :func:`sae_analysis.pipeline.decompose_vector` and :func:`~sae_analysis.pipeline.compare_vector`
on the shipped SAE, writes each detailed page under ``out/sae/`` (:mod:`sae_analysis.report`), and
adds one summary section with inline charts to the demo report.
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
    from sae_analysis.feature_steering import Baselines, ComparisonConfig
    from sae_analysis.pipeline import compare_vector, corpus_rows, decompose_vector, vector_for_sae
    from sae_analysis.report import comparison_report, comparison_table_rows, decomposition_report, reconstruction_figure
    from sae_analysis.saes import load_sae, resolve
    from vectors.traits.data import load_trait
    from workbench.artifacts import load_vectors
    from workbench.commands.decompose import write_run
    from workbench.generate import Sampling

    spec = resolve(SAE)
    sae = load_sae(spec)
    section = report.section("SAE decomposition and feature-level steering")
    decompositions, rows, curves = {}, [], {}
    paths = _vectors(out)
    vectors = {name: load_vectors(path, model.cfg.n_layers, model.cfg.d_model) for name, path in paths.items()}
    for name, path in paths.items():
        vector, layer = vector_for_sae(vectors[name], spec, source=str(path))
        result = decompose_vector(vector, layer, sae, spec, model, corpus_rows(model, limit=30 if quick else 120),
                                  dashboards=3 if quick else 5, name=name)
        write_run(out / "sae" / name, path, vectors[name], result, decomposition_report(result, path.name))
        d = result.decomposition
        top = [h.index for h in d.top_positive[:5]]
        decompositions[name] = {"max_abs_cos": d.max_abs_cos, "beats_chance_p99": d.beats_chance,
                                "n_top_above_chance_p99": d.n_above_chance(), "chance_p99": d.baseline.p99_max_abs_cos,
                                "layer": layer, "reconstruction_k1_k5_k20": [d.reconstruction[k - 1] for k in (1, 5, 20)],
                                "top_features": top}
        rows.append({"vector": name, "layer": layer, "best |cos|": d.max_abs_cos,
                     "chance p99": d.baseline.p99_max_abs_cos, "above chance": d.beats_chance,
                     "top features": ", ".join(str(i) for i in top)})
        curves[name] = d.reconstruction
    section.text(f"SAE: the project's SAE for SmolLM2 at layer 18 ({SAE}). Decoder cosine of each vector "
                 "against every feature, with the 99th percentile of the best |cos| of random directions as chance.")
    section.table(rows, "decoder-cosine decomposition")
    section.plotly(reconstruction_figure(curves))
    for name in decompositions:
        section.link(f"sae/{name}/report.html", f"{name}: features, attribution, max-activating contexts")
        section.link(f"sae/{name}/dashboards.html", f"{name}: vector and feature dashboards")
    comparison = None
    if COMPARE_TRAIT in vectors:
        path = paths[COMPARE_TRAIT]
        trait, n = load_trait(COMPARE_TRAIT), 2 if quick else 4
        examples = trait.heldout[:n]
        config = ComparisonConfig(ks=(1, 5, 20), coefficients=(0.1,) if quick else (-0.1, 0.05, 0.1),
                                  n_random=1 if quick else 3, sampling=Sampling(max_new_tokens=6 if quick else 16),
                                  output_score_ks=(1,) if quick else (1, 5), n_candidates=3 if quick else 10)
        baselines = Baselines(trait.instructions[0].pos, trait.heldout[n:2 * n], None, COMPARE_TRAIT, trait.description)
        vector, layer = vector_for_sae(vectors[COMPARE_TRAIT], spec, source=str(path))
        result = compare_vector(vector, layer, sae, spec, model, corpus_rows(model, limit=30 if quick else 80), examples,
                                config=config, progress=False, baselines=baselines)
        write_run(out / "sae" / f"compare_{COMPARE_TRAIT}", path, vectors[COMPARE_TRAIT], result,
                  comparison_report(result, path.name))
        comparison = result.summary
        table = comparison_table_rows(result.rows)
        section.text(f"Feature-level against whole-vector steering of the {COMPARE_TRAIT} vector at matched norm "
                     f"(coefficients × mean activation norm), with {config.n_random} random directions of the same norm as control; "
                     "trait metric = held-out log-likelihood difference per token, mean with 95% interval; "
                     "prompting rows use the trait's instruction as system prompt; outscore rows steer with the features "
                     "whose steering alone raises the metric most; behaviour = harmonic mean of the model-as-classifier "
                     "concept score, fluency and non-repetition of the generations (docs/sae_analysis.md).")
        section.table(table, "steering comparison")
        section.link(f"sae/compare_{COMPARE_TRAIT}/report.html", "comparison details and chart")
    return {"sae": {"decompositions": decompositions, "steering_comparison": comparison}}
