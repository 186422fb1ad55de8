"""``workbench steer --vector V --layer L --coef C ... PROMPT ...``: steered generation and sweeps.

Adds ``C × V[L]`` (raw vector) at each ``--layer``, for every ``--coef`` (a sweep), and prints the
outputs side by side; ``--out DIR`` also writes ``DIR/steer.html`` and ``DIR/steer.json`` and
caches generations under ``DIR/cache``. With the Assistant Axis, negative coefficients push the
model away from the Assistant.
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("steer", help="generate with a vector added (coefficient sweeps)")
    parser.add_argument("prompts", nargs="+", metavar="PROMPT", help="user message(s)")
    parser.add_argument("--vector", type=Path, required=True, help="vector file (LayerVectors .safetensors, persona_vectors or assistant-axis .pt)")
    parser.add_argument("--layer", type=int, nargs="+", required=True, help="layer(s) to steer at")
    parser.add_argument("--coef", type=float, nargs="+", required=True, help="coefficient(s); several = a sweep")
    parser.add_argument("--system", help="system prompt (default: none)")
    parser.add_argument("--where", choices=["all", "prompt", "response"], default="all",
                        help="positions to steer (default: all)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=Path("runs/steer"), help="output folder (cache, steer.html)")
    parser.add_argument("--model", help="model name, HF id or local folder (default: the shipped SmolLM2-135M-Instruct)")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.cache import JsonlCache
    from workbench.commands.vector_input import load_model_and_vectors
    from workbench.generate import Sampling
    from workbench.report import Report, write_run

    from vectors.drift.report import add_sweep_section
    from vectors.drift.steering import steer_sweep

    model, vectors = load_model_and_vectors(args.vector, args.model, args.device)
    rows = steer_sweep(model, vectors, args.prompts, args.layer, args.coef, JsonlCache(args.out / "cache" / "steer.jsonl"),
                       Sampling(args.max_new_tokens, args.temperature), system=args.system, where=args.where)
    for row in rows:
        print(f"[coef {row['coefficient']:+g}, layers {row['layers']}] {row['prompt']}\n  → {row['response']}\n")
    report = Report(f"Steering with {args.vector.name}")
    add_sweep_section(report.section("Steering sweep"), rows)
    write_run(args.out, rows, report, summary_name="steer.json", report_name="steer.html")
    return 0
