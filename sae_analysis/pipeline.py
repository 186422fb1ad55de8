"""The two runs behind ``workbench decompose`` and ``workbench compare-steering``.

Each loads a vector artifact (``LayerVectors``: one row per layer) and an SAE spec, checks that the
SAE reads the vector's layer, does the analysis, and writes ``summary.json`` and ``report.html``
(one offline page through :mod:`workbench.report`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from workbench.artifacts import LayerVectors, atomic_write_text
from workbench.chat import format_conversation, format_prompt, messages
from workbench.errors import InputFormatError, ShapeError
from workbench.metrics import TraitExample
from workbench.report import Report

from sae_analysis import contexts as ctx
from sae_analysis.decompose import decompose, encoder_attribution
from sae_analysis.feature_steering import ComparisonConfig, compare_steering, reference_activations, summarize
from sae_analysis.saes import SHIPPED_DIR, SAESpec, check_layer, load_sae, resolve

DEFAULT_PERSONAS = (None, "You are a helpful assistant.",
                    "You are a concise, precise assistant. Answer in as few words as possible.")


def load_vector(path: str | Path, spec: SAESpec, layer: int | None = None) -> tuple[torch.Tensor, int, dict]:
    """The vector row the SAE reads (layer from ``layer`` or the SAE's hook), with its metadata."""
    vectors = LayerVectors.load(path)
    layer = spec.layer if layer is None else layer
    if layer is None:
        raise InputFormatError(f"SAE {spec.id} reads {spec.hook_name}, not a residual layer; pass --layer")
    check_layer(spec, layer)
    if layer >= vectors.n_layers:
        raise ShapeError(f"{path}: has {vectors.n_layers} layers; the SAE reads layer {layer}")
    vector = vectors.at(layer).float()
    if vector.shape[0] != spec.d_in:
        raise ShapeError(f"{path}: d_model {vector.shape[0]} but SAE {spec.id} has d_in {spec.d_in}")
    return vector, layer, vectors.metadata


def default_model_name(spec: SAESpec) -> str | None:
    """The model the workbench pairs with an SAE (the shipped model for the shipped SAE)."""
    from workbench.models import KNOWN_MODELS

    if spec.source == "shipped" or spec.trained_on in KNOWN_MODELS:
        return "smollm2-135m-instruct" if spec.source == "shipped" else spec.trained_on
    return {"gemma-2-27b": "google/gemma-2-27b-it", "gemma-2-9b-it": "google/gemma-2-9b-it",
            "gemma-2-2b": "google/gemma-2-2b-it"}.get(spec.trained_on)


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


def _feature_rows(hits, spec: SAESpec) -> list[dict]:
    return [{"feature": h.index, "score": h.score, "neuronpedia": spec.neuronpedia_url(h.index) or ""} for h in hits]


def run_decompose(
    vector_path: str | Path, sae: str, out: str | Path, layer: int | None = None, k: int = 20,
    model_name: str | None = None, corpus: str | Path | None = None, corpus_limit: int | None = 400,
    progress: bool = True, model=None,
) -> dict[str, Any]:
    """Decompose one vector; with a model, also encoder attribution and max-activating contexts.

    ``model``: an already loaded model to use (else loaded by name when the SAE has a pair).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = resolve(sae)
    vector, layer, metadata = load_vector(vector_path, spec, layer)
    sae_model = load_sae(spec)
    result = decompose(vector, sae_model.W_dec.detach(), k=k)
    summary: dict[str, Any] = {
        "vector": str(vector_path), "vector_metadata": metadata, "layer": layer, "sae": spec.id,
        "sae_notes": spec.notes(), "base_model_sae": spec.is_base_model_sae, "decomposition": result.to_dict(),
    }
    report = Report(f"SAE decomposition of {Path(vector_path).name} at layer {layer}")
    head = report.section("Summary")
    head.text(f"SAE {spec.id}: {spec.notes()}.")
    if spec.is_base_model_sae:
        head.note(f"{spec.id} was trained on the base model {spec.trained_on}; it is applied here to the "
                  f"instruction-tuned model's activations, where its reconstruction is worse.")
    verdict = "above" if result.beats_chance else "NOT above"
    head.text(f"Best |cos| with a decoder direction: {result.max_abs_cos:.3f}, {verdict} the 99th percentile of "
              f"chance ({result.baseline.p99_max_abs_cos:.3f}; mean {result.baseline.mean_max_abs_cos:.3f} over "
              f"{result.baseline.draws} random directions). Top features above chance: {result.n_above_chance()}. "
              f"Decomposition took {result.seconds:.2f} s.")
    report.section("Decoder cosine: top features").table(_feature_rows(result.top_positive, spec), "most positive") \
        .table(_feature_rows(result.top_negative, spec), "most negative")
    _reconstruction_section(report.section("Reconstruction from top-k decoder directions"), result.reconstruction)
    model_name = model_name or default_model_name(spec)
    if model is not None or (model_name is not None and (spec.source != "registry" or corpus is not None)):
        if model is None:
            from workbench.models import load_model

            model = load_model(model_name)
        rows = corpus_rows(model, corpus or SHIPPED_DIR / "corpus.jsonl", corpus_limit)
        acts = ctx.token_activations(model, rows, layer)
        default = [i for i, r in enumerate(rows) if r.get("reply") and r.get("persona") in DEFAULT_PERSONAS]
        roles = [i for i, r in enumerate(rows) if r.get("reply") and r.get("persona") not in DEFAULT_PERSONAS]
        attribution = None
        if default and roles:
            pos, neg = encoder_attribution(sae_model, ctx.response_tokens([rows[i] for i in default], [acts[i] for i in default]),
                                           ctx.response_tokens([rows[i] for i in roles], [acts[i] for i in roles]), k=10)
            attribution = {"positive_minus_negative": [h.__dict__ for h in pos],
                           "negative_minus_positive": [h.__dict__ for h in neg],
                           "positive": "default-assistant responses", "negative": "role-play responses"}
            report.section("Encoder attribution (default-assistant minus role-play responses)") \
                .table(_feature_rows(pos, spec), "more active on default-assistant responses") \
                .table(_feature_rows(neg, spec), "more active on role-play responses")
        summary["encoder_attribution"] = attribution
        features = [h.index for h in result.top_positive[:5] + result.top_negative[:5]]
        found = ctx.max_activating_contexts(sae_model, model.tokenizer, rows, acts, features)
        section = report.section("Max-activating contexts")
        section.text(f"Corpus: {len(rows)} chat-formatted conversations; the strongest activation of each "
                     f"top decoder-cosine feature, the window colored by the feature's activation.")
        summary["contexts"] = {}
        for f, items in found.items():
            section.text(f"Feature {f}" + (f" — {spec.neuronpedia_url(f)}" if spec.neuronpedia_id else "")
                         + ("" if items else ": never fires on this corpus"))
            for c in items:
                section.colored_tokens(c.tokens, c.values)
            summary["contexts"][str(f)] = [{"peak": c.peak, "text": "".join(c.tokens)} for c in items]
    elif spec.neuronpedia_id:
        report.section("Features on Neuronpedia").text(
            "No model or corpus given: see each feature's contexts on Neuronpedia (links in the tables).")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    report.write(out / "report.html")
    return summary


def reconstruction_figure(curves: dict[str, Sequence[float]]):
    """Share of each vector's ‖v‖² explained by its top-k decoder directions, one line per vector."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(x=list(range(1, len(curve) + 1)), y=list(curve), name=name,
                                 mode="lines+markers" if len(curves) == 1 else "lines"))
    fig.update_layout(xaxis_title="k (top features by |cos|)", yaxis_title="share of ‖v‖² explained",
                      height=320, margin=dict(t=20, b=40))
    return fig


