"""A tiny random Gemma-2-shaped model and a tokenizer with Gemma 2's real chat template.

Exercises the Gemma code path (no system role, ``<start_of_turn>model``, soft caps, local/global
attention) without the 27B weights. The config is TransformerLens' own gemma-2-27b-it config,
shrunk; the HF model is a random ``Gemma2ForCausalLM`` converted by the workbench's loader.
"""

from __future__ import annotations

import dataclasses

import torch

# Gemma 2's chat template as published with google/gemma-2-27b-it.
GEMMA2_CHAT_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def gemma2_tokenizer():
    """A byte-level BPE tokenizer with Gemma's special tokens and chat template, built in-process."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = ["You are a pirate. Hello there, how are you today? Arr, the sea is calm and blue."] * 20
    backend.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        name_or_path="tiny-gemma-2", add_bos_token=True,
    )
    tokenizer.chat_template = GEMMA2_CHAT_TEMPLATE
    return tokenizer


def tiny_gemma2_config(vocab: int):
    """TransformerLens' gemma-2-27b-it config with the sizes shrunk (everything else kept)."""
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    full = get_pretrained_model_config("google/gemma-2-27b-it")
    return dataclasses.replace(
        full, d_model=64, d_head=16, n_heads=4, n_key_value_heads=2, d_mlp=128, n_layers=4,
        d_vocab=vocab, d_vocab_out=vocab, n_ctx=256, rotary_dim=16, window_size=8, attn_scale=4.0,
        attn_types=["local", "global"] * 2, device="cpu", dtype=torch.float32,
    )


def tiny_gemma2_hf(tokenizer, seed: int = 0):
    """A random Gemma2ForCausalLM of the same shape as :func:`tiny_gemma2_config`."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(seed)
    config = Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
        sliding_window=8, max_position_embeddings=256, final_logit_softcapping=30.0,
        attn_logit_softcapping=50.0, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        layer_types=["sliding_attention", "full_attention"] * 2, attn_implementation="eager",
    )
    model = Gemma2ForCausalLM(config).eval()
    for param in model.parameters():  # random norms, so the (1 + w) RMSNorm path is exercised
        if param.ndim == 1:
            param.data.normal_(0, 0.1)
    return model
