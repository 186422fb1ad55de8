"""Every notebook in notebooks/ runs top to bottom on the shipped model (committed without outputs)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]

EXPECTED_OUTPUT = {
    "01_persona_space": ["PC1 explains", "held-out AUC at layer 18", "open offline:", "axis cosine",
                         "LayerVectors(assistant_axis"],
    "02_drift_and_capping": ["per-turn means:", "open offline:", "steered -4:"],
    "03_contrastive_traits": ["instruction pair 0:", "cos(response, prompt_last) at layer 12:", "trait metric: default"],
    "04_trait_steering": ["mean activation norm at layer 12:", "slope", "figure written: True"],
    "05_sae_decomposition": ["held-out explained variance", "beats chance:", "more active on default answers",
                             "blocks.22.hook_resid_post 4608 131072", "clamp 0.0:"],
    "06_finetuning_shift": ["pairs:", "fine-tune 100%: shift at layer 26", "preventative steer 1", "r(shift, trait):", "ΔP per set:"],
}


def test_every_notebook_is_covered():
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_notebook_runs(name):
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    missing = [text for text in EXPECTED_OUTPUT[name] if text not in printed]
    assert not missing, (missing, printed[-2000:])
