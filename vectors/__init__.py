"""Persona space and trait vectors: personas and the Assistant Axis (:mod:`vectors.axis`),
contrastive trait vectors (:mod:`vectors.traits`), per-token projection, drift, steering and
activation capping (:mod:`vectors.drift`), the capability cost of an intervention (:mod:`vectors.capability`).
Builds on :mod:`workbench`.

Each pipeline's entry point is here; every public name is in its subpackage. Names load on first
use (:mod:`workbench.exports`).
"""

from workbench.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "vectors.axis.pipeline": ("AxisConfig", "AxisResult", "run_axis"),
    "vectors.traits.data": ("TraitData", "load_trait"),
    "vectors.traits.pipeline": ("TraitConfig", "TraitsResult", "run_traits"),
    "vectors.drift.transcripts": ("Transcript", "load_transcript"),
    "vectors.drift.measure": ("DriftMeasurement", "measure_drift"),
    "vectors.drift.capping": ("CappingConfig", "calibrate"),
    "vectors.drift.steering": ("steer_sweep",),
    "vectors.capability": ("CapabilityScores", "capability_cost", "capability_scores", "load_choice_items",
                           "load_neutral_answers"),
})
