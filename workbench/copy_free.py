"""TransformerLens MLP and unembedding without a copy of their weights on every forward call.

TransformerLens 3.9's ``GatedMLP`` and ``Unembed`` multiply by ``W.T.contiguous()``: a fresh copy of
every MLP weight and of the whole unembedding at every forward call, so that bf16 results match
Hugging Face's ``nn.Linear`` bit for bit. In KV-cache decoding, where each step multiplies a
handful of tokens by every weight once, those copies were 57% of CPU time on the shipped model
(``torch.profiler``, batch 8: the 49152 × 576 unembedding copy alone 35%), and on a GPU they
double the weight traffic that bounds decoding speed.

``F.linear`` accepts the transposed *view* directly (BLAS reads it with a transpose flag), so the
subclasses below compute the same products without copying; fp32 results agree with Hugging Face
within 1e-4 (tested), bf16 ones to within bf16 rounding rather than bit for bit. Hook points are
the parent classes' own (``hook_pre``, ``hook_pre_linear``, ``hook_post``, ``hook_in``, ``hook_out``).
"""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.components import GatedMLP, Unembed


class CopyFreeGatedMLP(GatedMLP):
    """``GatedMLP.forward`` with the weights' transposed views instead of contiguous copies."""

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        if self.W_gate.device != x.device:
            x = x.to(self.W_gate.device)
        pre_act = self.hook_pre(F.linear(x, self.W_gate.T))
        if self.cfg.is_layer_norm_activation() and self.hook_mid is not None and self.ln is not None:
            mid_act = self.hook_mid(self.act_fn(pre_act))
            post_act = self.hook_post(self.ln(mid_act))
        else:
            pre_linear = self.hook_pre_linear(F.linear(x, self.W_in.T))
            post_act = self.hook_post(self.act_fn(pre_act) * pre_linear + self.b_in)
        return F.linear(post_act, self.W_out.T, self.b_out)


class CopyFreeUnembed(Unembed):
    """``Unembed.forward`` with ``W_U``'s transposed view instead of a contiguous copy."""

    def forward(self, residual: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab_out"]:
        residual = self.hook_in(residual)
        return self.hook_out(F.linear(residual, self.W_U.T, self.b_U))


def remove_weight_copies(model: HookedTransformer) -> HookedTransformer:
    """Switch the model's gated MLPs and unembedding to the copy-free forwards, in place.

    Only exact ``GatedMLP``/``Unembed`` instances change class (same parameters, same hooks);
    other MLP kinds (4-bit, MoE) are left as they are.
    """
    for block in model.blocks:
        if type(block.mlp) is GatedMLP:
            block.mlp.__class__ = CopyFreeGatedMLP
    if type(model.unembed) is Unembed:
        model.unembed.__class__ = CopyFreeUnembed
    return model
