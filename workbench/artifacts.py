"""Artifacts: tensors as safetensors plus a JSON sidecar recording where they came from.

Loading never unpickles: our own files are safetensors, and the papers' ``.pt`` files go through
``torch.load(weights_only=True)``, which refuses arbitrary objects.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

import workbench
from workbench.errors import InputFormatError, ShapeError
from workbench.layers import check_layer, from_hidden_states_index


def inputs_hash(*inputs: Any) -> str:
    """Short stable hash of JSON-serialisable inputs, recorded so artifacts can be traced."""
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def provenance(**fields: Any) -> dict[str, Any]:
    """Standard sidecar fields plus the caller's (model, layers, method, ...)."""
    return {
        "package": "persona-workbench",
        "version": workbench.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file so a crash leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors="backslashreplace")  # a lone surrogate stays a JSON escape
    os.replace(tmp, path)


def save_tensors(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, Any]) -> Path:
    """Save ``tensors`` to ``path`` (.safetensors) and ``metadata`` to the JSON file beside it."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)
    atomic_write_text(_sidecar(path), json.dumps(metadata, indent=2, default=str))
    return path


def load_tensors(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Load a safetensors file and its JSON sidecar (empty dict if there is none)."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputFormatError(f"{path}: not a readable safetensors file ({exc})") from None
    sidecar = _sidecar(path)
    metadata: dict[str, Any] = {}
    if sidecar.is_file():
        try:
            metadata = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise InputFormatError(f"{sidecar}: invalid JSON ({exc}); expected a JSON object") from None
        if not isinstance(metadata, dict):
            raise InputFormatError(f"{sidecar}: holds a JSON {type(metadata).__name__}; expected a JSON object")
    return tensors, metadata


def load_pt_tensors(path: str | Path) -> Any:
    """Load a PyTorch ``.pt`` file with ``weights_only=True``: tensors and plain containers only.

    A file holding any other object (a pickle that would run code) is refused, not executed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a hostile or corrupt file can make the unpickler raise anything
        raise InputFormatError(
            f"{path}: refused to load: not a plain tensor file (weights_only=True): {_unpickle_reason(exc)}; "
            "expected tensors and plain containers only"
        ) from None


