"""The demo's first stage: persona space and the Assistant Axis (:func:`vectors.axis.pipeline.run_axis`).

Sizes: 12 roles + 4 default prompts, 6 extraction + 3 held-out questions, 40 new tokens
(``--quick``: 6 roles, 2 + 1 questions, 12 tokens). Hands the axis to later stages in the context.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vectors.axis.pipeline import PAPER_SAMPLING, AxisConfig, run_axis
from vectors.axis.report import add_axis_sections

from workbench.demo.runner import RunContext

DEMO_CONFIG = AxisConfig(n_roles=12, n_extraction=6, n_heldout=3, sampling=replace(PAPER_SAMPLING, max_new_tokens=40))
# `workbench demo --quick` (the CI's end-to-end check of every stage): the same steps, tiny.
QUICK_DEMO_CONFIG = AxisConfig(n_roles=6, n_extraction=2, n_heldout=1, sampling=replace(PAPER_SAMPLING, max_new_tokens=12))


class AxisStage:
    title = "persona space and the Assistant Axis"

    def run(self, context: RunContext) -> dict[str, Any]:
        result = run_axis(context.model, QUICK_DEMO_CONFIG if context.quick else DEMO_CONFIG, context.out)
        add_axis_sections(context.report, result)
        context.axis = result.axis
        return {"assistant_axis": result.to_summary()}
