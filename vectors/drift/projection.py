"""Per-token projections of whole conversations onto a direction, in bounded memory.

The projection of token t at layer L is ⟨h_L(t), v̂_L⟩ with v̂ the unit direction (the same
quantity :class:`~workbench.hooks.CapProjection` compares with its threshold), read at
``blocks.L.hook_resid_post`` after chat formatting.

Memory. A conversation is run in chunks of ``chunk_size`` tokens through a KV cache with
``stop_at_layer`` just past the deepest layer asked, so attention never materialises more than
chunk × length scores and only chunk × d_model activations per layer are held at once. The result
is exact (equal to one full pass). A conversation longer than ``window`` tokens (default: the
model's context) is read as overlapping windows: window k starts ``window − overlap`` tokens after
window k−1, restarts positions at 0, and contributes only its tokens after the overlap, so every
token is read with at least ``overlap`` tokens of left context. ``ChatProjection.method`` says which
of the two was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from workbench.artifacts import LayerVectors
from workbench.chat import ChatTokens
from workbench.distributed import DEFAULT_CHUNK, SINGLE, ChunkStore, Shard, map_rows
from workbench.errors import InputFormatError, LayerError
from workbench.hooks import Intervention, Positions, TokenCapture, apply
from workbench.layers import check_layer


@dataclass(frozen=True)
class ChatProjection:
    """Per-token projections of one formatted conversation at some layers.

    ``values[i, t]``: projection of token ``t`` at ``layers[i]``. ``assistant_spans`` as in
    :class:`~workbench.chat.ChatTokens`. ``method``: how the conversation was read (exact, or
    sliding windows beyond the context).
    """

    tokens: tuple[str, ...]
    values: Float[Tensor, "layer pos"]
    layers: tuple[int, ...]
    assistant_spans: tuple[tuple[int, int], ...]
    method: str

    def at(self, layer: int) -> Float[Tensor, " pos"]:
        if layer not in self.layers:
            raise LayerError(f"layer {layer} was not projected (projected layers: {list(self.layers)})")
        return self.values[self.layers.index(layer)]

    def turn_values(self, layer: int) -> list[Float[Tensor, " turn_pos"]]:
        """Projections of each assistant turn's tokens."""
        row = self.at(layer)
        return [row[start:end] for start, end in self.assistant_spans]

    def turn_means(self, layer: int) -> list[float]:
        """Mean projection of each assistant turn (NaN for an empty turn)."""
        return [float(v.mean()) if len(v) else float("nan") for v in self.turn_values(layer)]

    def response_values(self, layer: int) -> Float[Tensor, " n"]:
        """Projections of every assistant token, all turns together."""
        return torch.cat(self.turn_values(layer)) if self.assistant_spans else torch.empty(0)

    def to_json(self, layer: int) -> dict[str, Any]:
        """Per-turn means and per-token values (with token text) at ``layer``."""
        row = self.at(layer).tolist()
        return {
            "layer": layer,
            "method": self.method,
            "turn_means": self.turn_means(layer),
            "turns": [
                {"span": [start, end], "tokens": list(self.tokens[start:end]), "values": row[start:end]}
                for start, end in self.assistant_spans
            ],
            "tokens": list(self.tokens),
            "values": row,
        }


def unit_directions(vectors: LayerVectors, layers: Sequence[int]) -> dict[int, Float[Tensor, " d_model"]]:
    """Unit direction at each layer (LayerError naming the layer if it is out of range or zero)."""
    return {layer: vectors.unit(check_layer(layer, vectors.n_layers)).float() for layer in layers}


def _windows(length: int, window: int, overlap: int) -> list[tuple[int, int, int]]:
    """(start, end, keep_from) of each window; tokens keep_from:end are taken from that window."""
    if length <= window:
        return [(0, length, 0)]
    if not 0 <= overlap < window:
        raise InputFormatError(f"overlap must be in [0, window={window}), got {overlap}")
    out, start = [], 0
    while True:
        end = min(start + window, length)
        out.append((start, end, start + overlap if start else 0))
        if end == length:
            return out
        start += window - overlap


def project_chat(
    model,
    chat: ChatTokens,
    vectors: LayerVectors,
    layers: Sequence[int],
    interventions: Sequence[Intervention] = (),
    chunk_size: int = 256,
    window: int | None = None,
    overlap: int | None = None,
) -> ChatProjection:
    """Project every token of ``chat`` onto ``vectors`` at ``layers`` (see the module docstring).

    ``interventions`` run before the reading at each layer (e.g. read the capped model's stream).
    """
    layers = tuple(check_layer(layer, model.cfg.n_layers) for layer in layers)
    if vectors.d_model != model.cfg.d_model:
        raise InputFormatError(f"vectors have d_model {vectors.d_model}, the model {model.cfg.d_model}")
    units = unit_directions(vectors, layers)
    window = window or model.cfg.n_ctx
    overlap = window // 4 if overlap is None else overlap
    ids = torch.tensor(chat.ids, dtype=torch.long)
    response = chat.response_mask()
    values = torch.empty(len(layers), len(ids))
    spans = _windows(len(ids), window, overlap)
    for start, end, keep_from in spans:
        read = _project_window(model, ids[start:end], response[start:end], units, interventions, chunk_size)
        values[:, keep_from:end] = read[:, keep_from - start:]
    method = _method(len(ids), window, chunk_size, overlap)
    return ChatProjection(token_strings(model.tokenizer, chat.ids), values, layers, chat.assistant_spans, method)


