"""``workbench decompose VECTOR --sae SPEC --out DIR``: a vector's SAE features against chance."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "decompose", help="decompose a vector into SAE features (decoder cosine vs chance, attribution, contexts)")
    parser.add_argument("vector", type=Path, help="vector artifact (LayerVectors .safetensors)")
    parser.add_argument("--sae", default="shipped",
                        help="'shipped', an SAE folder (cfg.json + safetensors), or RELEASE/SAE_ID from sae-lens")
    parser.add_argument("--out", type=Path, required=True, help="output folder (summary.json, report.html)")
    parser.add_argument("--layer", type=int, default=None, help="vector row to decompose (default: the SAE's layer)")
    parser.add_argument("--k", type=int, default=20, help="top features per sign")
    parser.add_argument("--model", default=None, help="model for attribution and contexts (default: the SAE's pair)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus JSONL for contexts (default: shipped)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from sae_analysis.pipeline import run_decompose

    summary = run_decompose(args.vector, args.sae, args.out, args.layer, args.k, args.model, args.corpus)
    d = summary["decomposition"]
    print(json.dumps({"sae": summary["sae"], "layer": summary["layer"], "max_abs_cos": d["max_abs_cos"],
                      "chance_p99": d["baseline"]["p99_max_abs_cos"], "beats_chance": d["beats_chance_p99"],
                      "out": str(args.out)}, indent=2))
    return 0
