"""Feature and vector dashboards (the sae_vis / SAEDashboard / Neuronpedia feature page), offline.

Why: a feature index means nothing until one sees what it writes and what makes it fire. Each
feature a decomposition reports gets the panels the field's dashboards show:

- **logit effects**: ``W_dec[f] @ W_U``, the direct effect of the decoder direction on the logits,
  *without* the final norm, as sae_vis / SAEDashboard / Neuronpedia compute it (the final norm's
  per-token scale does not change the token order; its learned weights can, so read these as the
  field reads them): top and bottom 10 tokens and the histogram over the whole vocabulary;
- **activations** over the corpus: density (share of corpus tokens, position 0 excluded, where the
  feature is > 0), the histogram of its non-zero activations, and contexts **by quantile**: the top
  activations, then samples from quantile bands of the non-zero activations below;
- **neighbours**: the features whose decoder rows have the highest cosine with its own.

The **vector** (axis or trait vector) gets the same page: its logit effects, its per-token
projection over the corpus by quantile (top, bands, most negative), and its top features, each with
a one-line logit summary. ``sae-dashboard`` (PyPI) was not used: see docs/sae_analysis.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.errors import ShapeError

from sae_analysis.decompose import FeatureHit, cosines_many
from sae_analysis.saes import SAESpec

# Quantile bands of the non-zero activations (or of all projections) sampled below the top ones.
BANDS: tuple[tuple[float, float], ...] = ((0.75, 0.95), (0.5, 0.75), (0.0, 0.5))


@dataclass(frozen=True)
class TokenValue:
    token: str
    value: float


@dataclass(frozen=True)
class Histogram:
    """``counts[i]`` values fell in ``[edges[i], edges[i+1])`` (the last bin is closed)."""

    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class LogitEffects:
    """Direct logit effect of one residual direction: ``direction @ W_U`` (no final norm)."""

    top: list[TokenValue]
    bottom: list[TokenValue]
    histogram: Histogram

    def summary_line(self, n: int = 5) -> str:
        """``+ a, b, c / − x, y, z``: the tokens it promotes and suppresses most."""
        def show(items: Sequence[TokenValue]) -> str:
            return ", ".join(repr(t.token) for t in items[:n])
        return f"+ {show(self.top)} / − {show(self.bottom)}"


@dataclass(frozen=True)
class TokenContext:
    """A window of corpus tokens around ``position`` of ``row``, with the value at every token."""

    row: int
    position: int
    value: float
    tokens: tuple[str, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class ContextGroup:
    """Contexts of one quantile band (or the top / bottom ones), sorted by value, highest first."""

    label: str
    contexts: list[TokenContext]


@dataclass(frozen=True)
class FeatureDashboard:
    feature: int
    reasons: tuple[str, ...]
    logits: LogitEffects
    density: float
    n_tokens: int
    activation_histogram: Histogram
    groups: list[ContextGroup]
    neighbours: list[FeatureHit]
    neuronpedia: str | None

    def to_summary(self) -> dict[str, Any]:
        return {"feature": self.feature, "reasons": list(self.reasons), "logits": self.logits.summary_line(),
                "density": self.density, "max_activation": max(
                    (c.value for g in self.groups for c in g.contexts), default=0.0),
                "neighbours": [asdict(h) for h in self.neighbours], "neuronpedia": self.neuronpedia}


@dataclass(frozen=True)
class VectorDashboard:
    name: str
    layer: int
    logits: LogitEffects
    projection_histogram: Histogram
    groups: list[ContextGroup]
    features: list[tuple[FeatureHit, str]]  # top decoder-cosine features and their logit summary lines


@dataclass(frozen=True)
class Dashboards:
    """A vector's dashboard and one per feature its decomposition reports (keyed by feature)."""

    spec: SAESpec
    vector: VectorDashboard
    features: dict[int, FeatureDashboard]
    n_rows: int
    n_tokens: int
    seconds: float

    def to_summary(self) -> dict[str, Any]:
        return {"vector_logits": self.vector.logits.summary_line(), "corpus_rows": self.n_rows,
                "corpus_tokens": self.n_tokens, "seconds": self.seconds,
                "features": {str(f): d.to_summary() for f, d in self.features.items()}}


def histogram(values: Float[Tensor, " n"], bins: int = 40) -> Histogram:
    values = values.float()
    if not len(values):
        return Histogram([], [])
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-6
    counts = torch.histc(values, bins=bins, min=lo, max=hi)
    edges = torch.linspace(lo, hi, bins + 1)
    return Histogram([float(e) for e in edges], [int(c) for c in counts])


