"""Percentile-bootstrap 95% intervals for means, flat or nested (conversations × samples).

Why nested. A drift study replays each conversation several times; samples of one conversation
share its user turns and are not independent. Resampling conversations, then samples within each
resampled conversation, gives an interval that covers both sources of variation (a flat bootstrap
over all replays would be too narrow when conversations differ). A difference between two
conditions resamples the *same* conversations for both, and samples independently per condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from workbench.errors import InputFormatError

N_BOOT = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile-bootstrap interval and the number of units behind it."""

    estimate: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_summary(self) -> dict[str, Any]:
        return {"estimate": _finite(self.estimate), "ci95": [_finite(self.low), _finite(self.high)], "n": self.n}

    def __str__(self) -> str:
        return f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}]"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _interval(estimate: float, draws: np.ndarray, n: int) -> Interval:
    draws = draws[np.isfinite(draws)]
    if not len(draws) or not math.isfinite(estimate):
        return Interval(float(estimate), float("nan"), float("nan"), n)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), n)


def bootstrap_mean(values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """Mean of ``values`` (NaNs dropped) with a 95% percentile-bootstrap interval."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if not len(data):
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    draws = data[rng.integers(0, len(data), (n_boot, len(data)))].mean(axis=1)
    return _interval(float(data.mean()), draws, len(data))


def _check_groups(groups: Sequence[Sequence[float]], name: str) -> list[np.ndarray]:
    arrays = [np.asarray(g, dtype=float) for g in groups]
    arrays = [a[np.isfinite(a)] for a in arrays]
    if not arrays or any(not len(a) for a in arrays):
        raise InputFormatError(f"{name}: every group (conversation) needs at least one finite value")
    return arrays


def _nested_draws(groups: list[np.ndarray], picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean over resampled groups (``picks``: [n_boot, n_groups]) of the mean over resampled values."""
    n_boot, n_groups = picks.shape
    out = np.zeros(n_boot)
    for g, values in enumerate(groups):
        inner = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
        out += inner * (picks == g).sum(axis=1)
    return out / n_groups


def nested_bootstrap_mean(groups: Sequence[Sequence[float]], n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """Mean over groups of each group's mean, with a two-level bootstrap interval (groups, then
    values within a group). ``groups[c]``: the values of conversation c (one per sample)."""
    arrays = _check_groups(groups, "nested bootstrap")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(arrays), (n_boot, len(arrays)))
    estimate = float(np.mean([a.mean() for a in arrays]))
    return _interval(estimate, _nested_draws(arrays, picks, rng), sum(len(a) for a in arrays))


def nested_bootstrap_difference(
    treated: Sequence[Sequence[float]], control: Sequence[Sequence[float]], n_boot: int = N_BOOT, seed: int = 0
) -> Interval:
    """``treated − control`` of nested means; group c is the same conversation in both, so groups
    are resampled jointly and values within each group independently per condition."""
    a, b = _check_groups(treated, "treated"), _check_groups(control, "control")
    if len(a) != len(b):
        raise InputFormatError(f"difference needs the same conversations: {len(a)} treated vs {len(b)} control")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), (n_boot, len(a)))
    estimate = float(np.mean([x.mean() for x in a]) - np.mean([y.mean() for y in b]))
    draws = _nested_draws(a, picks, rng) - _nested_draws(b, picks, rng)
    return _interval(estimate, draws, sum(len(x) for x in a) + sum(len(y) for y in b))


def paired_bootstrap_difference(
    treated: Sequence[float], control: Sequence[float], n_boot: int = N_BOOT, seed: int = 0
) -> Interval:
    """Mean of ``treated[i] − control[i]`` over items scored under both, with a bootstrap interval."""
    if len(treated) != len(control):
        raise InputFormatError(f"paired difference needs equal lengths, got {len(treated)} and {len(control)}")
    return bootstrap_mean(np.asarray(treated, dtype=float) - np.asarray(control, dtype=float), n_boot, seed)
