"""The geometry of persona space: the Assistant Axis, cosine maps, PCA, held-out separation.

Why these measures. The Assistant Axis paper defines the axis as mean(default-assistant vectors) −
mean(role vectors) at each layer and checks it two ways: the first principal component of the
persona vectors lines up with it, and responses to questions never used to build it still separate
default from role-play when projected on it. Centered cosines (persona vectors minus their mean)
show the structure that raw cosines hide: raw residual-stream vectors share a large common
component, so every raw cosine is close to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from workbench.errors import InputFormatError, ShapeError


def assistant_axis(
    default_vectors: Float[Tensor, "n_default layer d_model"], role_vectors: Float[Tensor, "n_role layer d_model"]
) -> Float[Tensor, "layer d_model"]:
    """Per layer: mean of the default-assistant vectors minus mean of the role vectors (raw, unnormalised)."""
    if default_vectors.ndim != 3 or role_vectors.ndim != 3 or default_vectors.shape[1:] != role_vectors.shape[1:]:
        raise ShapeError(
            f"default vectors {tuple(default_vectors.shape)} and role vectors {tuple(role_vectors.shape)} "
            "must both be [n, layer, d_model] with the same layer and d_model"
        )
    if not len(default_vectors) or not len(role_vectors):
        raise InputFormatError("the axis needs at least one default vector and one role vector")
    return default_vectors.float().mean(0) - role_vectors.float().mean(0)


def _unit_rows(x: Float[Tensor, "n d"]) -> Float[Tensor, "n d"]:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def cosine_matrix(vectors: Float[Tensor, "n d_model"], centered: bool = False) -> Float[Tensor, "n n"]:
    """Pairwise cosine similarity; ``centered`` subtracts the mean vector first."""
    x = vectors.float()
    if centered:
        x = x - x.mean(0, keepdim=True)
    unit = _unit_rows(x)
    return unit @ unit.T


def axis_cosines(vectors: Float[Tensor, "n d_model"], axis: Float[Tensor, " d_model"], centered: bool = True) -> Float[Tensor, " n"]:
    """Cosine of each vector with the axis (after subtracting the vectors' mean when ``centered``):
    high = assistant-like, low = role-playing."""
    x = vectors.float()
    if centered:
        x = x - x.mean(0, keepdim=True)
    return _unit_rows(x) @ (axis.float() / axis.float().norm().clamp_min(1e-12))


def project(vectors: Float[Tensor, "n d_model"], axis: Float[Tensor, " d_model"]) -> Float[Tensor, " n"]:
    """Scalar projection ⟨h, â⟩ on the unit axis."""
    return vectors.float() @ (axis.float() / axis.float().norm().clamp_min(1e-12))


@dataclass(frozen=True)
class Pca:
    """Principal components of a set of vectors (centered by their mean)."""

    coordinates: Float[Tensor, "n k"]
    explained_variance_ratio: Float[Tensor, " k"]
    components: Float[Tensor, "k d_model"]


def pca(
    vectors: Float[Tensor, "n d_model"], n_components: int | None = None,
    orient_to: Float[Tensor, " d_model"] | None = None,
) -> Pca:
    """PCA with scikit-learn; at most n − 1 components (n vectors span n − 1 centered dimensions).

    ``orient_to``: flip PC1's sign so it points along this direction (e.g. the axis, so that +PC1
    means assistant-like in every run).
    """
    from sklearn.decomposition import PCA

    n = vectors.shape[0]
    if n < 3:
        raise InputFormatError(f"PCA needs at least 3 vectors, got {n}")
    k = min(n_components or n - 1, n - 1, vectors.shape[1])
    fit = PCA(n_components=k).fit(vectors.float().numpy())
    coords = torch.from_numpy(fit.transform(vectors.float().numpy())).float()
    components = torch.from_numpy(fit.components_).float()
    if orient_to is not None and float(components[0] @ orient_to.float()) < 0:
        coords[:, 0], components[0] = -coords[:, 0], -components[0]
    return Pca(coords, torch.from_numpy(fit.explained_variance_ratio_).float(), components)


def separation_auc(scores: Sequence[float] | Tensor, is_default: Sequence[bool]) -> float:
    """ROC AUC of ``scores`` for telling default (positive) from role responses."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(is_default, dtype=bool)
    if labels.all() or not labels.any():
        raise InputFormatError("held-out AUC needs both default and role responses")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=float)))


def heldout_auc_per_layer(
    means: Float[Tensor, "n layer d_model"], is_default: Sequence[bool], axis: Float[Tensor, "layer d_model"]
) -> list[float]:
    """Held-out AUC at every layer: each response's projection on that layer's axis."""
    if means.shape[1:] != axis.shape:
        raise ShapeError(f"response means {tuple(means.shape)} do not match the axis {tuple(axis.shape)}")
    return [separation_auc(project(means[:, layer], axis[layer]), is_default) for layer in range(axis.shape[0])]


def heldout_auc_by_group(
    means: Float[Tensor, "n layer d_model"], groups: Sequence[str], axis: Float[Tensor, "layer d_model"],
    default_group: str = "default",
) -> dict[str, list[float]]:
    """Per-layer held-out AUC of the default responses against each role group alone.

    Why: assistant-like roles (consultant, analyst) sit next to the default assistant on the axis,
    so one AUC over all roles mixes "the axis fails" with "these roles are assistant-like".
    """
    out = {}
    for group in dict.fromkeys(g for g in groups if g != default_group):
        rows = [i for i, g in enumerate(groups) if g in (group, default_group)]
        out[group] = heldout_auc_per_layer(means[rows], [groups[i] == default_group for i in rows], axis)
    return out


def mean_by_group(values: Sequence[float] | Tensor, groups: Sequence[str]) -> dict[str, float]:
    """Mean of ``values`` per group label, groups in first-seen order."""
    values = [float(v) for v in values]
    out: dict[str, list[float]] = {}
    for value, group in zip(values, groups):
        out.setdefault(group, []).append(value)
    return {group: sum(vs) / len(vs) for group, vs in out.items()}
