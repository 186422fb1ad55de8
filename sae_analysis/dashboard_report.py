"""The dashboards page: the vector's dashboard, then one section per feature (anchor ``feature-N``).

Rendering only (a :class:`~sae_analysis.dashboards.Dashboards` in, a
:class:`~workbench.report.Report` out). One page per vector, so the plotly library and the
circuitsvis bundle are inlined once for all its features; every token and label is escaped by
:mod:`workbench.report`.
"""

from __future__ import annotations

from typing import Sequence

from workbench.report import Report, Section

from sae_analysis.dashboards import ContextGroup, Dashboards, FeatureDashboard, Histogram, LogitEffects

PAGE = "dashboards.html"


def feature_anchor(feature: int) -> str:
    """The fragment of a feature's section on the page (``dashboards.html#feature-N``)."""
    return f"feature-{int(feature)}"


def _histograms(panels: Sequence[tuple[str, Histogram]]):
    """Side-by-side bar charts of precomputed histograms."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for title, _ in panels])
    for i, (title, h) in enumerate(panels, 1):
        centres = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:])]
        fig.add_trace(go.Bar(x=centres, y=h.counts, name=title, showlegend=False), row=1, col=i)
    fig.update_layout(height=240, margin=dict(t=30, b=30, l=40, r=10), bargap=0)
    return fig


def _logit_tables(section: Section, logits: LogitEffects) -> None:
    rows = [{"promoted": t.token, "logit effect": t.value, "suppressed": b.token, "logit effect ": b.value}
            for t, b in zip(logits.top, logits.bottom)]
    section.table(rows, "logit effects (direction · W_U, no final norm): top and bottom 10 tokens")


def _contexts(section: Section, groups: Sequence[ContextGroup], scale: float) -> None:
    for group in groups:
        section.text(f"{group.label}: " + ", ".join(f"{c.value:.3g}" for c in group.contexts))
        for c in group.contexts:
            section.colored_tokens(c.tokens, c.values, minValue=-scale, maxValue=scale)


def _feature_section(report: Report, d: FeatureDashboard, on_page: set[int]) -> None:
    section = report.section(f"Feature {d.feature}")
    section.text(f"Listed for: {'; '.join(d.reasons)}.")
    if d.neuronpedia:
        section.link(d.neuronpedia, f"Neuronpedia: {d.neuronpedia}")
    section.text(f"Density: {d.density:.4%} of {d.n_tokens} corpus tokens (position 0 excluded). "
                 f"Logits: {d.logits.summary_line()}")
    section.plotly(_histograms([("logit effects (all tokens)", d.logits.histogram),
                                ("non-zero activations", d.activation_histogram)]))
    _logit_tables(section, d.logits)
    if d.groups:
        _contexts(section, d.groups, max(c.value for g in d.groups for c in g.contexts) or 1.0)
    else:
        section.note("Never fires on this corpus.")
    section.table([{"neighbour": f"feature {h.index}", "decoder cos": h.score} for h in d.neighbours],
                  "neighbours by decoder cosine")
    for h in d.neighbours:
        if h.index in on_page:
            section.link(f"#{feature_anchor(h.index)}", f"neighbour feature {h.index}")


def dashboard_report(dashboards: Dashboards) -> Report:
    """The page of a vector and its features."""
    v = dashboards.vector
    report = Report(f"Dashboards: {v.name} at layer {v.layer} ({dashboards.spec.id})")
    section = report.section("The vector")
    section.text(f"Corpus: {dashboards.n_rows} conversations, {dashboards.n_tokens} tokens. Logits: "
                 f"{v.logits.summary_line()}. Per-token projection onto the unit vector, by quantile below.")
    section.plotly(_histograms([("logit effects (all tokens)", v.logits.histogram),
                                ("projection of corpus tokens", v.projection_histogram)]))
    _logit_tables(section, v.logits)
    section.table([{"feature": h.index, "decoder cos": h.score, "logits": line} for h, line in v.features],
                  "top features (decoder cosine)")
    for h, _ in v.features:
        if h.index in dashboards.features:
            section.link(f"#{feature_anchor(h.index)}", f"feature {h.index}")
    scale = max((abs(c.value) for g in v.groups for c in g.contexts), default=1.0) or 1.0
    _contexts(report.section("Projection of the vector by quantile"), v.groups, scale)
    for d in dashboards.features.values():
        _feature_section(report, d, set(dashboards.features))
    return report
