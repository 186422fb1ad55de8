"""A tiny random Gemma-2-shaped model and a tokenizer with Gemma 2's real chat template.

Exercises the Gemma code path (no system role, ``<start_of_turn>model``, soft caps, local/global
attention) without the 27B weights. The config is TransformerLens' own gemma-2-27b-it config,
shrunk; the HF model is a random ``Gemma2ForCausalLM`` converted by the workbench's loader.
"""

from __future__ import annotations

import torch

from workbench.benchmark.random_model import gemma2_tokenizer, hf_gemma2_config, tiny_gemma2_config  # noqa: F401 (re-exported)


def tiny_gemma2_hf(tokenizer, seed: int = 0):
    """A random float32 Gemma2ForCausalLM of the same shape as :func:`tiny_gemma2_config`."""
    from transformers import Gemma2ForCausalLM

    torch.manual_seed(seed)
    model = Gemma2ForCausalLM(hf_gemma2_config(tiny_gemma2_config(len(tokenizer)), tokenizer)).eval()
    for param in model.parameters():  # random norms, so the (1 + w) RMSNorm path is exercised
        if param.ndim == 1:
            param.data.normal_(0, 0.1)
    return model
