"""``workbench demo``: the whole study on the shipped model, offline, in one command.

Stages, each with its own progress bars and caches under ``--out`` (a re-run reuses them):
persona space and the Assistant Axis; per-token drift of a shipped drifting conversation replayed
with and without capping; trait vectors (sycophantic, evil, pirate) with steering sweeps and their
random-direction bands; SAE decomposition of the axis and trait vectors with chance baselines;
feature-level against whole-vector steering. Writes ``report.html`` (one offline page),
``summary.json`` (every headline figure) and ``artifacts/`` (vectors, axis, capping config).

This module only orders the stages; each pipeline owns its ``run_demo_stage``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

SHIPPED = "smollm2-135m-instruct"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole study on the shipped offline model: one report.html + summary.json"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true",
                        help="every stage and report section at a tiny size (a smoke run, about 3 minutes)")
    parser.set_defaults(func=run)


def _stages():
    """(title, runner(model, out, report, quick) -> summary fragment); imported lazily."""
    from vectors.axis.pipeline import run_demo_stage as axis_stage
    from vectors.drift.views import run_demo_stage as drift_stage
    from vectors.traits.pipeline import run_demo_stage as trait_stage
    from workbench.commands.demo_sae import run_demo_stage as sae_stage

    return [
        ("persona space and the Assistant Axis", axis_stage),
        ("per-token drift and activation capping",
         lambda m, o, r, quick: drift_stage(m, o, r, axis=_axis(m, o), quick=quick)),
        ("trait vectors", trait_stage),
        ("SAE decomposition and feature-level steering", sae_stage),
    ]


def _axis(model, out: Path):
    from workbench.artifacts import LayerVectors

    return LayerVectors.load(out / "artifacts" / "assistant_axis.safetensors", model.cfg.n_layers, model.cfg.d_model)


def run_demo(model, out: Path, quick: bool = False) -> dict:
    """Run every stage into ``out``; writes report.html and summary.json, returns the summary."""
    from tqdm.auto import tqdm

    from workbench.artifacts import atomic_write_text
    from workbench.report import Report

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    report = Report("persona-workbench demo: SmolLM2-135M-Instruct, offline")
    report.section("About this run").text(
        "Every figure on this page was computed by `workbench demo` on the shipped SmolLM2-135M-Instruct "
        "(30 layers, d_model 576) and the project's SAE, on the CPU with no network. A 135M model "
        "follows some persona prompts and not others; weak results are reported as measured."
        + (" This is a --quick smoke run: every stage at a tiny size, figures not meaningful." if quick else "")
    )
    summary: dict = {"model": SHIPPED, "quick": quick, "stage_seconds": {}}
    for title, stage in tqdm(_stages(), desc="demo stages", unit="stage"):
        stage_started = time.time()
        summary.update(stage(model, out, report, quick=quick))
        summary["stage_seconds"][title] = round(time.time() - stage_started, 1)
    summary["seconds"] = round(time.time() - started, 1)
    report.write(out / "report.html")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


def run(args) -> int:
    from workbench.models import load_model

    summary = run_demo(load_model(SHIPPED), args.out, args.quick)
    print(f"wrote {args.out / 'report.html'} and {args.out / 'summary.json'} in {summary['seconds']} s")
    return 0
