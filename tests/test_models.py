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


def test_shipped_model_shape(model):
    assert (model.cfg.n_layers, model.cfg.d_model) == (30, 576)
    assert model.cfg.model_name == "smollm2-135m-instruct"


def test_unknown_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="not in the local Hugging Face cache"):
        load_model("google/gemma-2-27b-it")