def _reconstruction_section(section, curve: Sequence[float]) -> None:
    section.text(f"k=1: {curve[0]:.3f}, k=5: {curve[min(4, len(curve) - 1)]:.3f}, k={len(curve)}: {curve[-1]:.3f}")
    section.plotly(reconstruction_figure({"vector": curve}))


def run_compare(
    vector_path: str | Path, sae: str, out: str | Path, examples: Sequence[TraitExample],
    questions: Sequence[str] | None = None, layer: int | None = None, model_name: str | None = None,
    config: ComparisonConfig = ComparisonConfig(), corpus: str | Path | None = None,
    corpus_limit: int | None = 200, progress: bool = True, model=None,
) -> dict[str, Any]:
    """Whole vector vs top-k features vs SAE splice vs random directions over a coefficient sweep.

    The corpus (default: the shipped one) gives the activation norm that scales the additive
    methods and each feature's max activation that scales splice clamps.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    spec = resolve(sae)
    vector, layer, metadata = load_vector(vector_path, spec, layer)
    if model is None:
        from workbench.models import load_model

        model_name = model_name or default_model_name(spec)
        if model_name is None:
            raise InputFormatError(f"no default model for SAE {spec.id}; pass --model")
        model = load_model(model_name)
    sae_model = load_sae(spec)
    rows = corpus_rows(model, corpus or SHIPPED_DIR / "corpus.jsonl", corpus_limit)
    acts = ctx.token_activations(model, rows, layer)
    response_acts = ctx.response_tokens(rows, acts)
    norm = float(response_acts.norm(dim=-1).mean())
    reference = reference_activations(sae_model, response_acts)
    questions = list(questions or dict.fromkeys(e.question for e in examples))
    table = compare_steering(model, vector, layer, sae_model, examples, questions, norm, reference, config, progress)
    summary = {"vector": str(vector_path), "vector_metadata": metadata, "layer": layer, "sae": spec.id,
               "activation_norm": norm, "config": {k: v for k, v in config.__dict__.items() if k != "sampling"},
               "rows": table, "summary": summarize(table), "seconds": round(time.time() - started, 1)}
    report = Report(f"Feature-level vs whole-vector steering: {Path(vector_path).name}, layer {layer}")
    head = report.section("Summary")
    head.text(f"SAE {spec.id}: {spec.notes()}. Additive methods push a unit direction by coefficient × mean "
              f"activation norm ({norm:.2f}); splice clamps the top-k features (by decoder cosine) to a multiple "
              f"of their max activation on the corpus, keeping the SAE error term.")
    head.note("On a small model likelihoods move under any large push: compare each method with the random rows.")
    for c, entry in summary["summary"]["by_coefficient"].items():
        head.text(f"coefficient {c}: best coherent method {entry['best_method']} (shift {entry['best_shift']}); "
                  f"largest random shift {entry['random_max_abs_shift']:.4f}; beats random: {entry['beats_random']}")
    report.section("Table").table([{k: v for k, v in r.items() if k != "features"} for r in table])
    _comparison_figure(report.section("Trait metric by coefficient"), table)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    report.write(out / "report.html")
    return summary


def _comparison_figure(section, table: Sequence[dict]) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    base = next(r for r in table if r["method"] == "none")
    for method in dict.fromkeys(r["method"] for r in table if "coefficient" in r and r["method"] != "none"):
        points = sorted([(0.0, base["trait_metric"], base["ci95"])] +
                        [(r["coefficient"], r["trait_metric"], r["ci95"]) for r in table if r["method"] == method])
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=method, mode="lines+markers",
                                 error_y=dict(type="data", array=[p[2] for p in points]),
                                 line=dict(dash="dot") if method.startswith("random") else None))
    fig.update_layout(xaxis_title="coefficient (× activation norm)", yaxis_title="trait metric (Δ log-lik/token)",
                      height=380, margin=dict(t=20, b=40))
    section.plotly(fig)
