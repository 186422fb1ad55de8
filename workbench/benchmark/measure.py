"""Timing and memory primitives: interleaved repeats, min/median, peak RSS of a code region.

Interleaving. The bench runs on shared machines, where load from other processes comes and goes;
timing variant A three times and then variant B three times would charge a load spike to one of
them. Each repeat runs every compared variant once, in an order rotated per repeat, and ratios are
taken from the minimum (the least disturbed run) with the median reported beside it.

Peak memory. Linux lets a process reset its resident-set high-water mark (writing ``5`` to
``/proc/self/clear_refs``), so the peak of one region is read as ``VmHWM`` after it, minus the RSS
before it. Where that is not allowed, ``ru_maxrss`` (peak over the whole process) is used instead.
"""

from __future__ import annotations

import ctypes
import re
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

_STATUS = Path("/proc/self/status")


@dataclass
class Timing:
    """Wall-clock and process CPU seconds of each repeat of one variant.

    CPU seconds are reported beside wall seconds because on an oversubscribed machine they count
    only this process's own work, not the time it waited for a core.
    """

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_min(self) -> float:
        return min(self.cpu_seconds)

    def scaled(self, factor: float) -> "Timing":
        return Timing([s * factor for s in self.seconds], [s * factor for s in self.cpu_seconds])

    def to_json(self) -> dict:
        return {"min_s": round(self.min, 6), "median_s": round(self.median, 6),
                "repeats_s": [round(s, 6) for s in self.seconds],
                "cpu_min_s": round(self.cpu_min, 6), "cpu_repeats_s": [round(s, 6) for s in self.cpu_seconds]}


def interleaved(
    variants: dict[str, Callable[[], object]], repeats: int, desc: str, progress: bool = True
) -> dict[str, Timing]:
    """Time every variant once per repeat, rotating the order so none always runs first."""
    timings = {name: Timing() for name in variants}
    names = list(variants)
    for repeat in tqdm(range(repeats), desc=desc, disable=not progress, unit="repeat"):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            started, cpu_started = time.perf_counter(), time.process_time()
            variants[name]()
            timings[name].seconds.append(time.perf_counter() - started)
            timings[name].cpu_seconds.append(time.process_time() - cpu_started)
    return timings


def _status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def rss_mib() -> float:
    """Current resident set size of this process in MiB."""
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else float("nan")


def _release_free_heap() -> None:
    """Return freed heap pages to the OS (glibc), so earlier frees do not hide the next peak."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> str:
    """Start a new peak-RSS window; returns the method the peak will be read with."""
    _release_free_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM after reset"
    except OSError:
        return "ru_maxrss (whole process; reset not permitted)"


def peak_rss_mib() -> float:
    """Peak resident set size in MiB since the last :func:`reset_peak_rss` (or process start)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024
