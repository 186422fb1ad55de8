"""The Gemma 2 code path on a tiny random Gemma-2-config model and Gemma 2's real chat template."""

import pytest
import torch

from gemma_fixture import gemma2_tokenizer, tiny_gemma2_config, tiny_gemma2_hf
from workbench.chat import format_conversation, format_prompt, messages, supports_system_role
from workbench.models import hooked_from_hf


@pytest.fixture(scope="module")
def gemma():
    tokenizer = gemma2_tokenizer()
    hf_model = tiny_gemma2_hf(tokenizer)
    cfg = tiny_gemma2_config(len(tokenizer))
    return hf_model, hooked_from_hf(hf_model, tokenizer, cfg=cfg), tokenizer


def test_config_keeps_gemma_2_27b_settings(gemma):
    _, model, _ = gemma
    cfg = model.cfg
    assert cfg.original_architecture == "Gemma2ForCausalLM"
    assert cfg.use_normalization_before_and_after and cfg.gated_mlp
    assert (cfg.attn_scores_soft_cap, cfg.output_logits_soft_cap) == (50.0, 30.0)
    assert cfg.act_fn == "gelu_pytorch_tanh" and cfg.normalization_type == "RMS"


def test_hooked_gemma_matches_hf(gemma):
    hf_model, model, tokenizer = gemma
    chat = format_conversation(tokenizer, messages("Be a pirate.", "Hello there", "Arr, the sea is calm"))
    tokens = torch.tensor([chat.ids])
    with torch.inference_mode():
        diff = (model(tokens) - hf_model(tokens).logits).abs().max().item()
        hidden = hf_model(tokens, output_hidden_states=True).hidden_states
        _, cache = model.run_with_cache(tokens)
    assert diff < 1e-4
    assert torch.allclose(cache["blocks.2.hook_resid_post"], hidden[3], atol=1e-4)


def test_gemma_system_prompt_merges_into_first_user_turn(gemma):
    _, _, tokenizer = gemma
    assert not supports_system_role(tokenizer)
    text = tokenizer.decode(list(format_prompt(tokenizer, messages("Be a pirate.", "Hello there"))))
    assert text.startswith("<bos><start_of_turn>user\nBe a pirate.\n\nHello there<end_of_turn>")
    assert text.endswith("<start_of_turn>model\n")


def test_gemma_response_span_is_the_trimmed_reply(gemma):
    _, _, tokenizer = gemma
    conversation = messages(None, "Hello there", "  Arr, the sea is calm  ")
    conversation += [{"role": "user", "content": "how are you"}, {"role": "assistant", "content": "calm and blue"}]
    chat = format_conversation(tokenizer, conversation)
    replies = [tokenizer.decode(list(chat.ids[s:e])) for s, e in chat.assistant_spans]
    assert replies == ["Arr, the sea is calm", "calm and blue"]
    assert tokenizer.decode([chat.ids[chat.assistant_spans[0][1]]]) == "<end_of_turn>"


def test_response_loglik_applies_the_output_soft_cap(gemma):
    """response_loglik unembeds only the predicting positions; on Gemma 2 that tail must keep the
    final norm and the output logit soft-cap of the full forward pass."""
    from workbench.metrics import response_loglik

    _, hooked, tokenizer = gemma
    assert hooked.cfg.output_logits_soft_cap > 0
    conversation = messages(None, "Say something.", "Here is a short answer.")
    chat = format_conversation(tokenizer, conversation)
    start, end = chat.assistant_spans[-1]
    cap = hooked.cfg.output_logits_soft_cap
    hooked.cfg.output_logits_soft_cap = 0.5  # the tiny model's logits are small: a low cap makes it bite
    try:
        with torch.inference_mode():
            logp = hooked(torch.tensor([chat.ids]))[0].float().log_softmax(-1)
        manual = sum(float(logp[t - 1, chat.ids[t]]) for t in range(start, end))
        got = response_loglik(hooked, [conversation], progress=False).total[0].item()
    finally:
        hooked.cfg.output_logits_soft_cap = cap
    assert got == pytest.approx(manual, abs=1e-4)
