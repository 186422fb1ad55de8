"""The layers of ARCHITECTURE.md are checked, not just drawn: `lint-imports` must keep every
contract in pyproject.toml, and the core layer of the contract must name every core module (a new
module of workbench/ that nobody placed would otherwise escape the check)."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = {"__main__", "cli", "commands", "benchmark", "demo"}


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_lint_imports_keeps_every_contract():
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{len(_contracts())} kept, 0 broken" in result.stdout


def test_core_layer_names_every_core_module():
    layers = next(c for c in _contracts() if c["name"].startswith("application"))["layers"]
    core = {name.strip().removeprefix("workbench.") for name in layers[-1].split(":")}
    on_disk = {p.stem if p.is_file() else p.name for p in (ROOT / "workbench").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert core == on_disk - APPLICATION, f"place these in a layer: {sorted(on_disk - APPLICATION - core)}"
    assert not core & APPLICATION


PACKAGES = ("workbench", "vectors", "vectors.axis", "vectors.traits", "vectors.drift", "sae_analysis")


def test_every_public_name_resolves():
    import importlib

    for name in PACKAGES:
        package = importlib.import_module(name)
        assert package.__all__, name
        missing = [attr for attr in package.__all__ if getattr(package, attr, None) is None]
        assert not missing, f"{name}.__all__ names what it does not define: {missing}"
        assert set(package.__all__) <= set(dir(package))


def test_importing_the_packages_and_the_cli_stays_light():
    """`workbench --help` imports the packages: none of them may pull in torch until a name is used."""
    code = ("import sys, workbench, vectors, vectors.axis, vectors.traits, vectors.drift, sae_analysis, workbench.cli; "
            "workbench.cli.build_parser(); heavy = {'torch', 'plotly', 'transformer_lens'} & set(sys.modules); "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
