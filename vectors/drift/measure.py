"""One transcript's drift along a vector at one layer, as a typed result.

:func:`measure_drift` projects the transcript (and takes any replays already measured by
:func:`vectors.drift.replay.replay_and_measure` and their judge rates); :class:`DriftMeasurement`
holds it all and ``to_summary()`` is what ``workbench drift`` writes as ``drift.json``. The page is
drawn by :func:`vectors.drift.report.drift_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from workbench.artifacts import LayerVectors
from workbench.chat import format_conversation
from vectors.drift.projection import ChatProjection, in_band_share, project_chat
from vectors.drift.replay import ReplayResult
from vectors.drift.transcripts import Transcript

Band = tuple[float, float]


@dataclass(frozen=True)
class DriftMeasurement:
    """A transcript's per-token projection at ``layer`` against the default-assistant ``band``,
    with the replays per condition and (optionally) the judge's in-role rate per condition."""

    transcript: Transcript
    projection: ChatProjection
    layer: int
    band: Band
    vector_method: str = "the vector"
    replays: tuple[ReplayResult, ...] = ()
    judged: dict[str, dict[str, Any]] | None = None

    def to_summary(self) -> dict[str, Any]:
        """Band, per-turn means, per-token values, the transcript's metadata, and per replayed
        condition its per-turn means, in-band shares, replies and judge rates."""
        data = {"source": self.transcript.source, "metadata": self.transcript.metadata, "band": list(self.band),
                "in_band_share": in_band_share(self.projection.turn_means(self.layer), self.band),
                **self.projection.to_json(self.layer)}
        if self.replays:
            data["replay"] = [r.summary(self.band) for r in self.replays]
            if self.judged:
                for summary in data["replay"]:
                    summary["judge"] = self.judged.get(summary["condition"], {})
        return data


def measure_drift(
    model, transcript: Transcript, vectors: LayerVectors, layer: int, band: Band,
    replays: Sequence[ReplayResult] = (), judged: dict[str, dict[str, Any]] | None = None,
) -> DriftMeasurement:
    """Project ``transcript`` onto ``vectors`` at ``layer``; bundle it with ``replays`` and ``judged``."""
    projection = project_chat(model, format_conversation(model.tokenizer, list(transcript.messages)), vectors, [layer])
    return DriftMeasurement(transcript, projection, layer, band, vectors.metadata.get("method", "the vector"),
                            tuple(replays), judged)
