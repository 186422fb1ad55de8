"""The response corpus an SAE's features are read on: token activations and max-activating contexts.

Why: a feature index means nothing until one sees the text that makes it fire. The shipped corpus
(``shipped/<sae>/corpus.jsonl``: the shipped model's own answers to persona × question prompts,
chat-formatted) is the pool; the contexts are shown as circuitsvis token views, the activation of
the feature coloring every token of a window around the maximum.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.chat import ChatTokens
from workbench.distributed import DEFAULT_CHUNK, SINGLE, ChunkStore, Shard, map_rows
from workbench.errors import InputFormatError
from workbench.forward import iter_batches
from workbench.hooks import TokenCapture


def load_corpus(path: str | Path) -> list[dict]:
    """Rows of a corpus JSONL (``ids``, ``response_span``, ``persona``, ``question``, ``reply``)."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ids = row["ids"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputFormatError(f"{path} line {n}: expected a JSON object with 'ids' ({exc})") from exc
        if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
            raise InputFormatError(f"{path} line {n}: field 'ids' must be a list of token ids")
        rows.append(row)
    return rows


def row_chat(row: dict) -> ChatTokens:
    """A corpus row as chat tokens: its ids, and its response span when it has one."""
    span = row.get("response_span")
    return ChatTokens(tuple(row["ids"]), (tuple(span),) if span else ())


def token_activations(
    model, rows: Sequence[dict], layer: int, batch_size: int = 16, progress: bool = False,
    shard: Shard = SINGLE, store: ChunkStore | None = None, chunk: int = DEFAULT_CHUNK,
) -> list[Float[Tensor, "pos d_model"]] | None:
    """Residual stream at ``layer`` for every token of every row, in batched forward passes over
    chunks of ``chunk`` rows. Sharded over ``torchrun`` ranks with ``shard`` and a ``store`` every
    rank reads (:func:`workbench.distributed.map_rows`): rank 0 gets every row's activations in
    order, the other ranks None."""
    chats = [row_chat(row) for row in rows]

    def compute(items: range) -> list[Tensor]:
        capture = TokenCapture((layer,))
        out: list[Tensor | None] = [None] * len(items)
        for batch in iter_batches(model, [chats[i] for i in items], [capture], batch_size=batch_size,
                                  stop_at_layer=layer + 1, progress=False):
            for j, (i, length) in enumerate(zip(batch.indices, batch.lengths)):
                out[i] = capture.values[layer][j, :length]
        return out  # type: ignore[return-value]

    return map_rows(len(rows), compute, chunk, store, shard, progress, f"layer {layer} activations")


def response_tokens(rows: Sequence[dict], acts: Sequence[Tensor]) -> Float[Tensor, "n d_model"]:
    """Activations of the response tokens only (rows without a reply contribute none)."""
    parts = [a[r["response_span"][0]:r["response_span"][1]] for r, a in zip(rows, acts) if r.get("response_span")]
    if not parts:
        raise InputFormatError("no corpus row has a response span")
    return torch.cat(parts)


@dataclass(frozen=True)
class Context:
    """A window of tokens around one activation peak of a feature."""

    feature: int
    peak: float
    tokens: tuple[str, ...]
    values: tuple[float, ...]
    row: int


@torch.no_grad()
def max_activating_contexts(
    sae,
    tokenizer,
    rows: Sequence[dict],
    acts: Sequence[Float[Tensor, "pos d_model"]],
    features: Sequence[int],
    n: int = 3,
    window: int = 12,
) -> dict[int, list[Context]]:
    """The ``n`` strongest activations of each feature over the corpus (at most one per row), each
    with ``window`` tokens before and 4 after; position 0 (attention sink) is skipped."""
    features = list(dict.fromkeys(int(f) for f in features))
    peaks = {f: [] for f in features}
    index = torch.tensor(features)
    for r, a in enumerate(acts):
        codes = sae.encode(a[1:].float())[:, index]  # [pos-1, n_features]
        values, positions = codes.max(0)
        for j, f in enumerate(features):
            if values[j] > 0:
                peaks[f].append((float(values[j]), r, int(positions[j]) + 1, codes[:, j]))
    out = {}
    for f in features:
        best = sorted(peaks[f], key=lambda p: -p[0])[:n]
        contexts = []
        for peak, r, pos, column in best:
            lo, hi = max(1, pos - window), min(len(rows[r]["ids"]), pos + 5)
            tokens = tuple(tokenizer.decode([t]) for t in rows[r]["ids"][lo:hi])
            contexts.append(Context(f, peak, tokens, tuple(float(x) for x in column[lo - 1:hi - 1]), r))
        out[f] = contexts
    return out
