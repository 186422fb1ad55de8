"""``workbench demo``: the whole study on the shipped model, offline, in one command.

Stages, each with its own progress bars and caches under ``--out`` (a re-run reuses them):
persona space and the Assistant Axis; per-token drift of a shipped drifting conversation replayed
with and without capping; trait vectors (sycophantic, evil, pirate) with steering sweeps and their
random-direction bands; SAE decomposition of the axis and trait vectors with chance baselines;
feature-level against whole-vector steering. Writes ``report.html`` (one offline page),
``summary.json`` (every headline figure) and ``artifacts/`` (vectors, axis, capping config).

This module only parses; the runner and its stages are :mod:`workbench.demo`.
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole study on the shipped offline model: one report.html + summary.json"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true",
                        help="every stage and report section at a tiny size (a smoke run, about 3 minutes)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.demo import run_demo
    from workbench.models import SHIPPED_MODEL, load_model

    summary = run_demo(load_model(SHIPPED_MODEL), args.out, args.quick)
    print(f"wrote {args.out / 'report.html'} and {args.out / 'summary.json'} in {summary['seconds']} s")
    return 0
