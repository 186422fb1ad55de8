"""``workbench`` console script: one sub-command per module in :mod:`workbench.commands`.

Each command module defines ``register(subparsers)`` (adding its parser, with ``func`` set to its
runner) and keeps heavy imports (torch, models) inside the runner so ``--help`` stays instant.
Exit statuses: 0 complete, 2 error, 3 written with some figures unavailable (:mod:`workbench.unavailable`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from workbench.errors import WorkbenchError
from workbench.unavailable import EXIT_ERROR

COMMAND_MODULES = ["info", "demo", "axis", "axis_compare", "traits", "drift", "steer", "cap", "decompose", "compare_steering", "bench", "drift_study"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="persona-workbench: persona space, the Assistant Axis, trait vectors, "
        "SAE decomposition, drift views and interventions.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"workbench.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
