"""The analyses behind ``workbench decompose`` and ``workbench compare-steering``, as typed results.

Each takes what is already in memory (a vector row and its layer, a loaded SAE and its spec, the
model and its corpus rows) and returns a frozen result whose ``to_summary()`` is the run's
``summary.json`` body; :mod:`sae_analysis.report` draws it and the commands load and write.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from jaxtyping import Float
from torch import Tensor

from workbench.artifacts import LayerVectors, inputs_hash
from workbench.distributed import DEFAULT_CHUNK, SINGLE, ChunkStore, Shard
from workbench.chat import format_conversation, format_prompt, messages
from workbench.errors import ShapeError
from workbench.metrics import TraitExample
from workbench.unavailable import Unavailable

from sae_analysis import contexts as ctx
from sae_analysis.dashboards import Dashboards, build_dashboards, dashboard_features
from sae_analysis.decompose import Decomposition, FeatureHit, decompose, encoder_attribution
from sae_analysis.feature_steering import Baselines, ComparisonConfig, compare_steering, reference_activations, summarize
from sae_analysis.saes import SHIPPED_DIR, SAESpec, sae_layer

DEFAULT_PERSONAS = (None, "You are a helpful assistant.",
                    "You are a concise, precise assistant. Answer in as few words as possible.")


def corpus_rows(model, path: str | Path = SHIPPED_DIR / "corpus.jsonl", limit: int | None = None) -> list[dict]:
    """The response corpus re-tokenized for ``model`` (so any model's tokenizer fits)."""
    rows = ctx.load_corpus(path)[:limit]
    for row in rows:
        if row.get("reply"):
            chat = format_conversation(model.tokenizer, messages(row.get("persona"), row["question"], row["reply"]))
            row["ids"], row["response_span"] = list(chat.ids), list(chat.assistant_spans[0])
        else:
            row["ids"], row["response_span"] = list(format_prompt(model.tokenizer, messages(row.get("persona"), row["question"]))), None
    return rows


def vector_for_sae(
    vectors: LayerVectors, spec: SAESpec, layer: int | None = None, source: str = "vector"
) -> tuple[Float[Tensor, " d_in"], int]:
    """The row of ``vectors`` the SAE reads (``layer`` or the SAE's hook layer), as float, and its layer.

    Checked where the vector's ``source`` can still be named: the SAE reads that layer, the vector
    has it, and its d_model is the SAE's d_in.
    """
    layer = sae_layer(spec, layer)
    if layer >= vectors.n_layers:
        raise ShapeError(f"{source}: has {vectors.n_layers} layers; the SAE reads layer {layer}")
    vector = vectors.at(layer).float()
    if vector.shape[0] != spec.d_in:
        raise ShapeError(f"{source}: d_model {vector.shape[0]} but SAE {spec.id} has d_in {spec.d_in}")
    return vector, layer


@dataclass(frozen=True)
class EncoderAttribution:
    """Features by mean SAE activation on the corpus' default-assistant minus its role-play responses."""

    positive_minus_negative: list[FeatureHit]
    negative_minus_positive: list[FeatureHit]
    positive: str = "default-assistant responses"
    negative: str = "role-play responses"

    def to_summary(self) -> dict[str, Any]:
        return {"positive_minus_negative": [asdict(h) for h in self.positive_minus_negative],
                "negative_minus_positive": [asdict(h) for h in self.negative_minus_positive],
                "positive": self.positive, "negative": self.negative}


@dataclass(frozen=True)
class CorpusReading:
    """What a model's pass over the corpus adds to a decomposition: the attribution (unavailable when
    the corpus lacks default-assistant or role-play responses) and each top feature's strongest contexts."""

    n_rows: int
    attribution: EncoderAttribution | Unavailable
    contexts: dict[int, list[ctx.Context]]

    def contexts_summary(self) -> dict[str, list[dict[str, Any]]]:
        return {str(f): [{"peak": c.peak, "text": "".join(c.tokens)} for c in items] for f, items in self.contexts.items()}


@dataclass(frozen=True)
class VectorDecomposition:
    """One vector's SAE decomposition at one layer, with the corpus reading when a model was given."""

    spec: SAESpec
    layer: int
    decomposition: Decomposition
    corpus: CorpusReading | None = None
    dashboards: Dashboards | None = None

    def to_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "layer": self.layer, "sae": self.spec.id, "sae_notes": self.spec.notes(),
            "base_model_sae": self.spec.is_base_model_sae, "decomposition": self.decomposition.to_dict(),
        }
        if self.corpus is not None:
            attribution = self.corpus.attribution
            out["encoder_attribution"] = attribution.to_summary()
            out["contexts"] = self.corpus.contexts_summary()
        if self.dashboards is not None:
            out["dashboards"] = self.dashboards.to_summary()
        return out


