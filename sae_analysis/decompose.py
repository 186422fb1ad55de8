"""Decompose a vector (Assistant Axis, trait vector) into SAE features, against chance.

Why each piece:
- **Decoder cosine** names the features whose write direction a vector points along; with 131k
  features in 4608 dimensions some feature always looks aligned, so every top cosine is read
  against the **chance baseline**: the max |cos| over the dictionary of random directions.
- **Encoder attribution** asks which features *fire differently* on the responses the vector was
  built from (positive minus negative mean SAE activation): a vector can be aligned with a
  feature that never fires, and vice versa.
- **Reconstruction** says how much of the vector a few features explain (least squares on the
  top-k decoder directions, share of ‖v‖²), i.e. whether "the vector is feature 1234" is fair.

The dictionary is read in row chunks; its row norms and chance baseline are computed once per
dictionary and cached (keyed by storage and version), so each further vector costs one pass over
``W_dec`` (2.4 GB for GemmaScope 27B). Measured times: ``docs/sae_analysis.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.errors import ShapeError


@dataclass(frozen=True)
class FeatureHit:
    """One feature's score against the vector (cosine, attribution difference, ...)."""

    index: int
    score: float


@dataclass(frozen=True)
class ChanceBaseline:
    """Max |cos| between a random direction and the dictionary, over ``draws`` random directions."""

    mean_max_abs_cos: float
    p99_max_abs_cos: float
    draws: int


@dataclass
class Decomposition:
    """Decoder-cosine decomposition of one vector, with its chance baseline and reconstruction curve.

    ``reconstruction[k-1]``: share of ‖v‖² explained by the top-k features by |cos| (k = 1..K).
    """

    top_positive: list[FeatureHit]
    top_negative: list[FeatureHit]
    baseline: ChanceBaseline
    reconstruction: list[float]
    vector_norm: float
    seconds: float = 0.0

    @property
    def max_abs_cos(self) -> float:
        scores = [abs(h.score) for h in self.top_positive[:1] + self.top_negative[:1]]
        return max(scores) if scores else 0.0

    @property
    def beats_chance(self) -> bool:
        """Whether the best-aligned feature exceeds the 99th percentile of chance."""
        return self.max_abs_cos > self.baseline.p99_max_abs_cos

    def n_above_chance(self) -> int:
        hits = self.top_positive + self.top_negative
        return sum(abs(h.score) > self.baseline.p99_max_abs_cos for h in hits)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["max_abs_cos"] = self.max_abs_cos
        out["beats_chance_p99"] = self.beats_chance
        out["n_top_above_chance_p99"] = self.n_above_chance()
        return out


def _check(vector: Tensor, W_dec: Tensor) -> None:
    if vector.ndim != 1 or W_dec.ndim != 2 or W_dec.shape[1] != vector.shape[0]:
        raise ShapeError(f"vector of shape {tuple(vector.shape)} does not fit a decoder of shape {tuple(W_dec.shape)} "
                         f"(expected [d_sae, d_in] with d_in = {vector.shape[-1]})")


_DICTIONARY_CACHE: dict[tuple, dict] = {}
_CACHED_DICTIONARIES = 8  # norms + baseline of a 131072-row dictionary: about 1 MB each