@torch.no_grad()
def logit_effects(
    directions: Float[Tensor, "n d_model"], W_U: Float[Tensor, "d_model d_vocab"], tokenizer, k: int = 10, bins: int = 40
) -> list[LogitEffects]:
    """Top and bottom ``k`` tokens of ``directions @ W_U`` per direction, and the histogram of all."""
    if directions.ndim != 2 or directions.shape[1] != W_U.shape[0]:
        raise ShapeError(f"directions of shape {tuple(directions.shape)} do not fit W_U of shape {tuple(W_U.shape)}")
    effects = (directions.to(W_U.dtype).to(W_U.device) @ W_U).float().cpu()
    out = []
    for row in effects:
        top, bottom = torch.topk(row, k), torch.topk(-row, k)
        out.append(LogitEffects(
            [TokenValue(tokenizer.decode([int(i)]), float(v)) for v, i in zip(top.values, top.indices)],
            [TokenValue(tokenizer.decode([int(i)]), -float(v)) for v, i in zip(bottom.values, bottom.indices)],
            histogram(row, bins)))
    return out


@torch.no_grad()
def feature_activations(
    sae, acts: Sequence[Float[Tensor, "pos d_in"]], features: Sequence[int], chunk: int = 512
) -> list[Float[Tensor, "pos n"]]:
    """``sae.encode`` of every token of every row, kept for ``features`` only (tokens in chunks, so
    a 131k-feature dictionary never holds more than ``chunk`` × d_sae codes). Position 0 (the
    attention sink, whose norm is far off the distribution) is set to 0."""
    index = torch.tensor([int(f) for f in features], dtype=torch.long)
    lengths = [len(a) for a in acts]
    flat = torch.cat([a.float() for a in acts]) if acts else torch.zeros(0, sae.cfg.d_in)
    if flat.shape[-1] != sae.cfg.d_in:
        raise ShapeError(f"activations have d_model {flat.shape[-1]} but the SAE's d_in is {sae.cfg.d_in}")
    codes = torch.cat([sae.encode(flat[s:s + chunk].to(sae.W_dec.device))[:, index.to(sae.W_dec.device)].float().cpu()
                       for s in range(0, len(flat), chunk)]) if len(flat) else torch.zeros(0, len(index))
    out = list(codes.split(lengths))
    for row in out:
        row[:1] = 0.0
    return out


class _Corpus:
    """Token strings of corpus rows, decoded once per row on first use."""

    def __init__(self, tokenizer, rows: Sequence[dict]):
        self.tokenizer, self.rows, self._tokens = tokenizer, rows, {}

    def tokens(self, r: int) -> list[str]:
        if r not in self._tokens:
            self._tokens[r] = [self.tokenizer.decode([t]) for t in self.rows[r]["ids"]]
        return self._tokens[r]

    def context(self, r: int, pos: int, column: Tensor, window: int) -> TokenContext:
        lo, hi = max(1, pos - window), min(len(self.rows[r]["ids"]), pos + 5)
        return TokenContext(r, pos, float(column[pos]), tuple(self.tokens(r)[lo:hi]),
                            tuple(float(x) for x in column[lo:hi]))


def quantile_groups(
    columns: Sequence[Float[Tensor, " pos"]], corpus: _Corpus, n_top: int = 5, n_band: int = 3,
    bands: Sequence[tuple[float, float]] = BANDS, signed: bool = False, window: int = 12,
) -> list[ContextGroup]:
    """Contexts of the top ``n_top`` tokens, then ``n_band`` evenly spaced samples from each
    quantile band of the population (the non-zero values; every value when ``signed``), then,
    when ``signed``, the ``n_top`` most negative. Each group is sorted highest first."""
    values = torch.cat([c[1:] for c in columns]) if columns else torch.zeros(0)
    where = torch.cat([torch.stack([torch.full((len(c) - 1,), r), torch.arange(1, len(c))], 1)
                       for r, c in enumerate(columns)]) if columns else torch.zeros(0, 2, dtype=torch.long)
    keep = torch.ones_like(values, dtype=torch.bool) if signed else values > 0
    values, where = values[keep], where[keep]
    if not len(values):
        return []
    order = torch.argsort(values, descending=True)
    values, where = values[order], where[order]

    def group(label: str, picks: Sequence[int]) -> ContextGroup:
        picks = sorted(dict.fromkeys(int(i) for i in picks))  # ascending index = descending value
        return ContextGroup(label, [corpus.context(int(where[i, 0]), int(where[i, 1]), columns[int(where[i, 0])], window)
                                    for i in picks])

    n = len(values)
    groups = [group("top", range(min(n_top, n)))]
    for lo, hi in bands:
        # rank i (0 = highest) sits at quantile 1 - i/n; the band's ranks are [(1-hi) n, (1-lo) n)
        first, last = max(int((1 - hi) * n), min(n_top, n)), int((1 - lo) * n)
        if last > first:
            picks = torch.linspace(first, last - 1, min(n_band, last - first)).round().long().tolist()
            groups.append(group(f"quantile {lo:.2f}–{hi:.2f} (values {float(values[last - 1]):.3g} to "
                                f"{float(values[first]):.3g})", picks))
    if signed:
        groups.append(group("most negative", range(max(n - n_top, min(n_top, n)), n)))
    return groups


