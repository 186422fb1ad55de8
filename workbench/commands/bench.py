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
                        help="run only these figures: extraction generation decomposition dashboards projection memory")
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
    result = run_benchmark(config, out=args.out)
    print(markdown(result))
    print(f"\nwrote {args.out}")
    return 0
