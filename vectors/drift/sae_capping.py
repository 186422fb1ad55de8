"""Capping in SAE-feature space: hold the Assistant Axis's top SAE features at default percentiles.

Projection capping (:class:`~workbench.hooks.CapProjection`) keeps the whole axis direction above a
floor. Its feature-space analogue keeps the few SAE features whose decoder directions align most
with the axis inside the range they take in default-assistant answers: a floor for features pointing
toward the Assistant end (cos > 0), a ceiling for those pointing toward role-play (cos < 0), through
:class:`~workbench.hooks.ClampSAEFeatures` (error term kept).

Why percentiles over *active* tokens. A sparse feature is zero on most tokens, so its 25th
percentile over all default tokens is 0 and a floor there does nothing; the bounds are read over the
default tokens where the feature fires. A role-pointing feature that never fires on default answers
gets a ceiling of 0 (the default never uses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.artifacts import LayerVectors
from workbench.chat import ChatTokens
from workbench.errors import InputFormatError
from workbench.hooks import ClampSAEFeatures, TokenCapture, apply


@dataclass(frozen=True)
class SAEFeatureCap:
    """The chosen features, their decoder cosines with the axis, and the bounds read from defaults."""

    layer: int
    features: tuple[int, ...]
    cosines: tuple[float, ...]
    floors: dict[int, float]
    ceilings: dict[int, float]
    percentile: float

    def intervention(self, sae) -> ClampSAEFeatures:
        return ClampSAEFeatures(sae, self.layer, dict(self.floors), dict(self.ceilings))

    def fingerprint(self) -> str:
        return f"sae_cap:L{self.layer}:p{self.percentile:g}:" + ",".join(
            f"{f}:{self.floors.get(f, self.ceilings.get(f)):.5g}" for f in self.features)

    def to_summary(self) -> dict[str, Any]:
        return {"layer": self.layer, "percentile": self.percentile,
                "features": [{"index": f, "cos": c, "floor": self.floors.get(f), "ceiling": self.ceilings.get(f)}
                             for f, c in zip(self.features, self.cosines)]}


def _default_features(model, sae, chats: Sequence[ChatTokens], layer: int, features: Tensor) -> Float[Tensor, "token feature"]:
    """Activations of ``features`` on every response token of the default chats."""
    capture, rows = TokenCapture((layer,)), []
    with torch.inference_mode(), apply(model, [capture]):
        for chat in chats:
            model(torch.tensor([chat.ids], device=model.cfg.device), stop_at_layer=layer + 1)
            resid = capture.values[layer][0][chat.response_mask()]
            rows.append(sae.encode(resid.to(model.cfg.device))[:, features.to(model.cfg.device)].float().cpu())
    return torch.cat(rows)


def sae_feature_cap(
    model, sae, layer: int, axis: LayerVectors, default_chats: Sequence[ChatTokens], top_k: int = 8,
    percentile: float = 0.25,
) -> SAEFeatureCap:
    """Bounds for the ``top_k`` features by |decoder cos| with the axis at ``layer``."""
    if not default_chats:
        raise InputFormatError("SAE-feature capping needs default-assistant answers to read bounds from")
    decoder = sae.W_dec.detach().float().cpu()
    if decoder.shape[1] != axis.d_model:
        raise InputFormatError(f"SAE decoder has d_in {decoder.shape[1]}, the axis d_model {axis.d_model}")
    cosines = decoder @ axis.unit(layer).float() / decoder.norm(dim=1).clamp(min=1e-8)
    order = cosines.abs().argsort(descending=True)[:top_k]
    acts = _default_features(model, sae, default_chats, layer, order)
    floors, ceilings = {}, {}
    for column, feature in enumerate(order.tolist()):
        active = acts[:, column][acts[:, column] > 0]
        if cosines[feature] > 0 and len(active):
            floors[feature] = float(torch.quantile(active, percentile))
        elif cosines[feature] < 0:
            ceilings[feature] = float(torch.quantile(active, 1 - percentile)) if len(active) else 0.0
    return SAEFeatureCap(layer, tuple(order.tolist()), tuple(float(cosines[f]) for f in order.tolist()),
                         floors, ceilings, percentile)
