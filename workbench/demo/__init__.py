"""The demo runner behind ``workbench demo``: a :class:`Stage` protocol, the :class:`RunContext`
that hands the model, the Assistant Axis and the trait vectors from stage to stage in memory, and
one module per stage (:mod:`~workbench.demo.axis`, :mod:`~workbench.demo.drift`,
:mod:`~workbench.demo.traits`, :mod:`~workbench.demo.sae`) holding its sizes and its code."""

from workbench.demo.runner import RunContext, Stage, default_stages, run_demo

__all__ = ["RunContext", "Stage", "default_stages", "run_demo"]
