"""Render a :class:`~vectors.drift.study.DriftStudy`: per-turn curves with intervals, the
trade-off plot, metric tables and token views of representative turns (all text escaped by
:mod:`workbench.report`). No computing here beyond picking what to show."""

from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go

from workbench.report import Report, Section
from workbench.stats import Interval
from vectors.drift.study import ConditionResult, DriftStudy
from vectors.drift.study_metrics import METRICS

_LABELS = {"late_mean": "late-turn mean projection", "below_floor_share": "share of turns below the floor",
           "first_exit_turn": "first turn outside the default range", "in_band_share": "share of turns in the 25–75 band"}
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _fmt(interval: Interval) -> str:
    return "n/a" if math.isnan(interval.estimate) else f"{interval.estimate:.3g} [{interval.low:.3g}, {interval.high:.3g}]"


def curves_figure(conditions: Sequence[ConditionResult], study: DriftStudy) -> go.Figure:
    """Mean re-read projection per assistant turn, one line per condition, 95% band around each,
    with the floor and the default range as horizontal lines."""
    figure = go.Figure()
    for i, result in enumerate(conditions):
        colour = _COLOURS[i % len(_COLOURS)]
        turns = list(range(1, len(result.drift.curve) + 1))
        low = [c.low for c in result.drift.curve]
        high = [c.high for c in result.drift.curve]
        figure.add_trace(go.Scatter(x=turns + turns[::-1], y=high + low[::-1], fill="toself", fillcolor=colour,
                                    opacity=0.15, line={"width": 0}, hoverinfo="skip", showlegend=False))
        figure.add_trace(go.Scatter(x=turns, y=[c.estimate for c in result.drift.curve], mode="lines+markers",
                                    name=result.name, line={"color": colour}))
    t = study.thresholds
    figure.add_hline(y=t.floor, line_dash="dash", annotation_text=f"floor τ (p{t.floor_percentile:g})")
    figure.add_hrect(y0=t.range_low, y1=t.range_high, fillcolor="green", opacity=0.06, line_width=0,
                     annotation_text=f"default range p{t.range_percentiles[0]:g}–p{t.range_percentiles[1]:g}",
                     annotation_position="top left")
    figure.update_layout(title=f"Re-read projection per assistant turn at layer {t.layer} (95% intervals over "
                               f"conversations × samples)", xaxis_title="assistant turn", yaxis_title="mean projection",
                         height=420)
    return figure


def tradeoff_figure(study: DriftStudy) -> go.Figure:
    """Drift reduction (late-mean change, capped − uncapped) against capability cost (neutral-answer
    NLL change), one point per capping setting with both intervals, the chosen setting marked."""
    figure = go.Figure()
    chosen = study.config.chosen.name
    for result in study.conditions:
        if result.capability is None:
            continue
        x, y = result.capability.nll_change, result.difference["late_mean"]
        figure.add_trace(go.Scatter(
            x=[x.estimate], y=[y.estimate], mode="markers+text", text=[result.name], textposition="top center",
            name=result.name + (" (chosen)" if result.name == chosen else ""),
            marker={"size": 16 if result.name == chosen else 10, "symbol": "star" if result.name == chosen else
                    ("circle" if result.kind == "cap" else "diamond")},
            error_x={"type": "data", "symmetric": False, "array": [x.high - x.estimate], "arrayminus": [x.estimate - x.low]},
            error_y={"type": "data", "symmetric": False, "array": [y.high - y.estimate], "arrayminus": [y.estimate - y.low]},
        ))
    figure.add_hline(y=0, line_color="#999")
    figure.add_vline(x=0, line_color="#999")
    figure.update_layout(title="Trade-off: drift reduction against capability cost (★ = chosen setting)",
                         xaxis_title="capability cost: Δ NLL of neutral answers (nats/token, intervened − plain)",
                         yaxis_title="drift reduction: Δ late-turn projection (intervened − uncapped)", height=480)
    return figure


def metric_rows(study: DriftStudy) -> list[dict[str, str]]:
    rows = []
    for result in study.conditions:
        row = {"condition": result.name}
        for metric in METRICS:
            row[_LABELS[metric]] = _fmt(result.drift.metrics[metric])
            if result.kind != "none":
                row[f"Δ {metric}"] = _fmt(result.difference[metric])
        rows.append(row)
    return rows