def _dictionary_key(W_dec: Tensor) -> tuple:
    """Identity of a dictionary: storage, contents version (in-place edits invalidate it) and the
    sums of 64 spread-out rows. The row sums matter: a freed dictionary's memory is often reused by
    the next one of the same shape, with the same pointer and a fresh version counter."""
    sample = W_dec[:: max(1, len(W_dec) // 64)].float().sum(dim=-1)
    return (W_dec.data_ptr(), tuple(W_dec.shape), tuple(W_dec.stride()), W_dec._version, str(W_dec.dtype),
            tuple(sample.tolist()))


def _cache_entry(W_dec: Tensor) -> dict:
    """This dictionary's cached values; the oldest dictionaries are forgotten beyond a few."""
    key = _dictionary_key(W_dec)
    if key not in _DICTIONARY_CACHE and len(_DICTIONARY_CACHE) >= _CACHED_DICTIONARIES:
        del _DICTIONARY_CACHE[next(iter(_DICTIONARY_CACHE))]
    return _DICTIONARY_CACHE.setdefault(key, {})


@torch.no_grad()
def row_norms(W_dec: Float[Tensor, "d_sae d_in"], chunk: int = 16384) -> Float[Tensor, " d_sae"]:
    """Decoder row norms, computed once per dictionary (one pass over 2.4 GB costs ~0.5 s)."""
    entry = _cache_entry(W_dec)
    if "norms" not in entry:
        entry["norms"] = torch.cat([W_dec[i:i + chunk].float().norm(dim=-1) for i in range(0, len(W_dec), chunk)])
    return entry["norms"]


@torch.no_grad()
def cosines_many(
    directions: Float[Tensor, "n d_in"], W_dec: Float[Tensor, "d_sae d_in"], chunk: int = 16384
) -> Float[Tensor, "n d_sae"]:
    """cos(direction_i, W_dec[j]) for every pair, in one chunked pass over ``W_dec``."""
    units = directions.float() / directions.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    norms = row_norms(W_dec).clamp_min(1e-12)
    out = torch.empty(len(directions), W_dec.shape[0])
    for start in range(0, W_dec.shape[0], chunk):
        torch.matmul(units, W_dec[start:start + chunk].float().T, out=out[:, start:start + chunk])
    return out.div_(norms)


def decoder_cosines(vector: Float[Tensor, " d_in"], W_dec: Float[Tensor, "d_sae d_in"]) -> Float[Tensor, " d_sae"]:
    """cos(v, W_dec[i]) for every feature i."""
    _check(vector, W_dec)
    return cosines_many(vector[None], W_dec)[0]


def chance_from_cosines(random_cos: Float[Tensor, "n d_sae"]) -> ChanceBaseline:
    """Baseline statistics from the cosines of random directions with the dictionary."""
    max_abs = random_cos.abs().max(dim=1).values
    return ChanceBaseline(float(max_abs.mean()), float(torch.quantile(max_abs, 0.99)), len(max_abs))


def chance_baseline(W_dec: Float[Tensor, "d_sae d_in"], draws: int = 100, seed: int = 0) -> ChanceBaseline:
    """Max |cos| of isotropic random directions with the dictionary (mean and 99th percentile).

    It depends on the dictionary only, so it is computed once per (dictionary, draws, seed).
    """
    entry = _cache_entry(W_dec)
    if ("baseline", draws, seed) not in entry:
        gen = torch.Generator().manual_seed(seed)
        randoms = torch.randn(draws, W_dec.shape[1], generator=gen)
        entry[("baseline", draws, seed)] = chance_from_cosines(cosines_many(randoms, W_dec))
    return entry[("baseline", draws, seed)]


def top_features(cos: Float[Tensor, " d_sae"], k: int) -> tuple[list[FeatureHit], list[FeatureHit]]:
    """The k most positive and the k most negative features by cosine."""
    k = min(k, len(cos))
    pos = torch.topk(cos, k)
    neg = torch.topk(-cos, k)
    return ([FeatureHit(int(i), float(v)) for v, i in zip(pos.values, pos.indices)],
            [FeatureHit(int(i), float(-v)) for v, i in zip(neg.values, neg.indices)])


@torch.no_grad()
def reconstruction_curve(
    vector: Float[Tensor, " d_in"], W_dec: Float[Tensor, "d_sae d_in"], order: list[int]
) -> list[float]:
    """Share of ‖v‖² explained by least squares on the first k decoder rows of ``order``, k = 1..len."""
    v = vector.double()
    basis = W_dec[order].double()  # [K, d_in]
    q, _ = torch.linalg.qr(basis.T)  # orthonormal basis of the growing span, column by column
    explained = (q.T @ v).pow(2).cumsum(0) / v.pow(2).sum()
    return [float(x) for x in explained.clamp(max=1.0)]


def decompose(
    vector: Float[Tensor, " d_in"],
    W_dec: Float[Tensor, "d_sae d_in"],
    k: int = 20,
    max_k_reconstruction: int = 50,
    draws: int = 100,
    seed: int = 0,
) -> Decomposition:
    """Decoder-cosine top-k (both signs), chance baseline and reconstruction curve of one vector.

    The chance baseline is computed on the first call for a dictionary and reused: later vectors
    cost one pass over ``W_dec``. ``seconds`` counts whatever this call computed.
    """
    import time

    _check(vector, W_dec)
    started = time.perf_counter()
    baseline = chance_baseline(W_dec, draws, seed)
    cos = cosines_many(vector[None], W_dec)[0]
    positive, negative = top_features(cos, k)
    by_abs = torch.topk(cos.abs(), min(max_k_reconstruction, len(cos))).indices.tolist()
    curve = reconstruction_curve(vector, W_dec, by_abs)
    return Decomposition(positive, negative, baseline, curve, float(vector.float().norm()),
                         seconds=time.perf_counter() - started)


@torch.no_grad()
def encoder_attribution(
    sae,
    positive_acts: Float[Tensor, "n d_in"],
    negative_acts: Float[Tensor, "m d_in"],
    k: int = 20,
    chunk: int = 1024,
) -> tuple[list[FeatureHit], list[FeatureHit]]:
    """Features by mean SAE activation on positive minus negative activations (tokens or means).

    Returns (more active on positive, more active on negative), k each.
    """
    def mean_code(acts: Tensor) -> Tensor:
        if acts.ndim != 2 or acts.shape[1] != sae.cfg.d_in:
            raise ShapeError(f"activations of shape {tuple(acts.shape)}: expected [n, {sae.cfg.d_in}]")
        total = torch.zeros(sae.cfg.d_sae)
        for start in range(0, len(acts), chunk):
            total += sae.encode(acts[start:start + chunk].float()).sum(0).cpu()
        return total / max(len(acts), 1)

    diff = mean_code(positive_acts) - mean_code(negative_acts)
    return top_features(diff, k)
