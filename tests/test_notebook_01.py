from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_persona_space_notebook_runs():
    notebook = nbformat.read(ROOT / "notebooks" / "01_persona_space.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "PC1 explains" in printed and "held-out AUC at layer 18" in printed and "open offline:" in printed
    assert "axis cosine" in printed and "LayerVectors(assistant_axis" in printed
