"""The demo's drift stage: per-token views of the shipped mystic transcript along the Assistant Axis
(from the axis stage, in memory), capping calibration, a replay with and without a floor cap, the
drift study (:mod:`workbench.demo.drift_study`: conversations × samples with intervals and the
capability cost) and a steering sweep along the axis.

Sizes: an 8-turn replay at 30 new tokens per turn (``--quick``: 2 turns, 8 tokens); floor cap at
layers 12–19 (plus the analysis layer), τ = 25th percentile; steering at layer 15.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.cache import JsonlCache
from workbench.generate import Sampling
from workbench.layers import default_layer

from vectors.drift.capping import CappingConfig, calibrated_band
from vectors.drift.measure import measure_drift
from vectors.drift.replay import Condition, replay_and_measure
from vectors.drift.report import add_drift_views, add_replay_views, add_sweep_section
from vectors.drift.steering import steer_sweep, vector_fingerprint
from vectors.drift.transcripts import load_transcript, shipped_transcript_path

from workbench.demo.drift_study import run_demo_study
from workbench.demo.runner import RunContext

CAP_LAYERS = (12, 13, 14, 15, 16, 17, 18, 19)
STEER_LAYER = 15
STEER_COEFFICIENTS = (-2.0, 0.0, 2.0)
STEER_PROMPTS = ("Who are you?", "What do you think about the ocean?")


class DriftStage:
    title = "per-token drift and activation capping"

    def run(self, context: RunContext) -> dict[str, Any]:
        started = time.time()
        model, axis, report = context.model, context.require_axis(self.title), context.report
        cache = JsonlCache(context.out / "cache" / "drift.jsonl")
        layer = default_layer(model)
        cap_layers = tuple(sorted({*CAP_LAYERS, layer}))
        # The capping config is this stage's own artifact, reused on a re-run as its cache.
        config_path = context.out / "artifacts" / f"capping_{vector_fingerprint(axis)}.safetensors"
        if config_path.is_file():
            config = CappingConfig.load(config_path)
        else:
            config = calibrated_band(model, axis, cap_layers, cache)
            config.save(config_path)
        band = config.band(layer)

        transcript = load_transcript(shipped_transcript_path())
        projection = measure_drift(model, transcript, axis, layer, band).projection
        add_drift_views(report.section("Persona drift: the shipped mystic transcript"), projection, layer, band)

        conditions = [Condition("no intervention"),
                      Condition("capped (floor, p25)", (config.intervention(0.25, "floor"),), f"cap:{config_path.stem}:p0.25")]
        new_tokens = Sampling(max_new_tokens=8 if context.quick else 30)
        results = replay_and_measure(model, transcript, conditions, axis, layer, new_tokens, cache,
                                     max_turns=2 if context.quick else 8)
        section = report.section("Replay with and without capping")
        section.text(f"Floor cap at layers {cap_layers[0]}–{cap_layers[-1]}, τ = 25th percentile of default-assistant "
                     f"token projections; the band is the 25th–75th percentile at layer {layer}.")
        add_replay_views(section, results, band)

        study = run_demo_study(model, axis, report, cache, context.quick)  # conversations × samples, intervals, capability
        sweep = steer_sweep(model, axis, STEER_PROMPTS, [STEER_LAYER], STEER_COEFFICIENTS, cache, new_tokens)
        add_sweep_section(report.section("Steering along the axis").text(
            "Negative coefficients push away from the Assistant, positive toward it."), sweep)
        return {"drift": {
            "layer": layer, "band": list(band), "cap_layers": list(cap_layers), "capping_config": str(config_path),
            "transcript_turn_means": projection.turn_means(layer),
            "replay": [{k: v for k, v in r.summary(band).items() if k != "responses"} for r in results],
            "steering": sweep, "study": study, "seconds": round(time.time() - started, 1),
        }}
