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


def test_unknown_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="not in the local Hugging Face cache"):
        load_model("google/gemma-2-27b-it")
