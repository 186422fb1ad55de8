"""``workbench decompose`` / ``compare-steering`` runs: files written, chance verdict recorded, and a
vector at a layer without an SAE fails naming the layers that have one."""

import json

import pytest
import torch

from sae_analysis.pipeline import run_decompose
from sae_analysis.saes import load_sae
from workbench.artifacts import LayerVectors
from workbench.cli import main


@pytest.fixture(scope="module")
def planted_vector(tmp_path_factory):
    """A 30-layer vector whose layer-18 row is a shipped-SAE feature plus a little noise."""
    W = load_sae("shipped").W_dec.detach()
    vectors = torch.randn(30, 576, generator=torch.Generator().manual_seed(0)) * 0.01
    vectors[18] = 4 * W[42] / W[42].norm() + 0.02 * torch.randn(576, generator=torch.Generator().manual_seed(1))
    path = tmp_path_factory.mktemp("vec") / "planted.safetensors"
    LayerVectors(vectors, {"method": "planted", "model": "smollm2-135m-instruct"}).save(path)
    return path


def test_decompose_run_writes_summary_and_report(model, planted_vector, tmp_path):
    summary = run_decompose(planted_vector, "shipped", tmp_path, corpus_limit=24)
    d = summary["decomposition"]
    assert d["top_positive"][0]["index"] == 42 and d["beats_chance_p99"]
    assert len(d["reconstruction"]) == 50 and d["reconstruction"][0] > 0.9
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["layer"] == 18 and "42" in saved["contexts"]
    page = (tmp_path / "report.html").read_text()
    assert "CircuitsVis" in page and page.count("Plotly.newPlot") >= 1


def test_layer_without_sae_fails_naming_layers(planted_vector, tmp_path, capsys):
    code = main(["decompose", str(planted_vector), "--sae",
                 "gemma-scope-27b-pt-res-canonical/layer_22/width_131k/canonical", "--layer", "18", "--out", str(tmp_path)])
    assert code == 2
    assert "layers [10, 22, 34]" in capsys.readouterr().err