def _unpickle_reason(exc: Exception) -> str:
    """One short line from torch's multi-paragraph (and ANSI-coloured) unpickling errors."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    forbidden = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if forbidden:
        return f"it references {forbidden.group(1)}, which could run code"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.split(". ")[0][:160]


def check_vector_shape(
    tensor: Tensor, n_layers: int, d_model: int, source: str
) -> Float[Tensor, "layer d_model"]:
    """Check a per-layer vector set is [n_layers, d_model], finite, and non-zero at every layer.

    A zero row would later divide by zero when the direction is normalised (projection, capping),
    far from the file that caused it; the message names the file and the offending layers instead.
    """
    if tensor.ndim != 2 or tuple(tensor.shape) != (n_layers, d_model):
        other_model = f"d_model {tensor.shape[1]} but the model has {d_model}: " if (
            tensor.ndim == 2 and tensor.shape[1] != d_model) else ""
        raise ShapeError(
            f"{source}: {other_model}tensor has shape {tuple(tensor.shape)}, expected [n_layers, d_model] = "
            f"[{n_layers}, {d_model}] for this model"
        )
    if not tensor.is_floating_point():
        raise ShapeError(f"{source}: tensor has dtype {tensor.dtype}; expected floating-point values")
    bad_layers = (~torch.isfinite(tensor)).any(dim=1).nonzero().flatten().tolist()
    if bad_layers:
        raise ShapeError(f"{source}: NaN or infinite values at layers {_some(bad_layers)}; expected finite values")
    zero_layers = (tensor == 0).all(dim=1).nonzero().flatten().tolist()
    if zero_layers:
        raise ShapeError(f"{source}: zero norm at layers {_some(zero_layers)}; expected a non-zero direction at every layer")
    return tensor


def _some(layers: list[int], limit: int = 8) -> str:
    """A list of layer indices short enough for a message."""
    return str(layers) if len(layers) <= limit else f"{layers[:limit]} and {len(layers) - limit} more"


@dataclass(frozen=True)
class LayerVectors:
    """One direction per layer of a model (Assistant Axis, trait vector, persona vector).

    Row ``L`` is our layer ``L`` (``blocks.L.hook_resid_post``). A value: supports ``v * 2``,
    ``v - w``, ``-v``; ``save``/``load`` as safetensors + JSON.
    """

    vectors: Float[Tensor, "layer d_model"]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return self.vectors.shape[0]

    @property
    def d_model(self) -> int:
        return self.vectors.shape[1]

    def at(self, layer: int) -> Float[Tensor, " d_model"]:
        """The direction at our layer ``layer``."""
        return self.vectors[check_layer(layer, self.n_layers)]

    def unit(self, layer: int) -> Float[Tensor, " d_model"]:
        vector = self.at(layer)
        norm = vector.norm()
        if norm == 0:
            raise ShapeError(f"vector at layer {layer} has zero norm")
        return vector / norm

    def __mul__(self, scale: float) -> "LayerVectors":
        return replace(self, vectors=self.vectors * scale)

    __rmul__ = __mul__

    def __neg__(self) -> "LayerVectors":
        return self * -1.0

    def __add__(self, other: "LayerVectors") -> "LayerVectors":
        if other.vectors.shape != self.vectors.shape:
            raise ShapeError(f"cannot add vectors of shapes {tuple(self.vectors.shape)} and {tuple(other.vectors.shape)}")
        return replace(self, vectors=self.vectors + other.vectors)

    def __sub__(self, other: "LayerVectors") -> "LayerVectors":
        return self + (-other)

    def __repr__(self) -> str:
        what = self.metadata.get("method", "vectors")
        return f"LayerVectors({what}, model={self.metadata.get('model')}, shape={tuple(self.vectors.shape)})"

    def save(self, path: str | Path) -> Path:
        return save_tensors(path, {"vectors": self.vectors.float()}, self.metadata)

    @classmethod
    def load(cls, path: str | Path, n_layers: int | None = None, d_model: int | None = None) -> "LayerVectors":
        """:func:`load_vectors` (the one loader), beside :meth:`save`."""
        return load_vectors(path, n_layers, d_model)


def load_vectors(path: str | Path, n_layers: int | None = None, d_model: int | None = None) -> LayerVectors:
    """A per-layer vector set from any file the workbench reads, rows in our layer convention.

    - ``*.safetensors``: our artifact, tensor ``vectors`` [n_layers, d_model] and its JSON sidecar;
    - any other file is a PyTorch ``.pt`` holding one tensor (read with ``weights_only=True``, so
      never unpickling code), whose row count says whose convention it is:
      [n_layers, d_model] (the Assistant Axis release: row L = output of decoder layer L = ours) or
      [n_layers + 1, d_model] (persona_vectors: row i = ``hidden_states[i]``; row 0, the embedding
      output, is dropped and row i becomes our layer i − 1, see :mod:`workbench.layers`).

    With the model's ``n_layers`` and ``d_model`` every row is checked (finite, non-zero) and a
    vector of another model fails naming both shapes. Without them only the tensor's rank is
    checked and a ``.pt``'s rows are taken as ours: pass the shape to read a persona_vectors file.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        tensors, metadata = load_tensors(path)
        if "vectors" not in tensors:
            raise InputFormatError(f"{path}: no tensor named 'vectors' (found {sorted(tensors)})")
        vectors = tensors["vectors"]
        if n_layers is not None and d_model is not None:
            check_vector_shape(vectors, n_layers, d_model, f"{path} tensor 'vectors'")
        elif vectors.ndim != 2:
            raise ShapeError(f"{path} tensor 'vectors': shape {tuple(vectors.shape)}, expected [n_layers, d_model]")
        return LayerVectors(vectors, metadata)
    tensor = load_pt_tensors(path)
    if not isinstance(tensor, Tensor):
        raise InputFormatError(f"{path}: expected a tensor [n_layers, d_model] (persona_vectors: [n_layers + 1, "
                               f"d_model]), found {type(tensor).__name__}")
    if tensor.ndim != 2:
        raise ShapeError(f"{path}: tensor has shape {tuple(tensor.shape)}, expected [n_layers, d_model]")
    shape, checked = tuple(tensor.shape), n_layers is not None and d_model is not None
    if checked and (shape[1] != d_model or shape[0] not in (n_layers, n_layers + 1)):
        other_model = f"d_model {shape[1]} but the model has {d_model}: " if shape[1] != d_model else ""
        raise ShapeError(
            f"{path}: {other_model}tensor has shape {shape}; for this model a .pt vector is [n_layers, d_model] = "
            f"[{n_layers}, {d_model}] (row L = layer L, as in the Assistant Axis release) or [n_layers + 1, d_model] "
            f"= [{n_layers + 1}, {d_model}] (persona_vectors: row i = hidden_states[i])"
        )
    if n_layers is not None and shape[0] == n_layers + 1:
        layers = [from_hidden_states_index(i) for i in range(1, n_layers + 1)]
        tensor, method = tensor[1:], "imported persona_vectors .pt"
        convention = f"row L = blocks.L.hook_resid_post (file rows 1..{n_layers} -> layers {layers[0]}..{layers[-1]})"
    else:
        method, convention = "imported .pt vector", "row L = blocks.L.hook_resid_post (file row L = layer L)"
    tensor = tensor.float()
    if checked:
        check_vector_shape(tensor, n_layers, d_model, str(path))
    return LayerVectors(tensor, provenance(method=method, source=str(path), layer_convention=convention))
