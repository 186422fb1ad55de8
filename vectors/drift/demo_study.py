"""The demo's drift study: the shipped drifting conversations × seeded samples, uncapped against the
calibrated floor cap, with intervals and the capability cost; one report section and the summary
fragment. Called by the demo's drift stage (kept apart so the stage stays a thin caller)."""

from __future__ import annotations

from typing import Any

from workbench.artifacts import LayerVectors
from workbench.cache import JsonlCache
from workbench.report import Report
from vectors.drift.capability import load_choice_items, load_neutral_answers
from vectors.drift.study import demo_study_config, run_study
from vectors.drift.study_report import add_study_sections
from vectors.drift.transcripts import load_transcript, shipped_drift_transcripts


def run_demo_study(model, axis: LayerVectors, report: Report, cache: JsonlCache, quick: bool = False) -> dict[str, Any]:
    """The demo's drift study (:func:`~vectors.drift.study.demo_study_config`): the shipped drifting
    conversations (``quick``: 2) uncapped against the calibrated cap, with the capability cost on
    the whole multiple-choice set (``quick``: 9 items, 4 neutral answers); its section and summary."""
    items, neutral = load_choice_items(), load_neutral_answers()
    if quick:
        items, neutral = items[::12], neutral[:4]
    transcripts = [load_transcript(p) for p in shipped_drift_transcripts()[: 2 if quick else None]]
    study = run_study(model, axis, transcripts, demo_study_config(quick), cache, items, neutral)
    add_study_sections(report, study, "Drift study: capped against uncapped over conversations × samples")
    chosen = study.chosen
    return {"late_mean_capped_minus_uncapped": chosen.difference["late_mean"].to_summary(),
            "below_floor_share_capped_minus_uncapped": chosen.difference["below_floor_share"].to_summary(),
            "first_exit_turn_capped_minus_uncapped": chosen.difference["first_exit_turn"].to_summary(),
            "capability_cost": chosen.capability.to_summary() if chosen.capability else None,
            **study.to_summary()}
