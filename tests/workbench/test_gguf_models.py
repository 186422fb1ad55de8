"""``--model path.gguf`` / a folder holding one GGUF: loaded through transformers' GGUF loader and
cached dequantized; an architecture the workbench cannot hook fails naming it, before any slow work."""

import pytest
import torch

from workbench.errors import InputFormatError, ModelUnavailableError
from workbench.gguf_models import GGUF_ARCHITECTURES, dequantized_dir, gguf_source, is_gguf_path
from workbench.models import is_available_offline, load_model, smollm2_gguf_path


def test_folder_holding_the_shipped_gguf_loads_like_the_shipped_model(model):
    folder = smollm2_gguf_path().parent
    assert is_gguf_path(folder) and is_available_offline(str(folder))
    source = gguf_source(folder)
    assert source.architecture == "llama" and source.hf_architecture == "LlamaForCausalLM"
    loaded = load_model(str(folder))
    assert (dequantized_dir(source.sha256) / "source.json").is_file()
    assert loaded.cfg.model_name == "SmolLM2-135M-Instruct.Q4_1"
    tokens = torch.tensor([[1, 504, 3458, 282, 4649, 314]])
    with torch.inference_mode():
        assert torch.allclose(loaded(tokens), model(tokens), atol=1e-5)


def _gguf(path, architecture):
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), architecture)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_unsupported_architecture_is_named(tmp_path):
    path = _gguf(tmp_path / "tiny.gguf", "bloom")
    with pytest.raises(ModelUnavailableError, match=r"architecture 'bloom' is not supported.*gemma3"):
        load_model(str(path))
    assert "bloom" not in GGUF_ARCHITECTURES


def test_bad_gguf_paths_are_named(tmp_path):
    _gguf(tmp_path / "a.gguf", "llama")
    _gguf(tmp_path / "b.gguf", "llama")
    with pytest.raises(InputFormatError, match="exactly one .gguf file, found 2"):
        load_model(str(tmp_path))
    with pytest.raises(InputFormatError, match="no such GGUF file"):
        load_model(str(tmp_path / "missing.gguf"))
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf")
    with pytest.raises(InputFormatError, match="junk.gguf: not a readable GGUF"):
        gguf_source(tmp_path / "junk.gguf")