def feature_neighbours(W_dec: Float[Tensor, "d_sae d_in"], features: Sequence[int], k: int = 5) -> list[list[FeatureHit]]:
    """The ``k`` features whose decoder rows have the highest cosine with each feature's (itself excluded)."""
    cos = cosines_many(W_dec[torch.tensor([int(f) for f in features])], W_dec)
    for i, f in enumerate(features):
        cos[i, int(f)] = -float("inf")
    top = torch.topk(cos, min(k, W_dec.shape[0] - 1), dim=1)
    return [[FeatureHit(int(j), float(v)) for v, j in zip(vs, js)] for vs, js in zip(top.values, top.indices)]


def dashboard_features(decomposition, attribution=None, n: int = 10) -> dict[int, tuple[str, ...]]:
    """The features a decomposition reports (top ``n`` positive and negative by decoder cosine, top
    ``n`` by encoder attribution each way), each with why it is listed."""
    reasons: dict[int, list[str]] = {}
    lists = [("decoder cos", decomposition.top_positive[:n]), ("decoder cos", decomposition.top_negative[:n])]
    if attribution is not None:
        lists += [(f"attribution ({attribution.positive} − {attribution.negative})",
                   attribution.positive_minus_negative[:n]),
                  (f"attribution ({attribution.negative} − {attribution.positive})",
                   attribution.negative_minus_positive[:n])]
    for label, hits in lists:
        for h in hits:
            reasons.setdefault(h.index, []).append(f"{label} {h.score:+.3g}")
    return {f: tuple(r) for f, r in reasons.items()}


@torch.no_grad()
def build_dashboards(
    model, sae, spec: SAESpec, vector: Float[Tensor, " d_in"], layer: int, name: str, rows: Sequence[dict],
    acts: Sequence[Float[Tensor, "pos d_in"]], features: dict[int, tuple[str, ...]],
    top_features: Sequence[FeatureHit] = (), n_neighbours: int = 5, n_top: int = 5, n_band: int = 3,
) -> Dashboards:
    """Dashboards of ``vector`` (read at ``layer``) and of ``features`` (index → why listed) over the
    corpus ``rows`` and their activations ``acts`` at ``layer`` (:func:`sae_analysis.contexts.token_activations`).

    ``top_features``: the vector's features listed on its own page (default: every feature given).
    """
    started = time.perf_counter()
    if vector.shape[0] != sae.cfg.d_in or len(rows) != len(acts):
        raise ShapeError(f"vector of d_model {vector.shape[0]} with SAE d_in {sae.cfg.d_in}; "
                         f"{len(rows)} corpus rows with {len(acts)} activation rows")
    order = list(features)
    W_dec = sae.W_dec.detach()
    corpus = _Corpus(model.tokenizer, rows)
    directions = torch.cat([vector.float()[None], W_dec[torch.tensor(order, dtype=torch.long)].float().cpu()]) \
        if order else vector.float()[None]
    logits = logit_effects(directions, model.W_U.detach(), model.tokenizer)
    codes = feature_activations(sae, acts, order) if order else []
    neighbours = feature_neighbours(W_dec, order, n_neighbours) if order else []
    n_tokens = sum(max(len(a) - 1, 0) for a in acts)
    dashboards = {}
    for j, f in enumerate(order):
        columns = [c[:, j] for c in codes]
        nonzero = torch.cat([c[1:] for c in columns]) if columns else torch.zeros(0)
        nonzero = nonzero[nonzero > 0]
        dashboards[f] = FeatureDashboard(
            f, features[f], logits[j + 1], len(nonzero) / max(n_tokens, 1), n_tokens, histogram(nonzero),
            quantile_groups(columns, corpus, n_top, n_band), neighbours[j], spec.neuronpedia_url(f))
    unit = vector.float() / vector.float().norm().clamp_min(1e-12)
    projections = [a.float() @ unit for a in acts]
    for p in projections:
        p[:1] = 0.0
    listed = list(top_features) or [FeatureHit(f, float("nan")) for f in order]
    vector_page = VectorDashboard(
        name, layer, logits[0], histogram(torch.cat([p[1:] for p in projections]) if projections else torch.zeros(0)),
        quantile_groups(projections, corpus, n_top, n_band, signed=True),
        [(h, dashboards[h.index].logits.summary_line() if h.index in dashboards else "") for h in listed])
    return Dashboards(spec, vector_page, dashboards, len(rows), n_tokens, round(time.perf_counter() - started, 2))