def _read_corpus(model, sae, corpus: Sequence[dict], acts: Sequence[Tensor], features: Sequence[int]) -> CorpusReading:
    """Encoder attribution (default-assistant minus role-play responses) and the max-activating
    contexts of ``features`` over the corpus rows (from :func:`corpus_rows`) and their activations."""
    default = [i for i, r in enumerate(corpus) if r.get("reply") and r.get("persona") in DEFAULT_PERSONAS]
    roles = [i for i, r in enumerate(corpus) if r.get("reply") and r.get("persona") not in DEFAULT_PERSONAS]
    attribution: EncoderAttribution | Unavailable = Unavailable(
        f"the corpus needs default-assistant and role-play replies; of its {len(corpus)} rows {len(default)} are "
        f"default-assistant and {len(roles)} role-play replies")
    if default and roles:
        pos, neg = encoder_attribution(sae, ctx.response_tokens([corpus[i] for i in default], [acts[i] for i in default]),
                                       ctx.response_tokens([corpus[i] for i in roles], [acts[i] for i in roles]), k=10)
        attribution = EncoderAttribution(pos, neg)
    found = ctx.max_activating_contexts(sae, model.tokenizer, corpus, acts, features)
    return CorpusReading(len(corpus), attribution, found)


def _checked(acts: Sequence[Tensor], corpus: Sequence[dict]) -> Sequence[Tensor]:
    """Activations handed in by a caller must be the corpus rows' own, one per row, token for token."""
    if len(acts) != len(corpus) or any(a.shape[0] != len(r["ids"]) for a, r in zip(acts, corpus)):
        raise ShapeError(f"activations for {len(acts)} rows do not match the {len(corpus)} corpus rows token for token")
    return acts


def decompose_vector(
    vector: Float[Tensor, " d_in"], layer: int, sae, spec: SAESpec, model=None, corpus: Sequence[dict] | None = None,
    k: int = 20, dashboards: int = 10, name: str = "vector", acts: Sequence[Tensor] | None = None,
    shard: Shard = SINGLE, chunk_dir: Path | None = None, chunk: int = DEFAULT_CHUNK,
) -> VectorDecomposition | None:
    """Decoder-cosine decomposition of ``vector`` (read at ``layer``) against chance; with a model and
    its corpus rows, also the encoder attribution, the top 5 + 5 features' contexts and the
    dashboards (:mod:`sae_analysis.dashboards`) of ``name`` and of the top ``dashboards`` features of
    each list (0: none).

    ``acts``: the corpus' activations at ``layer`` (:func:`sae_analysis.contexts.token_activations`)
    when the caller has them already: the corpus pass is most of the cost, and one pass serves every
    vector read at the same layer. Otherwise, with a ``torchrun`` ``shard``, the corpus pass is
    sharded over the ranks through chunks under ``chunk_dir``; ranks other than 0 return None."""
    result = decompose(vector, sae.W_dec.detach(), k=k)
    reading = pages = None
    if model is not None and corpus is not None:
        if acts is not None:
            acts = _checked(acts, corpus)
        else:
            store = None
            if chunk_dir is not None:
                key = inputs_hash([[row["ids"] for row in corpus], layer, model.cfg.model_name, str(model.cfg.dtype)])
                store = ChunkStore(Path(chunk_dir), key)
            acts = ctx.token_activations(model, corpus, layer, shard=shard, store=store, chunk=chunk)
            if acts is None:
                return None
        features = [h.index for h in result.top_positive[:5] + result.top_negative[:5]]
        reading = _read_corpus(model, sae, corpus, acts, features)
        if dashboards > 0:
            listed = dashboard_features(result, reading.attribution, dashboards)
            pages = build_dashboards(model, sae, spec, vector, layer, name, corpus, acts, listed,
                                     result.top_positive[:dashboards] + result.top_negative[:dashboards])
    return VectorDecomposition(spec, layer, result, reading, pages)


