"""The demo's drift study: the shipped drifting conversations × seeded samples, uncapped against the
calibrated floor cap, with intervals and the capability cost; one report section and the summary
fragment. Called by the demo's drift stage (kept apart so the stage stays a thin caller).

Sizes: uncapped against the floor cap at layers 12–19, τ = 25th percentile; 5 samples × 6 turns of 24
tokens per conversation, every shipped drifting conversation, the whole multiple-choice set
(``--quick``: 2 conversations, 2 samples × 2 turns of 8 tokens, 9 items, 4 neutral answers).
"""

from __future__ import annotations

from typing import Any

from workbench.artifacts import LayerVectors
from workbench.cache import JsonlCache
from workbench.generate import Sampling
from workbench.report import Report

from vectors.capability import load_choice_items, load_neutral_answers
from vectors.drift.study import CapSetting, StudyConfig, run_study
from vectors.drift.study_report import add_study_sections
from vectors.drift.transcripts import load_transcript, shipped_drift_transcripts

DEMO_CAP = CapSetting(12, 19, 0.25)


def demo_study_config(quick: bool = False) -> StudyConfig:
    """The demo's study: uncapped against the calibrated floor cap (layers 12–19, p25), 5 samples ×
    6 turns of 24 tokens per conversation (``quick``: 2 samples × 2 turns of 8 tokens); no steering."""
    return StudyConfig(cap_grid=(DEMO_CAP,), chosen=DEMO_CAP, samples=2 if quick else 5, max_turns=2 if quick else 6,
                       sampling=Sampling(max_new_tokens=8 if quick else 24, temperature=0.7, top_p=0.9),
                       steer_coefficient=None)


def run_demo_study(model, axis: LayerVectors, report: Report, cache: JsonlCache, quick: bool = False) -> dict[str, Any]:
    """The demo's drift study (:func:`demo_study_config`): the shipped drifting
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
