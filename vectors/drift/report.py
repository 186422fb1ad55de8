"""Figures and report sections of drift, replays and steering sweeps along a vector.

Views of one conversation at layer L: a plotly line per assistant turn (token index within the turn
vs projection) with the default-assistant band (25th–75th percentile of default-response token
projections) shaded; per-turn means; and a circuitsvis token view per assistant turn, coloured by
projection minus the band's midpoint (red: below, toward role-play; blue: above). All transcript
text reaches the page escaped (:mod:`workbench.report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go

from workbench.report import Report, Section
from vectors.drift.measure import Band, DriftMeasurement
from vectors.drift.projection import ChatProjection, in_band_share
from vectors.drift.replay import ReplayResult


def _shade(figure: go.Figure, band: Band) -> go.Figure:
    figure.add_hrect(y0=band[0], y1=band[1], fillcolor="green", opacity=0.12, line_width=0,
                     annotation_text="default assistant 25–75%", annotation_position="top left")
    return figure


def turn_lines_figure(projection: ChatProjection, layer: int, band: Band) -> go.Figure:
    """Projection along each assistant turn, one line per turn, default band shaded."""
    figure = go.Figure()
    for turn, values in enumerate(projection.turn_values(layer), 1):
        figure.add_trace(go.Scatter(y=values.tolist(), mode="lines", name=f"turn {turn}"))
    figure.update_layout(title=f"Per-token projection at layer {layer}", xaxis_title="token in turn",
                         yaxis_title="projection ⟨h, v̂⟩", height=380)
    return _shade(figure, band)


def turn_means_figure(series: dict[str, Sequence[float]], layer: int, band: Band) -> go.Figure:
    """Mean projection per assistant turn, one line per condition, default band shaded."""
    figure = go.Figure()
    for name, means in series.items():
        figure.add_trace(go.Scatter(x=list(range(1, len(means) + 1)), y=list(means), mode="lines+markers", name=name))
    figure.update_layout(title=f"Mean projection per assistant turn at layer {layer}", xaxis_title="assistant turn",
                         yaxis_title="mean projection", height=360)
    return _shade(figure, band)


def add_drift_views(section: Section, projection: ChatProjection, layer: int, band: Band) -> Section:
    """Per-turn lines, per-turn means and a coloured token view per assistant turn."""
    means = projection.turn_means(layer)
    section.text(f"How the conversation was read: {projection.method}.")
    section.plotly(turn_lines_figure(projection, layer, band))
    section.plotly(turn_means_figure({"transcript": means}, layer, band))
    section.table([{"turn": i, "mean projection": m, "in band": in_band_share([m], band) == 1.0}
                   for i, m in enumerate(means, 1)], caption=f"band [{band[0]:.3g}, {band[1]:.3g}]")
    middle = (band[0] + band[1]) / 2
    for turn, ((start, end), values) in enumerate(zip(projection.assistant_spans, projection.turn_values(layer)), 1):
        section.text(f"Assistant turn {turn} (colour: projection − {middle:.3g}; red = toward role-play)")
        section.colored_tokens(projection.tokens[start:end], [v - middle for v in values.tolist()])
    return section


def add_replay_views(section: Section, results: Sequence[ReplayResult], band: Band) -> Section:
    """Per-turn means per condition (re-read and as generated), in-band shares, replies side by side."""
    layer = results[0].layer
    section.plotly(turn_means_figure({r.condition: r.reread.turn_means(layer) for r in results}, layer, band))
    section.text("Above: the plain model re-reading each replayed conversation. Below: the projections with "
                 "each condition's interventions active, as the model computed them while writing.")
    section.plotly(turn_means_figure({r.condition: r.as_generated.turn_means(layer) for r in results}, layer, band))
    summaries = [r.summary(band) for r in results]
    section.table([{"condition": s["condition"], "in band (re-read)": s["in_band_share_reread"],
                    "in band (as generated)": s["in_band_share_as_generated"]} for s in summaries],
                  caption="share of assistant turns whose mean projection lies in the default band")
    users = [m["content"] for m in results[0].conversation if m["role"] == "user"]
    rows = [{"turn": turn + 1, "user": user, **{s["condition"]: s["responses"][turn] for s in summaries}}
            for turn, user in enumerate(users)]
    return section.table(rows, caption="replayed assistant turns per condition")


def drift_report(result: DriftMeasurement) -> Report:
    """The ``workbench drift`` page: the transcript's views, then its replays and judge rates."""
    report = Report(f"Drift: {Path(result.transcript.source).name}")
    add_drift_views(report.section(f"Drift along {result.vector_method}"), result.projection, result.layer, result.band)
    if result.replays:
        section = add_replay_views(report.section("Replay per condition"), result.replays, result.band)
        if result.judged:
            section.table([{"condition": c, "in-role rate (judge score 3)": j["in_role_rate"], "unscored": j["unscored"]}
                           for c, j in result.judged.items()], caption="role-play judge on the replayed turns")
    return report


def side_by_side(rows: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """One table row per prompt, one column per coefficient (for reports and the terminal)."""
    table: dict[str, dict[str, str]] = {}
    for row in rows:
        table.setdefault(row["prompt"], {"prompt": row["prompt"]})[f"coef {row['coefficient']:+g}"] = row["response"]
    return list(table.values())


def add_sweep_section(section: Section, rows: Sequence[dict[str, Any]]) -> Section:
    """Side-by-side outputs of a steering sweep (:func:`vectors.drift.steering.steer_sweep`; all text escaped)."""
    layers = rows[0]["layers"] if rows else []
    return section.table(side_by_side(rows), caption=f"steering at layers {layers}: outputs per coefficient")
