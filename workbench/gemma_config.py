"""TransformerLens config of an in-memory Gemma model (Gemma 1, 2, 3), matched by shape.

Why: TransformerLens 3.9 writes Gemma configs by hand, keyed by the official hub name
(``google/gemma-3-270m``...), and has no branch that reads a Gemma ``config.json``. A Gemma
loaded from a GGUF file or a local folder has no such name, so we find the official TransformerLens
model whose shapes (layers, width, heads, head size, MLP size, key/value heads, vocabulary) equal the
Hugging Face config's, take TransformerLens' own config for it (built offline from its tables), and
check the settings that differ between sizes (window, rotary bases, soft caps) against the config too.
"""

from __future__ import annotations

import functools

from transformer_lens import HookedTransformerConfig

from workbench.errors import ModelUnavailableError

# Hugging Face model_type -> the prefix of TransformerLens' official names of that family.
_FAMILIES = {"gemma": "google/gemma-", "gemma2": "google/gemma-2-", "gemma3_text": "google/gemma-3-"}


def is_gemma(hf_config) -> bool:
    return getattr(hf_config, "model_type", None) in _FAMILIES


def _shape(cfg: HookedTransformerConfig) -> tuple:
    return (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.n_key_value_heads or cfg.n_heads)


def _hf_shape(hf_config) -> tuple:
    return (hf_config.num_hidden_layers, hf_config.hidden_size, hf_config.num_attention_heads,
            hf_config.head_dim, hf_config.intermediate_size,
            hf_config.num_key_value_heads or hf_config.num_attention_heads)


@functools.cache
def _official_configs(prefix: str) -> tuple[tuple[str, HookedTransformerConfig], ...]:
    from transformer_lens.loading_from_pretrained import OFFICIAL_MODEL_NAMES, get_pretrained_model_config

    out = []
    for name in OFFICIAL_MODEL_NAMES:
        later = prefix == "google/gemma-" and name.startswith(("google/gemma-2-", "google/gemma-3-"))
        if name.startswith(prefix) and not later:
            out.append((name, get_pretrained_model_config(name)))  # name-keyed tables: no download
    return tuple(out)


def gemma_hooked_config(hf_config, architecture: str) -> HookedTransformerConfig:
    """TransformerLens' config for the official Gemma of this shape, with this config's vocabulary.

    Raises ModelUnavailableError naming the shape when TransformerLens knows no Gemma like it, or
    naming the setting when one differs from TransformerLens' table (e.g. a modified window).
    """
    import dataclasses

    prefix = _FAMILIES[hf_config.model_type]
    shape = _hf_shape(hf_config)
    match = next(((n, c) for n, c in _official_configs(prefix) if _shape(c) == shape), None)
    if match is None:
        raise ModelUnavailableError(
            f"{architecture}: TransformerLens 3.9 has no official {prefix}* model of shape "
            f"(layers, d_model, heads, d_head, d_mlp, kv heads) = {shape}; it cannot be hooked"
        )
    name, cfg = match
    checks = {"window_size": getattr(hf_config, "sliding_window", None),
              "attn_scores_soft_cap": getattr(hf_config, "attn_logit_softcapping", None),
              "output_logits_soft_cap": getattr(hf_config, "final_logit_softcapping", None)}
    for field, value in checks.items():
        ours = getattr(cfg, field, None)
        if value is not None and ours is not None and ours > 0 and float(ours) != float(value):
            raise ModelUnavailableError(
                f"{architecture}: {field} is {value} in this model's config but {ours} in TransformerLens' "
                f"{name} config; it cannot be hooked faithfully"
            )
    return dataclasses.replace(
        cfg, d_vocab=hf_config.vocab_size, d_vocab_out=hf_config.vocab_size, original_architecture=architecture,
        model_name=name.split("/")[-1],
    )
