"""A figure a run could not compute, and why; and the exit statuses that say whether any is missing.

Why: a run that has generated, judged and extracted for an hour must not end with one exception and
no files because one figure (say a held-out AUC with no role responses left) cannot be computed.
Pipelines put an :class:`Unavailable` in a result field instead of the figure; the summary records
``{"unavailable": reason}`` in its place and the report prints the reason as a line, and the command
exits with :data:`EXIT_PARTIAL` so a script can tell a complete run from a partial one.

Exit statuses of every ``workbench`` command:

- :data:`EXIT_OK` (0): the run wrote every figure;
- :data:`EXIT_ERROR` (2): bad input or a model that cannot load; an error line on stderr, nothing
  (or only resumable caches) written;
- :data:`EXIT_PARTIAL` (3): ``summary.json`` and the report were written, and at least one figure in
  them is marked unavailable with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_PARTIAL = 3


@dataclass(frozen=True)
class Unavailable:
    """Stands where a figure would be: ``reason`` says what was missing (counts, options in force)."""

    reason: str

    def to_summary(self) -> dict[str, str]:
        return {"unavailable": self.reason}

    def __str__(self) -> str:
        return f"unavailable: {self.reason}"


def by_reason(unavailable: Mapping[str, str]) -> dict[str, list[str]]:
    """``{figure: reason}`` regrouped as ``{reason: [figures]}``: one line per cause in a report."""
    grouped: dict[str, list[str]] = {}
    for figure, reason in unavailable.items():
        grouped.setdefault(reason, []).append(figure)
    return grouped