def _method(length: int, window: int, chunk_size: int, overlap: int) -> str:
    """How :func:`project_chat` reads a conversation of ``length`` tokens: exact, or sliding windows."""
    spans = _windows(length, window, overlap)
    if len(spans) == 1:
        return f"exact: {length} tokens in chunks of {chunk_size} through a KV cache"
    return (
        f"sliding window: {length} tokens exceed the window of {window}; read as {len(spans)} "
        f"windows overlapping by {overlap} tokens (positions restart at 0 in each window; every "
        f"token sees at least {overlap} tokens of left context)"
    )


def token_strings(tokenizer, ids: Sequence[int]) -> tuple[str, ...]:
    """One display string per token. Byte-level tokenizers split a character of several UTF-8
    bytes (é, U+202E, emoji) over tokens that each decode to "\ufffd"; such a character is shown
    whole on the token that completes it, and the tokens before it show "" (up to 7 in a row, then
    the decoded text is shown as it is)."""
    strings: list[str] = []
    pending: list[int] = []
    for token in ids:
        pending.append(token)
        text = tokenizer.decode(pending)
        if text.endswith("\ufffd") and len(pending) < 8:
            strings.append("")
            continue
        strings.append(text)
        pending = []
    return tuple(strings)


def _project_window(
    model, ids, response, units: dict[int, Tensor], interventions: Sequence[Intervention], chunk_size: int
) -> Float[Tensor, "layer pos"]:
    device = model.cfg.device
    capture = TokenCapture(tuple(units))
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, 1)
    out = []
    positions = Positions()
    with torch.inference_mode(), apply(model, [*interventions, capture], positions):
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start : start + chunk_size][None].to(device)
            positions.response_mask = response[start : start + chunk_size][None]
            model(chunk, attention_mask=torch.ones_like(chunk), past_kv_cache=cache,
                  stop_at_layer=max(units) + 1)
            out.append(torch.stack([capture.values[layer][0] @ units[layer] for layer in units]))
    return torch.cat(out, dim=1)


def project_chats(
    model, chats: Sequence[ChatTokens], vectors: LayerVectors, layers: Sequence[int],
    interventions: Sequence[Intervention] = (), progress: bool = True, desc: str = "project",
    shard: Shard = SINGLE, store: ChunkStore | None = None, chunk: int = DEFAULT_CHUNK,
) -> list[ChatProjection] | None:
    """:func:`project_chat` over many conversations, with a progress bar. Sharded over ``torchrun``
    ranks with ``shard`` and a ``store`` every rank reads (:func:`workbench.distributed.map_rows`):
    each rank projects its chunks of conversations, rank 0 gets every projection in order (each one
    computed alone, so equal to a single process's), the other ranks None."""
    layers = tuple(check_layer(layer, model.cfg.n_layers) for layer in layers)
    values = map_rows(len(chats), lambda items: [project_chat(model, chats[i], vectors, layers, interventions).values
                                                 for i in items], chunk, store, shard, progress, desc)
    if values is None:
        return None
    methods = [_method(len(chat.ids), model.cfg.n_ctx, 256, model.cfg.n_ctx // 4) for chat in chats]
    return [ChatProjection(token_strings(model.tokenizer, chat.ids), v, layers, chat.assistant_spans, m)
            for chat, v, m in zip(chats, values, methods)]


def response_quantiles(
    projections: Sequence[ChatProjection], layer: int, quantiles: Sequence[float]
) -> list[float]:
    """Quantiles of the projections of all assistant tokens of ``projections`` at ``layer``."""
    pooled = torch.cat([p.response_values(layer) for p in projections])
    if not len(pooled):
        raise InputFormatError("no assistant tokens to take quantiles of (empty responses?)")
    return torch.quantile(pooled.double(), torch.tensor(list(quantiles), dtype=torch.double)).tolist()


def in_band_share(turn_means: Sequence[float], band: tuple[float, float]) -> float:
    """Fraction of turns whose mean projection lies inside ``band`` (low, high), inclusive.

    A float32 slack of 1e-4 × the band's scale keeps a turn capped exactly at the floor τ = low
    from counting as outside through rounding alone.
    """
    if not turn_means:
        return float("nan")
    low, high = band
    slack = 1e-4 * max(abs(low), abs(high), 1.0)
    return sum(low - slack <= m <= high + slack for m in turn_means) / len(turn_means)
