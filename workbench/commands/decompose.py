"""``workbench decompose VECTOR --sae SPEC --out DIR``: a vector's SAE features against chance.

The command loads (the vector file through :func:`workbench.artifacts.load_vectors`, the SAE, the
model the SAE pairs with), :func:`sae_analysis.pipeline.decompose_vector` computes,
:func:`sae_analysis.report.decomposition_report` draws, and :func:`sae_analysis.runs.write_sae_run` writes.
"""

from __future__ import annotations

from pathlib import Path

from workbench.commands.scale_options import add_distributed_options, start, stop


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "decompose", help="decompose a vector into SAE features (decoder cosine vs chance, attribution, contexts)")
    parser.add_argument("vector", type=Path,
                        help="vector file (LayerVectors .safetensors, persona_vectors or assistant-axis .pt)")
    parser.add_argument("--sae", default="shipped",
                        help="'shipped', an SAE folder (cfg.json + safetensors), or RELEASE/SAE_ID from sae-lens")
    parser.add_argument("--out", type=Path, required=True, help="output folder (summary.json, report.html)")
    parser.add_argument("--layer", type=int, default=None, help="vector row to decompose (default: the SAE's layer)")
    parser.add_argument("--k", type=int, default=20, help="top features per sign")
    parser.add_argument("--model", default=None, help="model for attribution and contexts (default: the SAE's pair)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus JSONL for contexts (default: shipped)")
    parser.add_argument("--dashboards", type=int, default=10, metavar="N",
                        help="write dashboards.html: the vector and the top N features of each list (0: none)")
    parser.add_argument("--device", default="cpu")
    add_distributed_options(parser)  # shards the corpus pass; rank 0 decomposes and writes
    parser.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys

    from workbench.unavailable import EXIT_OK, EXIT_PARTIAL

    shard, device = start(args)
    summary = run_decompose(args.vector, args.sae, args.out, args.layer, args.k, args.model, args.corpus,
                            dashboards=args.dashboards, shard=shard, device=device, chunk=args.chunk)
    stop(shard)
    if summary is None:  # a rank other than 0 of a distributed run: rank 0 writes the outputs
        return EXIT_OK
    d = summary["decomposition"]
    print(json.dumps({"sae": summary["sae"], "layer": summary["layer"], "max_abs_cos": d["max_abs_cos"],
                      "chance_p99": d["baseline"]["p99_max_abs_cos"], "beats_chance": d["beats_chance_p99"],
                      "out": str(args.out)}, indent=2))
    attribution = summary.get("encoder_attribution")
    if isinstance(attribution, dict) and "unavailable" in attribution:
        print(f"encoder attribution unavailable: {attribution['unavailable']}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _vector_shape(model, model_name: str | None) -> tuple[int | None, int | None]:
    """The (n_layers, d_model) a vector file is read with: the loaded model's, else the card of the
    model the SAE pairs with (so a persona_vectors ``.pt`` is read right with no model loaded)."""
    from workbench.models import card_shape

    if model is not None:
        return model.cfg.n_layers, model.cfg.d_model
    return card_shape(model_name) if model_name else (None, None)


def run_decompose(
    vector_path: str | Path, sae: str, out: str | Path, layer: int | None = None, k: int = 20,
    model_name: str | None = None, corpus: str | Path | None = None, corpus_limit: int | None = 400, model=None,
    dashboards: int = 10, shard=None, device: str = "cpu", chunk: int = 256,
) -> dict | None:
    """Load, decompose, draw and write one vector's run; the summary.

    A model (``model``, else loaded by name: ``model_name`` or the SAE's pair) reads the corpus for
    attribution and contexts, except for a registry SAE (GemmaScope) given no corpus.
    """
    from workbench.artifacts import load_vectors
    from workbench.distributed import SINGLE
    from workbench.models import load_model

    from sae_analysis.pipeline import corpus_rows, decompose_vector, vector_for_sae
    from sae_analysis.report import decomposition_report
    from sae_analysis.runs import write_sae_run
    from sae_analysis.saes import SHIPPED_DIR, default_model_name, load_sae, resolve, sae_layer

    spec = resolve(sae)
    layer = sae_layer(spec, layer)  # a layer without an SAE fails before anything slow
    model_name = model_name or default_model_name(spec)
    if model is None and model_name is not None and (spec.source != "registry" or corpus is not None):
        load_vectors(vector_path, *_vector_shape(None, model_name))  # fail on a bad file before the slow model load
        model = load_model(model_name, device=device)
    vectors = load_vectors(vector_path, *_vector_shape(model, model_name))
    vector, layer = vector_for_sae(vectors, spec, layer, str(vector_path))
    rows = corpus_rows(model, corpus or SHIPPED_DIR / "corpus.jsonl", corpus_limit) if model is not None else None
    distributed = shard is not None and shard.distributed
    result = decompose_vector(vector, layer, load_sae(spec), spec, model, rows, k=k, dashboards=dashboards,
                              name=Path(vector_path).name, shard=shard or SINGLE, chunk=chunk,
                              chunk_dir=Path(out) / "cache" / "chunks" / f"corpus_L{layer}" if distributed else None)
    if result is None:
        return None
    return write_sae_run(out, vector_path, vectors, result, decomposition_report(result, Path(vector_path).name))
