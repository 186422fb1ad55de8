"""``workbench bench``: speed and memory of extraction and interventions vs their baselines (issue 5)."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark extraction, generation, decomposition, projection, memory")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the machinery in seconds")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure (min and median; ≥ 3; default 3)")
    parser.add_argument("--memory-repeats", type=int, default=None,
                        help="fresh processes per memory size (default 3; 512 responses dominate the run)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 avoids OpenMP stalls on an oversubscribed machine")
    parser.add_argument("--only", nargs="+", default=None, metavar="FIGURE",
                        help="run only these figures: extraction batch_scaling generation decomposition dashboards projection memory training")
    parser.add_argument("--random-weights", metavar="CONFIG",
                        help="no download: random bf16 weights of this config (gemma-2-27b-it, gemma-2-2b-it, "
                        "tiny-gemma-2); figures extraction, generation, decomposition")
    parser.add_argument("--device", default="cpu", help="device for --random-weights (e.g. cuda)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace

    from workbench.benchmark import BenchConfig, run_benchmark
    from workbench.benchmark.table import markdown
    from workbench.errors import InputFormatError

    if args.repeats is not None and args.repeats < 3:
        raise InputFormatError(f"--repeats must be at least 3 (min and median need them), got {args.repeats}")
    config = BenchConfig.quick() if args.quick else BenchConfig()
    config = replace(config, repeats=args.repeats or config.repeats, threads=args.threads,
                     memory_repeats=args.memory_repeats or config.memory_repeats,
                     figures=tuple(args.only) if args.only else config.figures)
    model = hf_model = None
    if args.random_weights:
        from workbench.benchmark.random_model import random_models
        from workbench.benchmark.run import RANDOM_WEIGHT_FIGURES

        model, hf_model = random_models(args.random_weights, args.device)
        config = replace(config, figures=tuple(f for f in config.figures if f in RANDOM_WEIGHT_FIGURES))
    result = run_benchmark(config, model=model, hf_model=hf_model, out=args.out)
    print(markdown(result))
    print(f"\nwrote {args.out}")
    return 0
