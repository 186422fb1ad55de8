"""Models with random weights of a real config, for benchmarks on a machine with no weights or network.

A GPU machine without network has no weights to load, and speed does not depend on the weights:
``workbench bench --random-weights gemma-2-27b-it --device cuda`` takes TransformerLens' own config
of the model (resolved offline), builds a Hugging Face ``Gemma2ForCausalLM`` of that shape with
random weights (the persona_vectors reference runs on it) and wraps the same weights as our hooked
model (:func:`workbench.models.hooked_from_hf`), so extraction and the reference read one network.
``tiny-gemma-2`` is the same config shrunk, for CPU tests. The tokenizer is a small byte-level BPE
built in-process with Gemma 2's real chat template (token ids stay below 300).
"""

from __future__ import annotations

import dataclasses

import torch

from workbench.errors import InputFormatError

RANDOM_MODELS = {"gemma-2-27b-it": "google/gemma-2-27b-it", "gemma-2-2b-it": "google/gemma-2-2b-it",
                 "tiny-gemma-2": "google/gemma-2-27b-it"}

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


def hooked_config(name: str, vocab: int | None = None):
    """TransformerLens' config of ``name`` (a key of :data:`RANDOM_MODELS`), resolved offline."""
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    if name not in RANDOM_MODELS:
        raise InputFormatError(f"--random-weights {name!r}: choose from {', '.join(RANDOM_MODELS)}")
    if name == "tiny-gemma-2":
        return tiny_gemma2_config(vocab or 300)
    return get_pretrained_model_config(RANDOM_MODELS[name])


def hf_gemma2_config(cfg, tokenizer):
    """The Hugging Face ``Gemma2Config`` of the same shape as the TransformerLens config ``cfg``."""
    from transformers import Gemma2Config

    return Gemma2Config(
        vocab_size=cfg.d_vocab, hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_key_value_heads, head_dim=cfg.d_head,
        query_pre_attn_scalar=round(cfg.attn_scale**2), sliding_window=cfg.window_size,
        max_position_embeddings=cfg.n_ctx, final_logit_softcapping=cfg.output_logits_soft_cap,
        attn_logit_softcapping=cfg.attn_scores_soft_cap, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        layer_types=["sliding_attention" if t == "local" else "full_attention" for t in cfg.attn_types],
        attn_implementation="eager",
    )


def random_models(name: str, device: str = "cpu", dtype: torch.dtype = torch.bfloat16, seed: int = 0):
    """(hooked model, Hugging Face model) sharing one set of random weights of ``name``'s shape."""
    from transformers import Gemma2ForCausalLM

    from workbench.models import hooked_from_hf

    tokenizer = gemma2_tokenizer()
    cfg = dataclasses.replace(hooked_config(name, len(tokenizer)), dtype=dtype, device=device)
    torch.manual_seed(seed)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            hf_model = Gemma2ForCausalLM(hf_gemma2_config(cfg, tokenizer)).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    for param in hf_model.parameters():  # random norms, so the (1 + w) RMSNorm path is exercised
        if param.ndim == 1:
            param.data.normal_(0, 0.1)
    model = hooked_from_hf(hf_model, tokenizer, cfg=cfg, device=device)
    model.cfg.model_name = f"random-weights:{name}"
    return model, hf_model
