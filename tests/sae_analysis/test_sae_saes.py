"""SAE resolution offline (GemmaScope through sae-lens' registry) and the shipped SAE, loaded for real."""

import pytest

from sae_analysis.saes import check_layer, known_saes, layers_in_release, load_sae, resolve
from workbench.errors import InputFormatError, LayerError, ModelUnavailableError

CANONICAL_22 = "gemma-scope-27b-pt-res-canonical/layer_22/width_131k/canonical"


def test_gemmascope_27b_canonical_resolves_offline():
    spec = resolve(CANONICAL_22)
    assert (spec.release, spec.sae_id) == ("gemma-scope-27b-pt-res-canonical", "layer_22/width_131k/canonical")
    assert spec.hook_name == "blocks.22.hook_resid_post" and spec.layer == 22
    assert (spec.d_in, spec.d_sae, spec.architecture) == (4608, 131072, "jumprelu")
    assert spec.folder == "layer_22/width_131k/average_l0_82"
    assert spec.trained_on == "gemma-2-27b" and spec.is_base_model_sae
    assert "base-model SAE" in spec.notes()
    assert spec.neuronpedia_url(123) == "https://www.neuronpedia.org/gemma-2-27b/22-gemmascope-res-131k/123"


@pytest.mark.parametrize("layer", [10, 22, 34])
def test_canonical_layers(layer):
    assert resolve(f"gemma-scope-27b-pt-res-canonical/layer_{layer}/width_131k/canonical").layer == layer


@pytest.mark.parametrize("l0", [20, 31, 48, 82, 150, 290])
def test_layer_22_l0_variants(l0):
    spec = resolve(f"gemma-scope-27b-pt-res/layer_22/width_131k/average_l0_{l0}")
    assert spec.folder == f"layer_22/width_131k/average_l0_{l0}" and spec.d_sae == 131072


@pytest.mark.parametrize("spec_id", [CANONICAL_22, "gemma-scope-9b-it-res-canonical/layer_20/width_131k/canonical",
                                     "gemma-scope-2b-pt-res-canonical/layer_12/width_65k/canonical"])
def test_matches_sae_lens_own_config(spec_id):
    """Our fast resolver agrees with sae-lens' gemma_2 config function (which also needs no network)."""
    from sae_lens.loading.pretrained_sae_loaders import get_gemma_2_config_from_hf
    from sae_lens.loading.pretrained_saes_directory import get_repo_id_and_folder_name

    spec = resolve(spec_id)
    repo_id, folder = get_repo_id_and_folder_name(spec.release, spec.sae_id)
    cfg = get_gemma_2_config_from_hf(repo_id, folder, device=None)
    assert (spec.repo_id, spec.folder) == (repo_id, folder)
    assert (spec.hook_name, spec.d_in, spec.d_sae) == (cfg["hook_name"], cfg["d_in"], cfg["d_sae"])


def test_layer_without_sae_names_the_layers_that_have_one():
    with pytest.raises(LayerError, match=r"layers \[10, 22, 34\]"):
        check_layer(resolve(CANONICAL_22), 20)
    assert sorted(layers_in_release("gemma-scope-27b-pt-res")) == [10, 22, 34]


def test_bad_specs_say_what_exists():
    with pytest.raises(InputFormatError, match="gemma-scope-27b-pt-res"):
        resolve("gemma-scope-27b-pt-rez/layer_22/width_131k/canonical")
    with pytest.raises(InputFormatError, match=r"layers \[10, 22, 34\]"):
        resolve("gemma-scope-27b-pt-res/layer_23/width_131k/average_l0_82")
    with pytest.raises(InputFormatError):
        resolve("no-such-spec")


def test_gemmascope_offline_fails_at_once_with_download_command(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="huggingface-cli download google/gemma-scope-27b-pt-res"):
        load_sae(CANONICAL_22)


def test_known_saes_lists_shipped_and_gemmascope():
    ids = [s["id"] for s in known_saes()]
    assert ids[0].startswith("shipped") and CANONICAL_22 in ids
    assert all("notes" in s for s in known_saes())
