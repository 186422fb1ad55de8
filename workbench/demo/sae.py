"""The demo's SAE stage: decompose the axis and trait vectors (from the context, in memory) on the
shipped SAE against chance, then feature-level against whole-vector steering of the pirate vector.

Each vector's detailed page goes to ``DIR/sae/NAME/`` (summary.json + report.html, through
:func:`workbench.report.write_run`); one summary section with inline charts joins the demo report.
Sizes: 120 corpus rows for decomposition, 80 for the comparison, 4 held-out examples, coefficients
−0.1, 0.05, 0.1, 3 random directions, 16 new tokens (``--quick``: 30 rows, 2 examples, coefficient
0.1, 1 random direction, 6 tokens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.generate import Sampling

from sae_analysis.feature_steering import Baselines, ComparisonConfig
from sae_analysis.pipeline import compare_vector, corpus_rows, decompose_vector, vector_for_sae
from sae_analysis.report import comparison_report, comparison_table_rows, decomposition_report, reconstruction_figure
from sae_analysis.runs import write_sae_run
from sae_analysis.contexts import token_activations
from sae_analysis.saes import load_sae, resolve, sae_layer
from vectors.axis.pipeline import axis_path
from vectors.traits.data import load_trait
from vectors.traits.pipeline import trait_vector_path

from workbench.demo.runner import RunContext

SAE = "shipped"
COMPARE_TRAIT = "pirate"  # the trait the small model expresses: the comparison has something to move


def _saved_as(context: RunContext, name: str) -> Path:
    """The artifact an in-memory vector was also saved as (named on the SAE pages as their vector)."""
    return axis_path(context.out) if name == "assistant_axis" else trait_vector_path(context.out, name)


class SaeStage:
    title = "SAE decomposition and feature-level steering"

    def run(self, context: RunContext) -> dict[str, Any]:
        model, quick, out = context.model, context.quick, context.out
        vectors = {"assistant_axis": context.require_axis(self.title)} | context.trait_vectors
        spec = resolve(SAE)
        sae = load_sae(spec)
        section = context.report.section("SAE decomposition and feature-level steering")
        decompositions, rows, curves = {}, [], {}
        # One corpus pass at the SAE's layer serves every vector (and the comparison reads a prefix of it).
        corpus = corpus_rows(model, limit=30 if quick else 120)
        acts = token_activations(model, corpus, sae_layer(spec))
        for name, vectors_of in vectors.items():
            path = _saved_as(context, name)
            vector, layer = vector_for_sae(vectors_of, spec, source=name)
            result = decompose_vector(vector, layer, sae, spec, model, corpus, dashboards=3 if quick else 5, name=name,
                                      acts=acts)
            write_sae_run(out / "sae" / name, path, vectors_of, result, decomposition_report(result, path.name))
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
            path = _saved_as(context, COMPARE_TRAIT)
            trait, n = load_trait(COMPARE_TRAIT), 2 if quick else 4
            examples = trait.heldout[:n]
            config = ComparisonConfig(ks=(1, 5, 20), coefficients=(0.1,) if quick else (-0.1, 0.05, 0.1),
                                      n_random=1 if quick else 3, sampling=Sampling(max_new_tokens=6 if quick else 16),
                                      output_score_ks=(1,) if quick else (1, 5), n_candidates=3 if quick else 10)
            baselines = Baselines(trait.instructions[0].pos, trait.heldout[n:2 * n], None, COMPARE_TRAIT,
                                  trait.description)
            vector, layer = vector_for_sae(vectors[COMPARE_TRAIT], spec, source=COMPARE_TRAIT)
            n_rows = 30 if quick else 80
            result = compare_vector(vector, layer, sae, spec, model, corpus[:n_rows], examples, config=config,
                                    progress=False, baselines=baselines, acts=acts[:n_rows])
            write_sae_run(out / "sae" / f"compare_{COMPARE_TRAIT}", path, vectors[COMPARE_TRAIT], result,
                          comparison_report(result, path.name))
            comparison = result.summary
            table = comparison_table_rows(result.rows)
            section.text(f"Feature-level against whole-vector steering of the {COMPARE_TRAIT} vector at matched norm "
                         f"(coefficients × mean activation norm), with {config.n_random} random directions of the same "
                         "norm as control; trait metric = held-out log-likelihood difference per token, mean with 95% "
                         "interval; prompting rows use the trait's instruction as system prompt; outscore rows steer "
                         "with the features whose steering alone raises the metric most; behaviour = harmonic mean of "
                         "the model-as-classifier concept score, fluency and non-repetition of the generations "
                         "(docs/sae_analysis.md).")
            section.table(table, "steering comparison")
            section.link(f"sae/compare_{COMPARE_TRAIT}/report.html", "comparison details and chart")
        return {"sae": {"decompositions": decompositions, "steering_comparison": comparison}}
