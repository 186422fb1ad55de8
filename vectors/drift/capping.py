"""Activation capping: calibrate τ_L per layer from default-assistant responses, save, apply.

The paper (Assistant Axis) caps with a **floor**: at every position of every layer in a range it
keeps the projection on the axis from falling *below* τ_L, h ← h + max(0, τ_L − ⟨h, v̂⟩)·v̂, so the
model cannot drift away from the Assistant end. (The ceiling formula with the axis and threshold
negated, v̂ → −v̂ and τ → −τ, is the same edit.) A ``ceiling``, h ← h − max(0, ⟨h, v̂⟩ − τ_L)·v̂,
suits directions that point *toward* the unwanted behaviour, e.g. a trait vector. Both are
:class:`~workbench.hooks.CapProjection`; this module only decides τ_L.

τ_L are percentiles (default 0.01, 0.25, 0.5, 0.75) of the projections of default-assistant
response tokens at each layer of a range; the paper's best settings on large models were 8–16
consecutive upper-middle layers at the 25th percentile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.artifacts import LayerVectors, inputs_hash, load_tensors, provenance, save_tensors
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.chat import ChatTokens, format_conversation, messages
from workbench.errors import InputFormatError, LayerError, ShapeError
from workbench.generate import Sampling, generate_responses
from workbench.hooks import CapProjection, Where
from workbench.distributed import DEFAULT_CHUNK, SINGLE, ChunkStore, Shard
from workbench.layers import check_layer
from vectors.drift.projection import project_chats, response_quantiles
from vectors.drift.steering import vector_fingerprint

DEFAULT_PERCENTILES = (0.01, 0.25, 0.5, 0.75)
_QUESTIONS = Path(__file__).parents[1] / "data" / "transcripts" / "calibration_questions.json"


@dataclass(frozen=True)
class CappingConfig:
    """Thresholds τ per (percentile, layer) and the directions they were measured along.

    ``directions[i]`` is the raw direction at ``layers[i]``; ``thresholds[j, i]`` is the
    ``percentiles[j]`` quantile of default-assistant token projections ⟨h, v̂⟩ at ``layers[i]``.
    """

    directions: Float[Tensor, "layer d_model"]
    layers: tuple[int, ...]
    percentiles: tuple[float, ...]
    thresholds: Float[Tensor, "percentile layer"]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.directions.shape[0] != len(self.layers) or tuple(self.thresholds.shape) != (
            len(self.percentiles), len(self.layers)
        ):
            raise ShapeError(
                f"capping config: directions {tuple(self.directions.shape)} and thresholds "
                f"{tuple(self.thresholds.shape)} do not fit {len(self.layers)} layers × "
                f"{len(self.percentiles)} percentiles"
            )

    def _row(self, percentile: float) -> int:
        for j, p in enumerate(self.percentiles):
            if abs(p - percentile) < 1e-9:
                return j
        raise InputFormatError(f"percentile {percentile} was not calibrated (have {list(self.percentiles)})")

    def _column(self, layer: int) -> int:
        if layer not in self.layers:
            raise LayerError(f"layer {layer} was not calibrated (calibrated layers: {list(self.layers)})")
        return self.layers.index(layer)

    def threshold(self, layer: int, percentile: float = 0.25) -> float:
        return float(self.thresholds[self._row(percentile), self._column(layer)])

    def band(self, layer: int, low: float = 0.25, high: float = 0.75) -> tuple[float, float]:
        """The default-assistant band (low, high percentile) at ``layer``."""
        return self.threshold(layer, low), self.threshold(layer, high)

    def intervention(
        self,
        percentile: float = 0.25,
        mode: Literal["floor", "ceiling"] = "floor",
        layers: Sequence[int] | None = None,
        where: Where = "all",
    ) -> CapProjection:
        """The CapProjection at ``layers`` (default: all calibrated) with τ at ``percentile``."""
        layers = tuple(self.layers if layers is None else layers)
        return CapProjection(
            {layer: self.directions[self._column(layer)] for layer in layers},
            {layer: self.threshold(layer, percentile) for layer in layers},
            mode=mode,
            where=where,
        )

    def __repr__(self) -> str:
        span = f"{self.layers[0]}–{self.layers[-1]}" if self.layers else "none"
        return (f"CappingConfig(model={self.metadata.get('model')}, layers {span}, "
                f"percentiles={list(self.percentiles)})")

    def save(self, path: str | Path) -> Path:
        meta = {**self.metadata, "layers": list(self.layers), "percentiles": list(self.percentiles)}
        return save_tensors(path, {"directions": self.directions.float(), "thresholds": self.thresholds.float()}, meta)

    @classmethod
    def load(cls, path: str | Path) -> "CappingConfig":
        tensors, meta = load_tensors(path)
        for name in ("directions", "thresholds"):
            if name not in tensors:
                raise InputFormatError(f"{path}: no tensor named '{name}' (found {sorted(tensors)})")
        sidecar = Path(path).with_suffix(".json")
        layers, percentiles = meta.get("layers"), meta.get("percentiles")
        if not isinstance(layers, list) or not all(type(x) is int and x >= 0 for x in layers):
            raise InputFormatError(f"{sidecar}: field 'layers' must be a list of layer indices (integers ≥ 0)")
        if not isinstance(percentiles, list) or not all(
            type(x) in (int, float) and 0 <= x <= 1 for x in percentiles
        ):
            raise InputFormatError(f"{sidecar}: field 'percentiles' must be a list of numbers in [0, 1]")
        try:
            return cls(tensors["directions"], tuple(layers), tuple(float(x) for x in percentiles),
                       tensors["thresholds"], meta)
        except ShapeError as exc:
            raise ShapeError(f"{path}: {exc}") from None


def calibration_questions() -> list[str]:
    """The shipped neutral questions whose default answers define the Assistant's range."""
    questions = json.loads(_QUESTIONS.read_text(encoding="utf-8"))
    if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
        raise InputFormatError(f"{_QUESTIONS}: expected a list of strings")
    return questions


