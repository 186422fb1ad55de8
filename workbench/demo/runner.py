"""The demo runner: stages in order over one :class:`RunContext`, then one report and one summary.

Each stage computes with the library (``vectors``, ``sae_analysis``), adds its sections to the
shared report and returns its summary fragment. What a later stage needs from an earlier one (the
loaded model, the Assistant Axis, the trait vectors) travels in the context, in memory: stages
still save their artifacts under ``DIR/artifacts`` (they are a product of the run), but no stage
reads another's artifacts back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from tqdm.auto import tqdm

from workbench.artifacts import LayerVectors
from workbench.errors import WorkbenchError
from workbench.models import SHIPPED_MODEL
from workbench.report import Report, write_run


@dataclass
class RunContext:
    """What the stages of one demo run share: the model, the output folder, the report being built,
    the size (``quick``), and the vectors earlier stages computed."""

    model: Any
    out: Path
    report: Report
    quick: bool = False
    axis: LayerVectors | None = None
    trait_vectors: dict[str, LayerVectors] = field(default_factory=dict)

    def require_axis(self, stage: str) -> LayerVectors:
        """The Assistant Axis an earlier stage put here; a clear error when no stage did."""
        if self.axis is None:
            raise WorkbenchError(f"demo stage '{stage}' needs the Assistant Axis: run the axis stage before it")
        return self.axis


class Stage(Protocol):
    """One step of the demo: a title (its progress label and ``stage_seconds`` key) and a ``run``
    that computes, adds report sections, may put vectors into the context, and returns the
    fragment merged into ``summary.json``."""

    title: str

    def run(self, context: RunContext) -> dict[str, Any]: ...


def default_stages() -> list[Stage]:
    """The study in order: persona space and the axis, drift and capping, trait vectors, SAE."""
    from workbench.demo.axis import AxisStage
    from workbench.demo.drift import DriftStage
    from workbench.demo.sae import SaeStage
    from workbench.demo.traits import TraitStage

    return [AxisStage(), DriftStage(), TraitStage(), SaeStage()]


def run_demo(model, out: Path, quick: bool = False, stages: Sequence[Stage] | None = None) -> dict[str, Any]:
    """Run ``stages`` (default: :func:`default_stages`) into ``out``; writes ``report.html`` and
    ``summary.json`` and returns the summary."""
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report("persona-workbench demo: SmolLM2-135M-Instruct, offline")
    report.section("About this run").text(
        "Every figure on this page was computed by `workbench demo` on the shipped SmolLM2-135M-Instruct "
        "(30 layers, d_model 576) and the project's SAE, on the CPU with no network. A 135M model "
        "follows some persona prompts and not others; weak results are reported as measured."
        + (" This is a --quick smoke run: every stage at a tiny size, figures not meaningful." if quick else "")
    )
    context = RunContext(model, out, report, quick)
    summary: dict[str, Any] = {"model": SHIPPED_MODEL, "quick": quick, "stage_seconds": {}}
    for stage in tqdm(default_stages() if stages is None else stages, desc="demo stages", unit="stage"):
        stage_started = time.time()
        summary.update(stage.run(context))
        summary["stage_seconds"][stage.title] = round(time.time() - stage_started, 1)
    summary["seconds"] = round(time.time() - started, 1)
    return write_run(out, summary, report)
