"""Report sections of the trait pipeline: steering against the random band, monitoring, geometry.

Figures state what they show and every weak result stays visible: a trait whose vector does not
leave the random band is reported with that verdict, not dropped.
"""

from __future__ import annotations

from typing import Any, Sequence

from jaxtyping import Float
from torch import Tensor

from workbench.report import Report
from workbench.unavailable import by_reason

from vectors.traits.pipeline import TraitsResult


def _verdict(stats: dict[str, Any]) -> str:
    checks = [
        ("rises monotonically", stats["monotonic"]),
        ("beyond the random band at every positive coefficient", stats["beyond_random_band"]),
        ("negative coefficients lower it", stats["negative_lowers"]),
    ]
    return "; ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks)


def add_trait_section(report: Report, summary: dict[str, Any]) -> None:
    """One section per trait: pairs, steering sweep with its band, chosen setting, monitoring, examples."""
    name = summary["trait"]
    section = report.section(f"Trait: {name}")
    section.text(
        f"{summary['n_pairs']} contrastive pairs; "
        + ("filtered by the LLM judge (pos ≥ 50, neg < 50, coherence ≥ 50)." if summary["judged"]
           else "no judge configured: all pairs kept; scores are the offline likelihood metrics.")
    )
    if "vector_source" in summary:
        section.note(f"Steering and monitoring use the imported vector {summary['vector_source']}.")
    for reason, figures in by_reason(summary.get("unavailable", {})).items():
        section.unavailable(figures, reason)
    steering = summary.get("steering")
    if steering:
        section.plotly(sweep_figure(steering["sweep"], name))
        section.table(
            [{"layer": s["layer"], "slope": s["slope"], "max |random slope|": s["random_slope_max_abs"],
              "checks": _verdict(s)} for s in steering["layers"]],
            caption="Trait-metric slope per unit coefficient (× activation norm), against random directions",
        )
        chosen = steering["chosen"]
        section.table([chosen], caption="Chosen setting (largest trait gain within the coherence bounds)")
        if not chosen.get("within_bounds"):
            section.note("No positive coefficient kept perplexity and repetition within the bounds; "
                         "the chosen row is the best gain regardless.")
        section.table([{k: v for k, v in r.items() if k != "sample_response"} for r in steering["sweep"]],
                      caption="Sweep (random rows carry only the trait metric)")
        samples = [r for r in steering["sweep"] if r.get("sample_response") and r["layer"] == chosen["layer"]]
        section.preformatted("\n".join(f"[coef {r['coefficient']:+.3f}] {r['sample_response']}" for r in samples))
    monitoring = summary.get("monitoring")
    if monitoring and monitoring["r_prompt_last"] is not None:
        section.text(
            f"Monitoring at layer {monitoring['layer']} over {monitoring['n']} responses (score: "
            f"{monitoring['score_source']}): Pearson r = {monitoring['r_prompt_last']:.3f} for the last prompt "
            f"token's projection, {monitoring['r_response_mean']:.3f} for the response mean's."
        )
    if monitoring:
        section.plotly(_monitor_figure(monitoring, name))
    example = summary.get("example")
    if example:
        section.preformatted(f"Q: {example['question']}\n+ {example['positive']}\n- {example['negative']}")


