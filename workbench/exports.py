"""Public names of a package that load on first use, so importing the package stays instant.

Each package ``__init__`` (``workbench``, ``vectors`` and its subpackages, ``sae_analysis``) lists
its public names with the module that defines each; ``from vectors import run_axis`` then imports
``vectors.axis.pipeline`` (and torch) only at that moment. Why: the ``workbench`` console script
imports the ``workbench`` package, and ``workbench --help`` or ``workbench axis-compare`` must not
pay for torch, TransformerLens and plotly they do not use.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(
    package: str, exports: dict[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package`` from ``exports`` (module → names).

    A name is looked up in its module on first access and then kept on the package, so later
    accesses are plain attribute reads.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return list(where), __getattr__, __dir__
