"""Drift and interventions along a vector: transcripts, per-token projection, drift views, steering
sweeps along the axis, activation capping and replays with and without it.

Names load on first use (:mod:`workbench.exports`).
"""

from workbench.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "vectors.drift.transcripts": ("Transcript", "load_transcript", "load_transcripts", "shipped_transcript_path"),
    "vectors.drift.projection": ("ChatProjection", "in_band_share", "project_chat", "project_chats"),
    "vectors.drift.capping": ("CappingConfig", "calibrate", "calibrated_band", "calibration_questions",
                              "default_assistant_chats"),
    "vectors.drift.replay": ("Condition", "ReplayResult", "judge_in_role", "replay_and_measure"),
    "vectors.drift.measure": ("DriftMeasurement", "measure_drift"),
    "vectors.drift.steering": ("steer_sweep", "vector_fingerprint"),
    "vectors.drift.report": ("add_drift_views", "add_replay_views", "add_sweep_section", "drift_report", "side_by_side",
                             "turn_lines_figure", "turn_means_figure"),
})
