"""Report pages and figures of the SAE analyses (plotly through :mod:`workbench.report`).

Rendering only: every function takes a result of :mod:`sae_analysis.pipeline` (or its numbers)
and returns a :class:`~workbench.report.Report` or a figure; nothing here computes or writes.
"""

from __future__ import annotations

from typing import Any, Sequence

from workbench.report import Report, Section
from workbench.unavailable import Unavailable

from sae_analysis.dashboard_report import PAGE, feature_anchor
from sae_analysis.decompose import FeatureHit
from sae_analysis.pipeline import SteeringComparison, VectorDecomposition
from sae_analysis.saes import SAESpec


def _feature_rows(hits: Sequence[FeatureHit], spec: SAESpec) -> list[dict[str, Any]]:
    return [{"feature": h.index, "score": h.score, "neuronpedia": spec.neuronpedia_url(h.index) or ""} for h in hits]


def reconstruction_figure(curves: dict[str, Sequence[float]]):
    """Share of each vector's ‖v‖² explained by its top-k decoder directions, one line per vector."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(x=list(range(1, len(curve) + 1)), y=list(curve), name=name,
                                 mode="lines+markers" if len(curves) == 1 else "lines"))
    fig.update_layout(xaxis_title="k (top features by |cos|)", yaxis_title="share of ‖v‖² explained",
                      height=320, margin=dict(t=20, b=40))
    return fig


def _reconstruction_section(section: Section, curve: Sequence[float]) -> None:
    section.text(f"k=1: {curve[0]:.3f}, k=5: {curve[min(4, len(curve) - 1)]:.3f}, k={len(curve)}: {curve[-1]:.3f}")
    section.plotly(reconstruction_figure({"vector": curve}))


def decomposition_report(result: VectorDecomposition, vector_name: str) -> Report:
    """The ``workbench decompose`` page: verdict against chance, top features, reconstruction, and
    with a corpus reading the encoder attribution and max-activating contexts (else Neuronpedia links)."""
    spec, d = result.spec, result.decomposition
    report = Report(f"SAE decomposition of {vector_name} at layer {result.layer}")
    head = report.section("Summary")
    head.text(f"SAE {spec.id}: {spec.notes()}.")
    if spec.is_base_model_sae:
        head.note(f"{spec.id} was trained on the base model {spec.trained_on}; it is applied here to the "
                  f"instruction-tuned model's activations, where its reconstruction is worse.")
    verdict = "above" if d.beats_chance else "NOT above"
    head.text(f"Best |cos| with a decoder direction: {d.max_abs_cos:.3f}, {verdict} the 99th percentile of "
              f"chance ({d.baseline.p99_max_abs_cos:.3f}; mean {d.baseline.mean_max_abs_cos:.3f} over "
              f"{d.baseline.draws} random directions). Top features above chance: {d.n_above_chance()}. "
              f"Decomposition took {d.seconds:.2f} s.")
    report.section("Decoder cosine: top features").table(_feature_rows(d.top_positive, spec), "most positive") \
        .table(_feature_rows(d.top_negative, spec), "most negative")
    _reconstruction_section(report.section("Reconstruction from top-k decoder directions"), d.reconstruction)
    if result.dashboards is not None:
        section = report.section("Dashboards")
        section.text("Logit effects, density, activation histogram, contexts by quantile and neighbours of the "
                     "vector and of each listed feature, on one page:")
        section.link(PAGE, f"{vector_name}: vector dashboard")
        for f, d in result.dashboards.features.items():
            section.link(f"{PAGE}#{feature_anchor(f)}", f"feature {f} ({'; '.join(d.reasons)}): {d.logits.summary_line(3)}")
    corpus = result.corpus
    if corpus is not None:
        if isinstance(corpus.attribution, Unavailable):
            report.section("Encoder attribution (default-assistant minus role-play responses)") \
                .unavailable("encoder attribution", corpus.attribution.reason)
        else:
            report.section("Encoder attribution (default-assistant minus role-play responses)") \
                .table(_feature_rows(corpus.attribution.positive_minus_negative, spec),
                       "more active on default-assistant responses") \
                .table(_feature_rows(corpus.attribution.negative_minus_positive, spec), "more active on role-play responses")
        section = report.section("Max-activating contexts")
        section.text(f"Corpus: {corpus.n_rows} chat-formatted conversations; the strongest activation of each "
                     f"top decoder-cosine feature, the window colored by the feature's activation.")
        for f, items in corpus.contexts.items():
            section.text(f"Feature {f}" + (f" — {spec.neuronpedia_url(f)}" if spec.neuronpedia_id else "")
                         + ("" if items else ": never fires on this corpus"))
            for c in items:
                section.colored_tokens(c.tokens, c.values)
    elif spec.neuronpedia_id:
        report.section("Features on Neuronpedia").text(
            "No model or corpus given: see each feature's contexts on Neuronpedia (links in the tables).")
    return report


def comparison_figure(rows: Sequence[dict[str, Any]]):
    """Trait metric and (when scored) behavioural score, each with its 95% interval, against
    coefficient: one line per additive method; the unsteered row is every line's point at 0, random
    directions are dotted and prompting (no intervention) is a dashed horizontal line."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = [("trait_metric", "ci95", "trait metric (Δ log-lik/token)")]
    if "behaviour" in rows[0]:
        panels.append(("behaviour", "behaviour_ci95", "behaviour (harmonic: concept, fluency, non-repetition)"))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for _, _, title in panels])
    base = next(r for r in rows if r["method"] == "none")
    prompt = next((r for r in rows if r["method"] == "prompt"), None)
    methods = list(dict.fromkeys(r["method"] for r in rows if "coefficient" in r and r["method"] != "none"))
    coefficients = sorted({0.0} | {r["coefficient"] for r in rows if "coefficient" in r})
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf"]
    for col, (key, ci, _) in enumerate(panels, 1):
        for i, method in enumerate(methods):
            points = sorted([(0.0, base[key], base[ci])] +
                            [(r["coefficient"], r[key], r[ci]) for r in rows if r["method"] == method])
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=method, mode="lines+markers",
                                     legendgroup=method, showlegend=col == 1, error_y=dict(type="data", array=[p[2] for p in points]),
                                     line=dict(dash="dot" if method.startswith("random") else None,
                                               color=palette[i % len(palette)])), row=1, col=col)
        if prompt is not None:
            fig.add_trace(go.Scatter(x=[coefficients[0], coefficients[-1]], y=[prompt[key]] * 2, name="prompt (no steering)",
                                     legendgroup="prompt", showlegend=col == 1, mode="lines",
                                     line=dict(dash="dash", color="black")), row=1, col=col)
    fig.update_xaxes(title_text="coefficient (× activation norm)")
    fig.update_layout(height=420, margin=dict(t=40, b=40))
    return fig


