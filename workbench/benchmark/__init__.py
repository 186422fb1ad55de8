"""Benchmarks: extraction and interventions measured against the bare forward pass and plain generation.

``workbench bench`` runs them; :func:`run_benchmark` is the entry point, :class:`BenchConfig` the sizes.
See BENCHMARKS.md for the figures, how to reproduce them and what limits each one.
"""

from workbench.benchmark.run import BenchConfig, run_benchmark

__all__ = ["BenchConfig", "run_benchmark"]
