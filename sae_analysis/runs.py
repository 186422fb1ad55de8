"""Write one SAE run (``decompose``, ``compare-steering``, the demo's per-vector pages).

Through :func:`workbench.report.write_run` like every run: ``summary.json`` (the vector's file and
metadata, then the result's ``to_summary()``) and ``report.html``; a decomposition computed with
dashboards also gets its offline ``dashboards.html`` beside them, which ``report.html`` links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.artifacts import LayerVectors
from workbench.report import Report, write_run

from sae_analysis.dashboard_report import PAGE, dashboard_report
from sae_analysis.pipeline import SteeringComparison, VectorDecomposition, run_summary


def write_sae_run(
    out: str | Path, source: str | Path, vectors: LayerVectors, result: VectorDecomposition | SteeringComparison,
    report: Report,
) -> dict[str, Any]:
    """Write the run into ``out``; returns the summary written."""
    summary = write_run(out, run_summary(source, vectors, result), report)
    if getattr(result, "dashboards", None) is not None:
        dashboard_report(result.dashboards).write(Path(out) / PAGE)
    return summary
