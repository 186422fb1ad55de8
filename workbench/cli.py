"""``workbench`` console script: one sub-command per module in :mod:`workbench.commands`.

Each command module defines ``register(subparsers)`` (adding its parser, with ``func`` set to its
runner) and keeps heavy imports (torch, models) inside the runner so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from workbench.errors import WorkbenchError

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
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
