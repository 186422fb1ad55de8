"""Drift views and the demo's drift/capping stage: projections → report sections and JSON.

Views of one conversation at layer L: a plotly line per assistant turn (token index within the turn
vs projection) with the default-assistant band (25th–75th percentile of default-response token
projections) shaded; per-turn means; and a circuitsvis token view per assistant turn, coloured by
projection minus the band's midpoint (red: below, toward role-play; blue: above). All transcript
text reaches the page escaped (:mod:`workbench.report`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go

from workbench.artifacts import LayerVectors, atomic_write_text
from workbench.cache import JsonlCache
from workbench.chat import format_conversation
from workbench.generate import Sampling
from workbench.report import Report, Section
from vectors.drift.capping import CappingConfig, calibrate, calibration_questions, default_assistant_chats
from vectors.drift.demo_study import run_demo_study
from vectors.drift.projection import ChatProjection, in_band_share, project_chat
from vectors.drift.replay import Condition, ReplayResult, replay_and_measure
from vectors.drift.steering import add_sweep_section, steer_sweep, vector_fingerprint
from vectors.drift.transcripts import Transcript, load_transcript, shipped_transcript_path

Band = tuple[float, float]


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


def drift_json(projection: ChatProjection, layer: int, band: Band, transcript: Transcript) -> dict[str, Any]:
    """What ``drift.json`` holds: band, per-turn means, per-token values, the transcript's metadata."""
    return {"source": transcript.source, "metadata": transcript.metadata, "band": list(band),
            "in_band_share": in_band_share(projection.turn_means(layer), band), **projection.to_json(layer)}


def write_drift(
    model, transcript: Transcript, vectors: LayerVectors, layer: int, band: Band, out_dir: str | Path,
    replays: Sequence[ReplayResult] = (),
    judged: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``out_dir/drift.html`` and ``out_dir/drift.json`` for one transcript (and its replays and
    their judge in-role rates, if any); returns the JSON."""
    out_dir = Path(out_dir)
    projection = project_chat(model, format_conversation(model.tokenizer, list(transcript.messages)), vectors, [layer])
    report = Report(f"Drift: {Path(transcript.source).name}")
    add_drift_views(report.section(f"Drift along {vectors.metadata.get('method', 'the vector')}"),
                    projection, layer, band)
    data = drift_json(projection, layer, band, transcript)
    if replays:
        section = add_replay_views(report.section("Replay per condition"), replays, band)
        data["replay"] = [r.summary(band) for r in replays]
        if judged:
            section.table([{"condition": c, "in-role rate (judge score 3)": j["in_role_rate"], "unscored": j["unscored"]}
                           for c, j in judged.items()], caption="role-play judge on the replayed turns")
            for summary in data["replay"]:
                summary["judge"] = judged.get(summary["condition"], {})
    report.write(out_dir / "drift.html")
    atomic_write_text(out_dir / "drift.json", json.dumps(data, indent=1, ensure_ascii=False))
    return data


def calibrated_band(model, vectors: LayerVectors, layers: Sequence[int], cache: JsonlCache,
                    sampling: Sampling = Sampling(max_new_tokens=40)) -> CappingConfig:
    """Calibrate on the shipped neutral questions' default answers (generated once, cached)."""
    chats = default_assistant_chats(model, calibration_questions(), sampling, cache)
    return calibrate(model, vectors, chats, layers)


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


# ------------------------------------------------------------------------------------------ demo

DEMO_CAP_LAYERS = (12, 13, 14, 15, 16, 17, 18, 19)
DEMO_STEER_LAYER = 15
DEMO_STEER_COEFFICIENTS = (-2.0, 0.0, 2.0)
DEMO_STEER_PROMPTS = ("Who are you?", "What do you think about the ocean?")


def run_demo_stage(
    model, out_dir: Path, report: Report, axis: LayerVectors | None = None, quick: bool = False
) -> dict[str, Any]:
    """The demo's drift stage: per-token views of the shipped mystic transcript, capping calibration,
    an 8-turn replay (30 new tokens per turn) with and without a floor cap, and a steering sweep
    (``quick``: 2 turns and 8 new tokens, for the CI's smoke run).

    ``axis``: the Assistant Axis (default: the axis stage's, from its caches under ``out_dir``).
    """
    from vectors.axis.pipeline import DEMO_CONFIG, default_layer, run_axis

    started = time.time()
    out_dir = Path(out_dir)
    cache = JsonlCache(out_dir / "cache" / "drift.jsonl")
    if axis is None:
        axis = run_axis(model, DEMO_CONFIG, out_dir).axis
    layer = default_layer(model)
    cap_layers = tuple(sorted({*DEMO_CAP_LAYERS, layer}))
    config_path = out_dir / "artifacts" / f"capping_{vector_fingerprint(axis)}.safetensors"
    if config_path.is_file():
        config = CappingConfig.load(config_path)
    else:
        config = calibrated_band(model, axis, cap_layers, cache)
        config.save(config_path)
    band = config.band(layer)

    transcript = load_transcript(shipped_transcript_path())
    projection = project_chat(model, format_conversation(model.tokenizer, list(transcript.messages)), axis, [layer])
    add_drift_views(report.section("Persona drift: the shipped mystic transcript"), projection, layer, band)

    conditions = [Condition("no intervention"),
                  Condition("capped (floor, p25)", (config.intervention(0.25, "floor"),), f"cap:{config_path.stem}:p0.25")]
    new_tokens = Sampling(max_new_tokens=8 if quick else 30)
    results = replay_and_measure(model, transcript, conditions, axis, layer, new_tokens, cache, max_turns=2 if quick else 8)
    section = report.section("Replay with and without capping")
    section.text(f"Floor cap at layers {cap_layers[0]}–{cap_layers[-1]}, τ = 25th percentile of default-assistant "
                 f"token projections; the band is the 25th–75th percentile at layer {layer}.")
    add_replay_views(section, results, band)

    study = run_demo_study(model, axis, report, cache, quick)  # conversations × samples, intervals, capability
    sweep = steer_sweep(model, axis, DEMO_STEER_PROMPTS, [DEMO_STEER_LAYER], DEMO_STEER_COEFFICIENTS, cache, new_tokens)
    add_sweep_section(report.section("Steering along the axis").text(
        "Negative coefficients push away from the Assistant, positive toward it."), sweep)
    return {"drift": {
        "layer": layer, "band": list(band), "cap_layers": list(cap_layers), "capping_config": str(config_path),
        "transcript_turn_means": projection.turn_means(layer),
        "replay": [{k: v for k, v in r.summary(band).items() if k != "responses"} for r in results],
        "steering": sweep, "study": study, "seconds": round(time.time() - started, 1),
    }}
