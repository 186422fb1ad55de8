"""Importers of the vectors the Assistant Axis authors released (data set
``lu-christina/assistant-axis-vectors``), e.g. for Gemma 2 27B:

- ``gemma-2-27b/assistant_axis.pt``: tensor [46, 4608], row L = output of decoder layer L (ours);
- ``gemma-2-27b/trait_vectors/<name>.pt`` (and ``role_vectors/``): [n_layers, d_model] each;
- ``capping_config.pt``: ``{"vectors": {name: {"vector": [d_model], "layer": int}},
  "experiments": [{"id": str, "interventions": [{"vector": name, "cap": float}]}]}``.

Why here: a researcher with the released files can compare them with vectors computed by the
workbench, plot them against an axis, or cap with the paper's exact thresholds, without rerunning
the paper. Vector files are read by :func:`workbench.artifacts.load_vectors` and the capping
config by :func:`workbench.artifacts.load_pt_tensors` (``weights_only``: tensors and plain
containers only, never arbitrary unpickling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.artifacts import LayerVectors, load_pt_tensors, load_vectors
from workbench.errors import InputFormatError, ShapeError
from workbench.hooks import CapProjection


def load_released_vector_folder(
    folder: str | Path, n_layers: int | None = None, d_model: int | None = None
) -> dict[str, LayerVectors]:
    """Every ``*.pt`` / ``*.safetensors`` in a folder (``trait_vectors/``, ``role_vectors/``), by
    file stem, all one shape."""
    folder = Path(folder)
    files = sorted([*folder.glob("*.pt"), *folder.glob("*.safetensors")])
    if not files:
        raise InputFormatError(f"{folder}: no .pt or .safetensors files")
    out: dict[str, LayerVectors] = {}
    for file in files:
        vectors = load_vectors(file, n_layers, d_model)
        if out and vectors.vectors.shape != next(iter(out.values())).vectors.shape:
            first = next(iter(out))
            raise ShapeError(f"{file}: shape {tuple(vectors.vectors.shape)} differs from {first}.pt "
                             f"{tuple(out[first].vectors.shape)}")
        out[file.stem] = vectors
    return out


def similarity_to_axis(
    vectors: dict[str, LayerVectors], axis: LayerVectors, layer: int
) -> dict[str, float]:
    """Cosine of each vector with the axis at ``layer`` (for the sorted similarity plot)."""
    unit = axis.unit(layer)
    out = {}
    for name, v in vectors.items():
        if v.d_model != axis.d_model:
            raise ShapeError(f"vector {name!r} has d_model {v.d_model}, the axis {axis.d_model}")
        out[name] = float(v.at(layer) @ unit / v.at(layer).norm().clamp_min(1e-12))
    return out


@dataclass(frozen=True)
class CappingExperiment:
    """One released capping setting: per-layer directions and thresholds τ_L.

    :meth:`intervention` applies it with the paper's rule ``h ← h − max(0, ⟨h, v̂⟩ − τ) v̂``
    (a ceiling along the released direction) through :class:`workbench.hooks.CapProjection`.
    """

    id: str
    directions: dict[int, Float[Tensor, " d_model"]]
    thresholds: dict[int, float]

    def intervention(self) -> CapProjection:
        return CapProjection(self.directions, self.thresholds, mode="ceiling")


def _field(mapping: Any, name: str, kind: type | tuple[type, ...], source: str) -> Any:
    if not isinstance(mapping, dict) or name not in mapping:
        raise InputFormatError(f"{source}: missing field '{name}'")
    value = mapping[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputFormatError(f"{source}: field '{name}' has type {type(value).__name__}")
    return value


def load_capping_config(path: str | Path, d_model: int | None = None) -> dict[str, CappingExperiment]:
    """The released ``capping_config.pt`` as ``{experiment id: CappingExperiment}``."""
    path = Path(path)
    config = load_pt_tensors(path)
    if not isinstance(config, dict):
        raise InputFormatError(f"{path}: expected a dict with 'vectors' and 'experiments', got {type(config).__name__}")
    vectors = _field(config, "vectors", dict, str(path))
    experiments = _field(config, "experiments", list, str(path))
    out = {}
    for i, experiment in enumerate(experiments):
        source = f"{path} experiments[{i}]"
        exp_id = _field(experiment, "id", str, source)
        directions, thresholds = {}, {}
        for j, item in enumerate(_field(experiment, "interventions", list, source)):
            item_source = f"{source} interventions[{j}]"
            name = _field(item, "vector", str, item_source)
            cap = float(_field(item, "cap", (int, float, Tensor), item_source))
            if name not in vectors:
                raise InputFormatError(f"{item_source}: vector {name!r} is not in the file's 'vectors'")
            entry = vectors[name]
            vector = _field(entry, "vector", Tensor, f"{path} vectors[{name!r}]").float().flatten()
            layer = int(_field(entry, "layer", (int, Tensor), f"{path} vectors[{name!r}]"))
            if d_model is not None and vector.numel() != d_model:
                raise ShapeError(f"{path} vectors[{name!r}]: {vector.numel()} values, the model's d_model is {d_model}")
            if not math.isfinite(cap) or not torch.isfinite(vector).all() or vector.norm() == 0:
                raise ShapeError(f"{item_source}: cap or vector is not finite / non-zero")
            directions[layer], thresholds[layer] = vector, cap
        out[exp_id] = CappingExperiment(exp_id, directions, thresholds)
    if not out:
        raise InputFormatError(f"{path}: field 'experiments' is empty")
    return out