@dataclass(frozen=True)
class SteeringComparison:
    """Whole vector vs top-k features vs SAE splice vs random directions: one row per (method, knob),
    with :func:`sae_analysis.feature_steering.summarize`'s verdict per coefficient."""

    spec: SAESpec
    layer: int
    activation_norm: float
    config: ComparisonConfig
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    seconds: float
    output_score_ranking: list[tuple[int, float, float]] = ()  # (feature, sign, raise of the trait metric)
    output_score_selection: str = "held-out"  # or "in-sample": ranked on the scored examples
    instruction: str | None = None

    def to_summary(self) -> dict[str, Any]:
        return {"layer": self.layer, "sae": self.spec.id, "activation_norm": self.activation_norm,
                "config": {k: v for k, v in self.config.__dict__.items() if k != "sampling"},
                "instruction": self.instruction, "output_score_selection": self.output_score_selection,
                "output_score_ranking": [{"feature": f, "sign": s, "trait_raise": r} for f, s, r in self.output_score_ranking],
                "rows": self.rows, "summary": self.summary, "seconds": self.seconds}


def compare_vector(
    vector: Float[Tensor, " d_in"], layer: int, sae, spec: SAESpec, model, corpus: Sequence[dict],
    examples: Sequence[TraitExample], questions: Sequence[str] | None = None,
    config: ComparisonConfig = ComparisonConfig(), progress: bool = True, baselines: Baselines = Baselines(),
    acts: Sequence[Tensor] | None = None,
) -> SteeringComparison:
    """Steer with ``vector``, its SAE features and the field's baselines (``baselines``: prompting,
    output-score selection, the behavioural score, a judge) over a coefficient sweep, scored on ``examples``.

    The corpus rows give the mean activation norm that scales the additive methods and each
    feature's max activation that scales splice clamps; ``questions`` (default: the examples')
    are generated for perplexity and the behavioural score. ``acts``: as in :func:`decompose_vector`.
    """
    started = time.time()
    acts = ctx.token_activations(model, corpus, layer) if acts is None else _checked(acts, corpus)
    response_acts = ctx.response_tokens(corpus, acts)
    norm = float(response_acts.norm(dim=-1).mean())
    reference = reference_activations(sae, response_acts)
    questions = list(questions or dict.fromkeys(e.question for e in examples))
    rows, ranking = compare_steering(model, vector, layer, sae, examples, questions, norm, reference, config, progress,
                                     baselines)
    return SteeringComparison(spec, layer, norm, config, rows, summarize(rows), round(time.time() - started, 1), ranking,
                              "held-out" if baselines.selection_examples else "in-sample", baselines.instruction)


def run_summary(
    source: str | Path, vectors: LayerVectors, result: VectorDecomposition | SteeringComparison
) -> dict[str, Any]:
    """A decompose or compare-steering run's ``summary.json``: which vector (its file and its
    metadata), then the result's ``to_summary()``."""
    return {"vector": str(source), "vector_metadata": vectors.metadata} | result.to_summary()
