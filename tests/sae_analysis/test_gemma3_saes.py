"""Gemma 3 27B-it as the second reference model: its card, Gemma Scope 2 (instruction-tuned) SAE
specs resolved offline, every spec naming its family and tuning, decomposition on a random
dictionary of the 27B-it shape, and ``workbench decompose`` explaining how to fetch the weights."""

import types

import pytest
import torch

from sae_analysis.pipeline import decompose_vector
from sae_analysis.report import decomposition_report
from sae_analysis.saes import default_model_name, known_saes, layers_in_release, load_sae, resolve, sae_layer
from workbench.cli import main
from workbench.errors import InputFormatError, LayerError, ModelUnavailableError
from workbench.models import KNOWN_MODELS

GS2_31 = "gemma-scope-2-27b-it-res/layer_31_width_16k_l0_medium"


def test_gemma3_27b_it_card():
    card = KNOWN_MODELS["google/gemma-3-27b-it"]
    assert (card.n_layers, card.d_model, card.default_layer) == (62, 5376, 31)
    assert card.default_layer in layers_in_release("gemma-scope-2-27b-it-res")


def test_gemma_scope_2_27b_it_resolves_offline():
    spec = resolve(GS2_31)
    assert (spec.release, spec.sae_id, spec.repo_id) == (
        "gemma-scope-2-27b-it-res", "layer_31_width_16k_l0_medium", "google/gemma-scope-2-27b-it")
    assert (spec.hook_name, spec.layer, spec.d_in, spec.d_sae) == ("blocks.31.hook_resid_post", 31, 5376, 16384)
    assert spec.folder == "resid_post/layer_31_width_16k_l0_medium" and spec.trained_on == "google/gemma-3-27b-it"
    assert spec.neuronpedia_id == "gemma-3-27b-it/31-gemmascope-2-res-16k"
    assert spec.family == "Gemma Scope 2 (Gemma 3)" and not spec.is_base_model_sae
    assert "tuning matches the -it model" in spec.notes()
    assert spec.weights_file == "resid_post/layer_31_width_16k_l0_medium/params.safetensors"
    assert default_model_name(spec) == "google/gemma-3-27b-it"
    assert sorted(layers_in_release("gemma-scope-2-27b-it-res")) == [16, 31, 40, 53]
    assert resolve("gemma-scope-2-27b-it-res-all/layer_0_width_262k_l0_big").d_sae == 262144
    assert resolve("gemma-scope-2-27b-it-res/layer_53_width_1m_l0_medium").d_sae == 1048576


@pytest.mark.parametrize("size", ["270m", "1b", "4b", "12b", "27b"])
def test_gemma_scope_2_d_in_is_the_model_width(size):
    """d_in from our table equals TransformerLens' config of the model the registry names."""
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    release = f"gemma-scope-2-{size}-it-res"
    layer, ids = next(iter(layers_in_release(release).items()))
    spec = resolve(f"{release}/{ids[0]}")
    assert spec.d_in == get_pretrained_model_config(spec.trained_on).d_model


def test_base_and_tuned_families_are_told_apart():
    base = resolve("gemma-scope-2-27b-pt-res/layer_31_width_16k_l0_medium")
    assert base.is_base_model_sae and "tuning mismatch" in base.notes()
    old = resolve("gemma-scope-27b-pt-res-canonical/layer_22/width_131k/canonical")
    assert old.family == "GemmaScope (Gemma 2)" and "tuning mismatch" in old.notes()
    assert resolve("shipped").family.startswith("shipped")
    with pytest.raises(InputFormatError, match="resid_post SAEs offline"):
        resolve("gemma-scope-2-27b-it-mlp/layer_16_width_16k_l0_medium")
    with pytest.raises(LayerError, match=r"layers \[16, 31, 40, 53\]"):
        sae_layer(resolve(GS2_31), 22)


def test_known_saes_list_gemma_scope_2():
    listed = {s["id"]: s for s in known_saes()}
    assert GS2_31.replace("16k", "262k") in listed
    assert "Gemma Scope 2" in listed[GS2_31.replace("16k", "262k")]["notes"]


def test_decomposition_on_a_random_dictionary_of_the_27b_it_shape():
    spec = resolve(GS2_31)
    W = torch.randn(spec.d_sae, spec.d_in, generator=torch.Generator().manual_seed(7))  # not the chance seed
    noise = torch.randn(spec.d_in, generator=torch.Generator().manual_seed(1))
    vector = 3 * W[1234] / W[1234].norm() + 0.05 * noise / noise.norm()
    result = decompose_vector(vector, 31, types.SimpleNamespace(W_dec=W), spec)
    d = result.decomposition
    assert d.top_positive[0].index == 1234 and d.max_abs_cos > d.baseline.p99_max_abs_cos
    assert d.baseline.p99_max_abs_cos < 0.1  # chance in 5376 dimensions is small
    summary = result.to_summary()
    assert summary["sae"] == GS2_31 and not summary["base_model_sae"] and "Gemma Scope 2" in summary["sae_notes"]
    assert "tuning matches the -it model" in decomposition_report(result, "planted").render()


def test_decompose_command_resolves_gemma_scope_2_offline_and_says_how_to_fetch(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    from workbench.artifacts import LayerVectors

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="huggingface-cli download google/gemma-scope-2-27b-it "
                       r"--include 'resid_post/layer_31_width_16k_l0_medium/\*'"):
        load_sae(GS2_31)
    path = tmp_path / "axis.safetensors"
    LayerVectors(torch.randn(62, 5376), {"model": "google/gemma-3-27b-it"}).save(path)
    code = main(["decompose", str(path), "--sae", GS2_31, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "google/gemma-scope-2-27b-it" in err and "resid_post/layer_31_width_16k_l0_medium" in err
