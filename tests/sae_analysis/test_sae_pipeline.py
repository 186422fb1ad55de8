"""``workbench decompose`` / ``compare-steering`` runs: files written, chance verdict recorded, a
vector at a layer without an SAE fails naming the layers that have one, in-memory vectors decompose
without touching the disk, and any file the one loader reads (a persona_vectors ``.pt``) decomposes."""

import json

import pytest
import torch

from sae_analysis.pipeline import decompose_vector, vector_for_sae
from sae_analysis.report import decomposition_report
from sae_analysis.saes import load_sae, resolve
from workbench.artifacts import LayerVectors, load_vectors
from workbench.cli import main
from workbench.commands.decompose import run_decompose
from workbench.errors import ShapeError

SUMMARY_KEYS = ["vector", "vector_metadata", "layer", "sae", "sae_notes", "base_model_sae", "decomposition"]


@pytest.fixture(scope="module")
def planted_rows():
    """30 layers whose layer-18 row is a shipped-SAE feature plus a little noise."""
    W = load_sae("shipped").W_dec.detach()
    vectors = torch.randn(30, 576, generator=torch.Generator().manual_seed(0)) * 0.01
    vectors[18] = 4 * W[42] / W[42].norm() + 0.02 * torch.randn(576, generator=torch.Generator().manual_seed(1))
    return vectors


@pytest.fixture(scope="module")
def planted_vector(planted_rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("vec") / "planted.safetensors"
    LayerVectors(planted_rows, {"method": "planted", "model": "smollm2-135m-instruct"}).save(path)
    return path


def test_decompose_run_writes_summary_and_report(model, planted_vector, tmp_path):
    summary = run_decompose(planted_vector, "shipped", tmp_path, corpus_limit=24, model=model)
    d = summary["decomposition"]
    assert d["top_positive"][0]["index"] == 42 and d["beats_chance_p99"]
    assert len(d["reconstruction"]) == 50 and d["reconstruction"][0] > 0.9
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert list(saved) == SUMMARY_KEYS + ["encoder_attribution", "contexts", "dashboards"]
    assert saved["layer"] == 18 and "42" in saved["contexts"] and saved["vector_metadata"]["method"] == "planted"
    page = (tmp_path / "report.html").read_text()
    assert "CircuitsVis" in page and page.count("Plotly.newPlot") >= 1
    assert "42" in saved["dashboards"]["features"] and 'href="dashboards.html#feature-42"' in page
    assert (tmp_path / "dashboards.html").is_file()


def test_in_memory_vector_decomposes_without_a_model(planted_rows):
    spec = resolve("shipped")
    vector, layer = vector_for_sae(LayerVectors(planted_rows), spec)
    result = decompose_vector(vector, layer, load_sae(spec), spec)
    assert layer == 18 and result.corpus is None and result.decomposition.top_positive[0].index == 42
    assert list(result.to_summary()) == SUMMARY_KEYS[2:]
    page = decomposition_report(result, "planted").render()
    assert "Decoder cosine: top features" in page and "Max-activating contexts" not in page


def test_persona_vectors_pt_decomposes_at_the_converted_row(model, planted_rows, tmp_path):
    """A persona_vectors file's row 19 is hidden_states[19] = our layer 18: the planted feature."""
    torch.save(torch.cat([torch.ones(1, 576), planted_rows]), tmp_path / "planted_response_avg_diff.pt")
    summary = run_decompose(tmp_path / "planted_response_avg_diff.pt", "shipped", tmp_path / "run", corpus_limit=8,
                            model=model)
    assert summary["decomposition"]["top_positive"][0]["index"] == 42
    assert summary["vector_metadata"]["method"] == "imported persona_vectors .pt"


def test_vector_of_another_model_names_both_shapes(model, tmp_path):
    path = LayerVectors(torch.randn(30, 2560)).save(tmp_path / "other.safetensors")
    with pytest.raises(ShapeError, match="d_model 2560 but the model has 576"):
        run_decompose(path, "shipped", tmp_path / "run", model=model)
    assert load_vectors(path).d_model == 2560  # without the model's shape the file itself is fine


def test_layer_without_sae_fails_naming_layers(planted_vector, tmp_path, capsys):
    code = main(["decompose", str(planted_vector), "--sae",
                 "gemma-scope-27b-pt-res-canonical/layer_22/width_131k/canonical", "--layer", "18", "--out", str(tmp_path)])
    assert code == 2
    assert "layers [10, 22, 34]" in capsys.readouterr().err


def test_shared_corpus_activations_equal_a_fresh_pass_and_mismatches_fail(model, planted_rows):
    """The demo reads the corpus once for every vector: handing those activations in gives the same
    decomposition as the function's own pass; activations of other rows fail naming the mismatch."""
    from sae_analysis.contexts import token_activations
    from sae_analysis.pipeline import corpus_rows

    spec = resolve("shipped")
    sae = load_sae(spec)
    vector, layer = vector_for_sae(LayerVectors(planted_rows), spec)
    rows = corpus_rows(model, limit=8)
    acts = token_activations(model, rows, layer)
    own = decompose_vector(vector, layer, sae, spec, model, rows, dashboards=0).to_summary()
    shared = decompose_vector(vector, layer, sae, spec, model, rows, dashboards=0, acts=acts).to_summary()
    for key in ("encoder_attribution", "contexts"):  # the corpus-read parts (the chance baseline draws anew)
        assert shared[key] == own[key], key
    with pytest.raises(ShapeError, match="8 corpus rows"):
        decompose_vector(vector, layer, sae, spec, model, rows, dashboards=0, acts=acts[:7])
