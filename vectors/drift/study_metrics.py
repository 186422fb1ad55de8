"""Drift metrics of replayed conversations that can move either way, with intervals.

Why these. The share of turns inside the default band (25th–75th percentile of default-assistant
token projections) cannot reward a floor cap: a cap at the 25th percentile holds text *at or above*
the band's low edge, often above its high edge, so a well-capped model can score worse than a
drifting one. The metrics here are read against the calibrated thresholds they name:

- ``late_mean``: mean re-read projection over the last half of the turns (higher = more Assistant);
- ``below_floor_share``: share of turns whose mean projection lies below the cap's floor τ (the
  threshold at the cap's percentile at the reading layer);
- ``first_exit_turn``: first turn (1-based) whose mean leaves the default range (a low and a high
  percentile, 5th–95th by default), either side; a run that never leaves counts as turns + 1;
- ``in_band_share``: kept for comparison with the old headline, against the 25th–75th band.

Each metric has a nested-bootstrap 95% interval over conversations × samples, and a condition's
difference from the uncapped one resamples the same conversations for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from workbench.stats import Interval, nested_bootstrap_difference, nested_bootstrap_mean
from vectors.drift.capping import CappingConfig
from vectors.drift.projection import in_band_share

METRICS = ("late_mean", "below_floor_share", "first_exit_turn", "in_band_share")


@dataclass(frozen=True)
class DriftThresholds:
    """The calibrated thresholds at the reading layer, each with the percentile it is."""

    layer: int
    floor: float
    floor_percentile: float
    range_low: float
    range_high: float
    range_percentiles: tuple[float, float]
    band: tuple[float, float]
    band_percentiles: tuple[float, float] = (0.25, 0.75)

    @classmethod
    def from_config(
        cls, config: CappingConfig, layer: int, floor_percentile: float = 0.25,
        range_percentiles: tuple[float, float] = (0.05, 0.95), band_percentiles: tuple[float, float] = (0.25, 0.75),
    ) -> "DriftThresholds":
        """Read every threshold from ``config`` (InputFormatError if a percentile was not calibrated)."""
        return cls(layer, config.threshold(layer, floor_percentile), floor_percentile,
                   config.threshold(layer, range_percentiles[0]), config.threshold(layer, range_percentiles[1]),
                   range_percentiles, config.band(layer, *band_percentiles), band_percentiles)

    def slack(self) -> float:
        """Float32 rounding allowance (as :func:`in_band_share`): a turn capped exactly at τ is not below it."""
        return 1e-4 * max(abs(self.band[0]), abs(self.band[1]), 1.0)

    def to_summary(self) -> dict[str, Any]:
        return {"layer": self.layer, "floor": {"percentile": self.floor_percentile, "value": self.floor},
                "default_range": {"percentiles": list(self.range_percentiles), "values": [self.range_low, self.range_high]},
                "band": {"percentiles": list(self.band_percentiles), "values": list(self.band)}}


@dataclass(frozen=True)
class RunMetrics:
    """The metrics of one replayed conversation (one sample) from its per-turn mean projections."""

    late_mean: float
    below_floor_share: float
    first_exit_turn: int
    in_band_share: float

    def value(self, metric: str) -> float:
        return float(getattr(self, metric))


def run_metrics(turn_means: Sequence[float], thresholds: DriftThresholds) -> RunMetrics:
    """Metrics of one run; ``turn_means[t]``: mean re-read projection of assistant turn t + 1 (NaN
    for an empty reply, which no metric counts)."""
    means = list(turn_means)
    finite = [m for m in means if math.isfinite(m)]
    if not finite:
        return RunMetrics(math.nan, math.nan, len(means) + 1, math.nan)
    late = [m for m in means[len(means) // 2 :] if math.isfinite(m)] or finite[-1:]
    slack = thresholds.slack()
    below = sum(m < thresholds.floor - slack for m in finite) / len(finite)
    outside = (i for i, m in enumerate(means, 1) if math.isfinite(m)
               and (m < thresholds.range_low - slack or m > thresholds.range_high + slack))
    return RunMetrics(sum(late) / len(late), below, next(outside, len(means) + 1),
                      in_band_share(finite, thresholds.band))


@dataclass(frozen=True)
class ConditionDrift:
    """One condition's per-turn curve and metrics over conversations × samples.

    ``turn_means[c][s][t]``: conversation c, sample s, turn t. ``curve[t]``: mean over conversations
    (each the mean of its samples) with its interval, over the runs that reached turn t.
    """

    condition: str
    turn_means: tuple[tuple[tuple[float, ...], ...], ...]
    runs: tuple[tuple[RunMetrics, ...], ...]
    curve: tuple[Interval, ...]
    metrics: dict[str, Interval]

    def groups(self, metric: str) -> list[list[float]]:
        return [[run.value(metric) for run in conversation] for conversation in self.runs]

    def to_summary(self) -> dict[str, Any]:
        return {"condition": self.condition, "curve": [i.to_summary() for i in self.curve],
                "metrics": {k: v.to_summary() for k, v in self.metrics.items()}}


def condition_drift(condition: str, turn_means: Sequence[Sequence[Sequence[float]]], thresholds: DriftThresholds) -> ConditionDrift:
    """Curve and metric intervals of one condition from its per-turn means."""
    runs = tuple(tuple(run_metrics(run, thresholds) for run in conversation) for conversation in turn_means)
    n_turns = max(len(run) for conversation in turn_means for run in conversation)
    curve = []
    for t in range(n_turns):
        groups = [[run[t] for run in conversation if len(run) > t and math.isfinite(run[t])] for conversation in turn_means]
        curve.append(nested_bootstrap_mean([g for g in groups if g], seed=t))
    drift = ConditionDrift(condition, tuple(tuple(tuple(r) for r in c) for c in turn_means), runs, tuple(curve), {})
    metrics = {metric: nested_bootstrap_mean(drift.groups(metric)) for metric in METRICS}
    return ConditionDrift(drift.condition, drift.turn_means, runs, drift.curve, metrics)


def drift_difference(treated: ConditionDrift, control: ConditionDrift) -> dict[str, Interval]:
    """``treated − control`` for every metric, the same conversations resampled for both."""
    return {metric: nested_bootstrap_difference(treated.groups(metric), control.groups(metric)) for metric in METRICS}
