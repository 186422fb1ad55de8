from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, expected", [
    ("03_contrastive_traits", ["instruction pair 0:", "cos(response, prompt_last) at layer 12:", "trait metric: default"]),
    ("04_trait_steering", ["mean activation norm at layer 12:", "slope", "figure written: True"]),
])
def test_trait_notebooks_run(name, expected):
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert all(text in printed for text in expected), printed[-2000:]
