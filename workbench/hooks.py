"""The one hook mechanism: interventions are small values applied at ``blocks.{L}.hook_resid_post``.

Every activation read or edit in the workbench (capture for extraction, additive steering,
direction ablation, activation capping, SAE splicing, per-token projection) is an
:class:`Intervention`: a value that names its layers and maps the residual stream of one layer
to its new value. :func:`apply` installs a list of them for the duration of a ``with`` block and
removes every hook on exit, also after an exception.

Two installers, one meaning. On a TransformerLens ``HookedTransformer`` an intervention at layer
``L`` is a hook on ``blocks.{L}.hook_resid_post``; on a Hugging Face causal LM it is a forward hook
on decoder layer ``L`` (``model.model.layers[L]``), whose output is the same tensor
(``hidden_states[L + 1]``). :func:`apply` picks the installer from the model object, so the same
values steer the hooked model's analysis passes and the Hugging Face twin's fast generation.

Positions. An intervention may act on all positions, the prompt, or the response. Which positions
are "response" is told by a :class:`Positions` object the caller owns and updates: a forward pass
over a formatted conversation sets ``response_mask`` from the chat spans; KV-cache generation sets
``decoding=True`` on every decode step, where the single new position is always response.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, Sequence

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from workbench.errors import LayerError
from workbench.layers import check_layer, resid_post_hook

Where = Literal["all", "prompt", "response"]


@dataclass
class Positions:
    """Which positions of the forward pass now running belong to the response.

    ``response_mask``: [batch, pos] for a full pass over known text (None: no response tokens).
    ``decoding``: True during KV-cache decode steps, where every position is a generated token.
    ``read_mask``: [batch, pos] of the tokens a reader (:class:`MeanCapture`) averages in this pass.
    """

    response_mask: Bool[Tensor, "batch pos"] | None = None
    decoding: bool = False
    read_mask: Bool[Tensor, "batch pos"] | None = None

    def mask(self, where: Where, resid: Float[Tensor, "batch pos d_model"]) -> Bool[Tensor, "batch pos 1"]:
        """Boolean mask of the positions ``where`` selects, broadcastable over d_model."""
        batch, pos, _ = resid.shape
        if where == "all":
            selected = torch.ones(batch, pos, dtype=torch.bool, device=resid.device)
        else:
            if self.decoding:
                response = torch.ones(batch, pos, dtype=torch.bool, device=resid.device)
            elif self.response_mask is not None:
                response = self.response_mask[:, -pos:].to(resid.device)
            else:
                response = torch.zeros(batch, pos, dtype=torch.bool, device=resid.device)
            selected = response if where == "response" else ~response
        return selected.unsqueeze(-1)


class Intervention(Protocol):
    """A value that reads or edits the residual stream at its layers.

    ``__call__`` gets the residual stream after block ``layer`` and returns its new value
    (return the input unchanged to only read).
    """

    @property
    def layers(self) -> tuple[int, ...]: ...

    def __call__(
        self, layer: int, resid: Float[Tensor, "batch pos d_model"], positions: Positions
    ) -> Float[Tensor, "batch pos d_model"]: ...


@contextmanager
def apply(
    model, interventions: Sequence[Intervention], positions: Positions | None = None
) -> Iterator[Positions]:
    """Install ``interventions`` on ``model`` for the ``with`` block; yields the shared Positions.

    Interventions at the same layer run in the order given (list a capture after a steer to read
    the steered stream). All hooks are removed on exit, normal or by exception.
    """
    positions = positions or Positions()
    install = _install_hooked if hasattr(model, "hook_dict") else _install_hf  # TransformerLens or HF
    with install(model, interventions, positions):
        yield positions


def _checked(interventions: Sequence[Intervention], n_layers: int) -> list[tuple[Intervention, int]]:
    """(intervention, layer) pairs in installation order, every layer checked against the model."""
    pairs = []
    for intervention in interventions:
        for layer in intervention.layers:
            check_layer(layer, n_layers, f"{type(intervention).__name__} layer")
            pairs.append((intervention, layer))
    return pairs


@contextmanager
def _install_hooked(model, interventions: Sequence[Intervention], positions: Positions) -> Iterator[None]:
    """TransformerLens installer: hooks on ``blocks.{L}.hook_resid_post``."""
    hooks = [(resid_post_hook(layer), _hook_fn(intervention, layer, positions))
             for intervention, layer in _checked(interventions, model.cfg.n_layers)]
    with model.hooks(fwd_hooks=hooks):  # TransformerLens removes them in its own `finally`
        yield


def _hook_fn(intervention: Intervention, layer: int, positions: Positions):
    def hook(resid: Tensor, hook) -> Tensor:
        return intervention(layer, resid, positions)

    return hook


def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder layers of a Hugging Face causal LM; layer ``L``'s output is our layer ``L``."""
    layers = getattr(model.get_decoder(), "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise LayerError(f"{type(model).__name__}: no decoder `layers` list to hook")
    return layers


@contextmanager
def _install_hf(model, interventions: Sequence[Intervention], positions: Positions) -> Iterator[None]:
    """Hugging Face installer: forward hooks on the decoder layers, removed in ``finally``."""
    layers = decoder_layers(model)
    handles = []
    try:
        for intervention, layer in _checked(interventions, len(layers)):
            handles.append(layers[layer].register_forward_hook(_module_hook_fn(intervention, layer, positions)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _module_hook_fn(intervention: Intervention, layer: int, positions: Positions):
    def hook(module, args, output):
        if isinstance(output, tuple):  # older decoder layers return (hidden_states, ...)
            return (intervention(layer, output[0], positions), *output[1:])
        return intervention(layer, output, positions)

    return hook


def _unit(direction: Float[Tensor, " d_model"], name: str) -> Float[Tensor, " d_model"]:
    norm = direction.float().norm()
    if not torch.isfinite(norm) or norm == 0:
        raise LayerError(f"{name}: direction has zero or non-finite norm")
    return direction / norm


# ----------------------------------------------------------------------------------- interventions


@dataclass
class MeanCapture:
    """Per-sequence mean of the residual stream over a token mask, at many layers in one pass.

    Keeps only running sums ([batch, d_model] per layer), never a full activation cache. The
    tokens averaged are ``Positions.read_mask`` of the pass (set by :func:`workbench.forward.iter_batches`).
    """

    capture_layers: tuple[int, ...]
    sums: dict[int, Float[Tensor, "batch d_model"]] = field(default_factory=dict)
    counts: Float[Tensor, "batch 1"] | None = None

    @property
    def layers(self) -> tuple[int, ...]:
        return self.capture_layers

    def __call__(self, layer, resid, positions):
        if positions.read_mask is None:
            raise LayerError(f"MeanCapture layer {layer}: the pass set no read_mask to average over")
        mask = positions.read_mask.to(resid.device).unsqueeze(-1).to(resid.dtype)
        self.sums[layer] = (resid * mask).sum(dim=1).float()
        self.counts = positions.read_mask.sum(dim=1, keepdim=True).clamp(min=1).float()
        return resid

    def means(self) -> Float[Tensor, "batch layer d_model"]:
        """Means of the last pass, layers in ``capture_layers`` order."""
        return torch.stack([self.sums[layer].cpu() / self.counts.cpu() for layer in self.capture_layers], dim=1)


@dataclass
class TokenCapture:
    """Every position's residual stream at some layers, for short passes (per-token views)."""

    capture_layers: tuple[int, ...]
    values: dict[int, Float[Tensor, "batch pos d_model"]] = field(default_factory=dict)

    @property
    def layers(self) -> tuple[int, ...]:
        return self.capture_layers

    def __call__(self, layer, resid, positions):
        self.values[layer] = resid.detach().float().cpu()
        return resid


@dataclass(frozen=True)
class AddVector:
    """Steering: ``h ← h + coefficient · vector`` at the selected positions of each layer.

    ``vectors`` maps layer → raw (unnormalised) direction, as the papers steer with.
    """

    vectors: dict[int, Float[Tensor, " d_model"]]
    coefficient: float = 1.0
    where: Where = "all"

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(self.vectors)

    def __call__(self, layer, resid, positions):
        if self.coefficient == 0:
            return resid
        delta = self.coefficient * self.vectors[layer].to(resid.device, resid.dtype)
        return resid + positions.mask(self.where, resid).to(resid.dtype) * delta


@dataclass(frozen=True)
class AblateDirection:
    """Remove the component along a direction: ``h ← h − ⟨h, v̂⟩ v̂`` at the selected positions."""

    directions: dict[int, Float[Tensor, " d_model"]]
    where: Where = "all"

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(self.directions)

    def __call__(self, layer, resid, positions):
        unit = _unit(self.directions[layer], f"AblateDirection layer {layer}").to(resid.device, resid.dtype)
        projection = (resid @ unit).unsqueeze(-1)
        return resid - positions.mask(self.where, resid).to(resid.dtype) * projection * unit


@dataclass(frozen=True)
class CapProjection:
    """Activation capping along a direction with a per-layer threshold τ_L.

    ``mode="floor"`` (the Assistant Axis paper: keep the projection on the axis from falling
    below τ, i.e. from drifting away from the Assistant): ``h ← h + max(0, τ − ⟨h, v̂⟩) v̂``.
    ``mode="ceiling"``: ``h ← h − max(0, ⟨h, v̂⟩ − τ) v̂``. Applied at every selected position,
    in prefill and in every decode step.
    """

    directions: dict[int, Float[Tensor, " d_model"]]
    thresholds: dict[int, float]
    mode: Literal["floor", "ceiling"] = "floor"
    where: Where = "all"

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(self.directions)

    def __call__(self, layer, resid, positions):
        unit = _unit(self.directions[layer], f"CapProjection layer {layer}").to(resid.device, resid.dtype)
        projection = resid @ unit
        tau = float(self.thresholds[layer])
        if self.mode == "floor":
            shift = torch.clamp(tau - projection, min=0)
        else:
            shift = -torch.clamp(projection - tau, min=0)
        return resid + positions.mask(self.where, resid).to(resid.dtype) * shift.unsqueeze(-1) * unit


@dataclass(frozen=True)
class SpliceSAE:
    """SAE feature edit with the error term kept: ``h ← h + decode(f') − decode(f)``, ``f = encode(h)``.

    ``f'`` is ``f`` with the features in ``clamp`` set to their values (feature index → value).
    Only the edit changes the stream: the SAE's reconstruction error stays in ``h``, so an empty
    ``clamp`` leaves activations exactly unchanged. ``sae``: any module with ``encode``/``decode``
    over ``[..., d_model]`` (a sae-lens ``SAE``) reading the residual stream after block ``layer``.
    """

    sae: object
    layer: int
    clamp: dict[int, float]
    where: Where = "all"

    @property
    def layers(self) -> tuple[int, ...]:
        return (self.layer,)

    def __call__(self, layer, resid, positions):
        if not self.clamp:
            return resid
        features = self.sae.encode(resid)
        edited = features.clone()
        index = torch.tensor(list(self.clamp), device=resid.device)
        edited[..., index] = torch.tensor(list(self.clamp.values()), device=resid.device, dtype=edited.dtype)
        delta = (self.sae.decode(edited) - self.sae.decode(features)).to(resid.dtype)
        return resid + positions.mask(self.where, resid).to(resid.dtype) * delta


@dataclass(frozen=True)
class ClampSAEFeatures:
    """SAE features held inside bounds, error term kept: ``f'_i = min(max(f_i, floors_i), ceilings_i)``,
    ``h ← h + decode(f') − decode(f)``.

    The feature-space analogue of :class:`CapProjection`: capping the Assistant Axis's top features
    at their default-assistant percentiles (floors for features aligned with the axis, ceilings for
    those against it) instead of the whole direction. Features not named are left alone, and a
    feature already inside its bounds contributes no change.
    """

    sae: object
    layer: int
    floors: dict[int, float]
    ceilings: dict[int, float]
    where: Where = "all"

    @property
    def layers(self) -> tuple[int, ...]:
        return (self.layer,)

    def __call__(self, layer, resid, positions):
        features = self.sae.encode(resid)
        edited = features.clone()
        for bounds, clamp in ((self.floors, "min"), (self.ceilings, "max")):
            if bounds:
                index = torch.tensor(list(bounds), device=resid.device)
                limit = torch.tensor(list(bounds.values()), device=resid.device, dtype=edited.dtype)
                edited[..., index] = torch.clamp(edited[..., index], **{clamp: limit})
        delta = (self.sae.decode(edited) - self.sae.decode(features)).to(resid.dtype)
        return resid + positions.mask(self.where, resid).to(resid.dtype) * delta