def comparison_table_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every column any row has (prompt rows lack a coefficient, splice rows have a clamp)."""
    columns = list(dict.fromkeys(k for r in rows for k in r if k != "features"))
    return [{c: r.get(c) for c in columns} for r in rows]


def comparison_report(result: SteeringComparison, vector_name: str) -> Report:
    """The ``workbench compare-steering`` page: the verdict per coefficient, the table and the chart."""
    report = Report(f"Feature-level vs whole-vector steering: {vector_name}, layer {result.layer}")
    head = report.section("Summary")
    head.text(f"SAE {result.spec.id}: {result.spec.notes()}. Additive methods push a unit direction by coefficient × "
              f"mean activation norm ({result.activation_norm:.2f}); splice clamps the top-k features (by decoder "
              f"cosine) to a multiple of their max activation on the corpus, keeping the SAE error term.")
    if result.instruction:
        head.text(f"Prompting: the trait's instruction as system prompt, alone (prompt) and with the whole vector "
                  f"(prompt+whole): {result.instruction!r}. Behaviour: harmonic mean of concept (the model as its own "
                  f"classifier: σ of the log-likelihood of the generation with the instruction minus without), fluency "
                  f"(perplexity relative to unsteered generations, capped at 1) and non-repetition; mean and 95% interval "
                  f"over the held-out questions.")
        head.note("The concept part favours the prompt rows by construction: their text was decoded from the model with "
                  "the instruction that then rates it. Compare prompting on the trait metric too, or with a judge.")
    if result.output_score_ranking:
        head.text(f"Output-score rows (outscoreK) steer with the K features whose steering alone raised the trait metric "
                  f"most ({result.output_score_selection} ranking): " + ", ".join(
                      f"{f} ({r:+.3f})" for f, _, r in result.output_score_ranking[:5]))
    head.note("On a small model likelihoods move under any large push: compare each method with the random rows.")
    for c, entry in result.summary["by_coefficient"].items():
        line = (f"coefficient {c}: best coherent method {entry['best_method']} (shift {entry['best_shift']}); "
                f"largest random shift {entry['random_max_abs_shift']:.4f}; beats random: {entry['beats_random']}")
        if "beats_prompting" in entry:
            line += f"; beats prompting: {entry['beats_prompting']}"
        if "best_by_behaviour" in entry:
            line += (f". By behaviour: {entry['best_by_behaviour']}, beats random "
                     f"{entry.get('behaviour_beats_random')}, beats prompting {entry.get('behaviour_beats_prompting')}")
        head.text(line)
    report.section("Table").table(comparison_table_rows(result.rows))
    report.section("Trait metric and behaviour by coefficient").plotly(comparison_figure(result.rows))
    return report