def default_assistant_chats(
    model, questions: Sequence[str], sampling: Sampling, cache: JsonlCache, progress: bool = True
) -> list[ChatTokens]:
    """The model's own default-assistant answers (no system prompt), generated once and cached."""
    name = model.cfg.model_name

    def work(batch: list[str]) -> list[dict[str, Any]]:
        replies = generate_responses(model, [messages(None, q) for q in batch], sampling, progress=False)
        return [{"question": q, "response": r} for q, r in zip(batch, replies)]

    items = [(cache_key(kind="default_response", model=name, question=q, sampling=repr(sampling)), q)
             for q in questions]
    records = run_cached(cache, items, work, batch_size=8, desc="default responses", progress=progress)
    return [format_conversation(model.tokenizer, messages(None, r["question"], r["response"]))
            for r in records if r["response"].strip()]


def calibrate(
    model,
    vectors: LayerVectors,
    default_chats: Sequence[ChatTokens],
    layers: Sequence[int],
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    progress: bool = True,
    shard: Shard = SINGLE,
    chunk_dir: Path | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> CappingConfig | None:
    """τ_L at each of ``layers`` = ``percentiles`` of default-assistant token projections. With a
    ``shard`` of a ``torchrun`` run the projections are sharded over the ranks through chunks saved
    under ``chunk_dir`` (every rank must see it); ranks other than 0 return None."""
    layers = tuple(check_layer(layer, model.cfg.n_layers) for layer in layers)
    if not default_chats:
        raise InputFormatError("calibration needs at least one default-assistant response")
    store = None
    if chunk_dir is not None:
        key = inputs_hash([[list(c.ids) for c in default_chats], list(layers), vector_fingerprint(vectors), model.cfg.model_name])
        store = ChunkStore(Path(chunk_dir), key)
    projections = project_chats(model, default_chats, vectors, layers, progress=progress, desc="calibrate",
                                shard=shard, store=store, chunk=chunk)
    if projections is None:
        return None
    thresholds = torch.tensor([response_quantiles(projections, layer, percentiles) for layer in layers]).T
    metadata = provenance(
        model=model.cfg.model_name, method="capping calibration", vector=vectors.metadata.get("method"),
        n_responses=len(default_chats), n_tokens=sum(len(p.response_values(layers[0])) for p in projections),
        inputs_hash=inputs_hash([list(c.ids) for c in default_chats]),
    )
    directions = torch.stack([vectors.at(layer) for layer in layers]).float()
    return CappingConfig(directions, layers, tuple(percentiles), thresholds.float(), metadata)


def calibrated_band(model, vectors: LayerVectors, layers: Sequence[int], cache: JsonlCache,
                    sampling: Sampling = Sampling(max_new_tokens=40), shard: Shard = SINGLE,
                    chunk: int = DEFAULT_CHUNK) -> CappingConfig | None:
    """Calibrate on the shipped neutral questions' default answers (generated once, cached). With a
    ``torchrun`` ``shard``: rank 0 generates, then every rank projects its share of the answers
    (chunks next to the cache); ranks other than 0 return None."""
    with shard.main_first():
        chats = default_assistant_chats(model, calibration_questions(), sampling, cache)
    chunk_dir = Path(cache.path).parent / "chunks" / "calibrate" if shard.distributed else None
    return calibrate(model, vectors, chats, layers, shard=shard, chunk_dir=chunk_dir, chunk=chunk)