def capability_rows(study: DriftStudy) -> list[dict[str, str]]:
    rows = []
    for result in study.conditions:
        c = result.capability
        if c is None:
            continue
        rows.append({"condition": result.name, "MC accuracy": _fmt(c.accuracy), "Δ accuracy": _fmt(c.accuracy_change),
                     "Δ log-prob margin": _fmt(c.margin_change), "perplexity (plain → intervened)":
                     f"{c.plain_perplexity:.3g} → {c.perplexity:.3g}", "Δ NLL / token": _fmt(c.nll_change)})
    return rows


def _representative(result: ConditionResult) -> tuple[int, int]:
    """(conversation, sample) whose late mean is the condition's median run."""
    runs = [(run.late_mean, c, s) for c, conversation in enumerate(result.drift.runs)
            for s, run in enumerate(conversation) if math.isfinite(run.late_mean)]
    runs.sort()
    _, c, s = runs[len(runs) // 2] if runs else (0, 0, 0)
    return c, s


def add_token_views(section: Section, study: DriftStudy, conditions: Sequence[ConditionResult]) -> Section:
    """The last assistant turn of each condition's median run, tokens coloured by projection − floor."""
    layer, floor = study.thresholds.layer, study.thresholds.floor
    for result in conditions:
        if not result.projections:
            continue
        c, s = _representative(result)
        projection = result.projections[c][s]
        spans = projection.assistant_spans
        if not spans:
            continue
        start, end = spans[-1]
        if end <= start:  # an empty reply has no tokens to show
            continue
        values = projection.turn_values(layer)[-1]
        section.text(f"{result.name}: {study.transcripts[c].rsplit('/', 1)[-1]}, sample {s}, last turn "
                     f"(colour: projection − floor {floor:.3g}; red = below the floor)")
        section.colored_tokens(projection.tokens[start:end], [v - floor for v in values.tolist()])
    return section


def add_study_sections(report: Report, study: DriftStudy, title: str = "Drift study") -> Report:
    """Curves, metric table, capability table, trade-off plot (if several settings) and token views."""
    t, cfg = study.thresholds, study.config
    section = report.section(title)
    section.text(
        f"{len(study.transcripts)} conversations × {cfg.samples} seeded samples per condition (temperature "
        f"{cfg.sampling.temperature:g}, {cfg.sampling.max_new_tokens} new tokens per turn), re-read by the plain model at "
        f"layer {t.layer}. Floor τ = p{t.floor_percentile:g} of default-assistant token projections = {t.floor:.3g}; "
        f"default range p{t.range_percentiles[0]:g}–p{t.range_percentiles[1]:g} = [{t.range_low:.3g}, {t.range_high:.3g}]; "
        f"band p25–p75 = [{t.band[0]:.3g}, {t.band[1]:.3g}]. Intervals: nested bootstrap (conversations, then samples), 95%.")
    section.plotly(curves_figure(study.conditions, study))
    section.table(metric_rows(study), caption="drift metrics per condition (estimate [95% interval]); Δ = condition − uncapped")
    if study.plain_capability is not None:
        section.table(capability_rows(study), caption=(
            f"capability cost: {len(study.plain_capability.correct)} multiple-choice items (plain accuracy "
            f"{study.plain_capability.accuracy:.3g}) and {len(study.plain_capability.neutral_loglik)} neutral answers; "
            "Δ = intervened − plain, paired over items"))
        if sum(r.kind == "cap" for r in study.conditions) > 1:
            section.plotly(tradeoff_figure(study))
    add_token_views(section, study, study.conditions)
    return report


def study_report(study: DriftStudy, in_role: dict[str, Interval] | None = None) -> Report:
    """The page ``workbench drift-study`` writes (with the judge's in-role rates, if judged)."""
    report = add_study_sections(Report(f"Drift study: {study.model}"), study)
    if in_role:
        report.section("Role-play judge").table(
            [{"condition": name, "in-role rate (judge score 3)": _fmt(rate)} for name, rate in in_role.items()],
            caption="share of replayed turns fully in the conversation's persona (95% interval)")
    return report