def _monitor_figure(monitoring: dict[str, Any], trait: str):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    points = monitoring["points"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["last prompt token", "response mean"])
    for col, key in enumerate(("prompt_last", "response_mean"), start=1):
        for polarity, colour in (("pos", "crimson"), ("neg", "steelblue")):
            chosen = [p for p in points if p["polarity"] == polarity]
            fig.add_trace(go.Scatter(
                x=[p[key] for p in chosen], y=[p["score"] for p in chosen], mode="markers", marker=dict(color=colour),
                name=f"{polarity} system prompt", showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(title_text=f"projection onto the {trait} vector", row=1, col=col)
    fig.update_yaxes(title_text="trait score", row=1, col=1)
    fig.update_layout(title=f"Monitoring: projection vs trait score ({trait})", height=400)
    return fig


def add_geometry_section(report: Report, names: list[str], matrix: Float[Tensor, "n n"], layer: int) -> None:
    """Cosine heatmap of trait vectors (and the Assistant Axis when given) at one layer."""
    import plotly.graph_objects as go

    section = report.section("Trait geometry")
    values = matrix.tolist()
    fig = go.Figure(go.Heatmap(z=values, x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
                               text=[[f"{v:.2f}" for v in row] for row in values], texttemplate="%{text}"))
    fig.update_layout(title=f"Cosine similarity of trait vectors at layer {layer}", height=450)
    section.plotly(fig)
    section.table([{"": a, **{b: values[i][j] for j, b in enumerate(names)}} for i, a in enumerate(names)])


def add_screen_section(report: Report, result: dict[str, Any], layer: int, vector: str) -> None:
    """ΔP per training sample (:func:`vectors.traits.monitor.screen`), largest first."""
    section = report.section("ΔP per sample")
    section.text(f"Mean ΔP at layer {layer}: {result['mean_delta_p']} over {result['n']} samples (vector {vector}).")
    section.table(sorted(result["samples"], key=lambda s: -(s["delta_p"] or float("-inf"))))


def add_traits_sections(report: Report, result: TraitsResult) -> None:
    """One section per trait of a :class:`~vectors.traits.pipeline.TraitsResult`, then their geometry."""
    for summary in result.traits.values():
        add_trait_section(report, summary)
    if result.geometry_unavailable is not None:
        report.section("Geometry").unavailable("cosine of trait vectors", result.geometry_unavailable.reason)
    else:
        add_geometry_section(report, result.geometry_names, result.geometry_cosine, result.geometry_layer)


def sweep_figure(rows: Sequence[dict[str, Any]], trait: str):
    """Trait metric (top) and perplexity (bottom) against coefficient, one column per layer,
    the trait vector as a line and the random directions as a shaded min–max band."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    layers = sorted({r["layer"] for r in rows})
    fig = make_subplots(rows=2, cols=len(layers), shared_xaxes=True,
                        subplot_titles=[f"layer {l}" for l in layers], vertical_spacing=0.08)
    for col, layer in enumerate(layers, start=1):
        at = [r for r in rows if r["layer"] == layer]
        trait_rows = sorted((r for r in at if r["direction"] == "trait"), key=lambda r: r["coefficient"])
        coefs = [r["coefficient"] for r in trait_rows]
        band = [[r["trait_metric"] for r in at if r["direction"] != "trait" and r["coefficient"] == c] for c in coefs]
        show = col == 1
        fig.add_trace(go.Scatter(x=coefs, y=[max(b) if b else None for b in band], mode="lines", line=dict(width=0),
                                 showlegend=False, hoverinfo="skip"), row=1, col=col)
        fig.add_trace(go.Scatter(x=coefs, y=[min(b) if b else None for b in band], mode="lines", line=dict(width=0),
                                 fill="tonexty", fillcolor="rgba(150,150,150,0.35)", name="random directions (min–max)",
                                 showlegend=show), row=1, col=col)
        fig.add_trace(go.Scatter(x=coefs, y=[r["trait_metric"] for r in trait_rows], mode="lines+markers",
                                 name=f"{trait} vector", line=dict(color="crimson"), showlegend=show,
                                 error_y=dict(type="data", array=[r.get("stderr") or 0 for r in trait_rows])), row=1, col=col)
        fig.add_trace(go.Scatter(x=coefs, y=[r["perplexity"] for r in trait_rows], mode="lines+markers",
                                 name="perplexity (unsteered model)", line=dict(color="steelblue"), showlegend=show), row=2, col=col)
        fig.update_xaxes(title_text="coefficient (× activation norm)", row=2, col=col)
    fig.update_yaxes(title_text="trait metric (Δ log-lik/token)", row=1, col=1)
    fig.update_yaxes(title_text="perplexity", row=2, col=1)
    fig.update_layout(title=f"Steering with the {trait} vector", height=600)
    return fig
