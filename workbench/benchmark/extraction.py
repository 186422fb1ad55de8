"""Figures 1–2: extraction against the bare forward pass and against the persona_vectors reference.

All three run on the same inputs. The bare forward pass runs the whole conversations, batched as
:func:`~workbench.extract.extract_means` batches them (sorted by length, right-padded), with no hooks,
under ``inference_mode``, to the logits; extraction itself also stops after each conversation's last
selected token (the reply's end-of-turn tokens are never run). The reference is the persona_vectors repository's
``get_hidden_p_and_r`` reduced to response means: a Hugging Face model in fp32, one sequence at a
time, ``output_hidden_states=True``, no ``inference_mode``/``no_grad`` (so autograd records the
graph), every hidden state computed whichever layer is wanted. It runs on a subset of the
responses and is scaled per response (one-at-a-time cost is linear in the number of sequences).
"""

from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from workbench.benchmark.measure import Timing, interleaved
from workbench.chat import ChatTokens
from workbench.extract import extract_means, pad_right


def padded_batches(model, chats: Sequence[ChatTokens], batch_size: int) -> list[Int[Tensor, "batch pos"]]:
    """The whole conversations in ``extract_means``' batches: sorted by length, right-padded."""
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(chats)), key=lambda i: len(chats[i]))
    return [
        pad_right([chats[i].ids for i in order[start : start + batch_size]], pad_id)
        for start in range(0, len(order), batch_size)
    ]


def bare_forward(model, batches: Sequence[Tensor]) -> None:
    """The whole model to the logits on each batch: no hooks, no early stop."""
    with torch.inference_mode():
        for tokens in batches:
            model(tokens.to(model.cfg.device))


def reference_means(hf_model, chats: Sequence[ChatTokens]) -> Float[Tensor, "n layer d_model"]:
    """persona_vectors' way: one sequence at a time, all hidden states, autograd on.

    As there, each sequence is the chat-formatted prompt followed by the reply's text, with no
    end-of-turn tokens after it. Row ``L`` of the result is our layer ``L`` (HF ``hidden_states[L + 1]``).
    """
    out = []
    for chat in chats:
        (start, end), = chat.assistant_spans
        outputs = hf_model(torch.tensor([chat.ids[:end]]), output_hidden_states=True)
        out.append(torch.stack([h[0, start:end].mean(dim=0).detach().cpu() for h in outputs.hidden_states[1:]]))
        del outputs
    return torch.stack(out)


def measure_extraction(
    model, hf_model, chats: Sequence[ChatTokens], mid_layer: int, batch_size: int,
    reference_responses: int, repeats: int, progress: bool = True,
) -> dict:
    """Timings of bare forward, extraction (all layers, layers ≤ mid) and the reference, interleaved."""
    n_layers = model.cfg.n_layers
    batches = padded_batches(model, chats, batch_size)
    reference_chats = list(chats[:reference_responses])

    def extract(layers: list[int]) -> Tensor:
        return extract_means(model, chats, layers, batch_size=batch_size, progress=False)

    bare_forward(model, batches[:1])  # warm-up: lazy initialisation and allocator growth
    timings: dict[str, Timing] = interleaved(
        {
            "bare_forward": lambda: bare_forward(model, batches),
            "extract_all_layers": lambda: extract(list(range(n_layers))),
            "extract_to_mid_layer": lambda: extract(list(range(mid_layer + 1))),
            "reference_one_at_a_time": lambda: reference_means(hf_model, reference_chats),
        },
        repeats, "bench extraction", progress,
    )
    scale = len(chats) / len(reference_chats)
    reference = timings.pop("reference_one_at_a_time").scaled(scale)
    ours = extract([mid_layer])[: len(reference_chats), 0]
    theirs = reference_means(hf_model, reference_chats)[:, mid_layer]
    agreement = float(((ours - theirs).norm(dim=-1) / theirs.norm(dim=-1)).max())
    tokens = sum(len(c) for c in chats)
    return {
        "n_responses": len(chats),
        "tokens": tokens,
        "padded_tokens": sum(b.numel() for b in batches),
        "batch_size": batch_size,
        "mid_layer": mid_layer,
        "timings": {name: t.to_json() for name, t in timings.items()}
        | {"reference_one_at_a_time_scaled": reference.to_json()},
        "reference": {
            "responses_timed": len(reference_chats),
            "scaled_by": scale,
            "max_relative_difference_at_mid_layer": agreement,
        },
        "ratios": {
            "extract_all_vs_bare": timings["extract_all_layers"].min / timings["bare_forward"].min,
            "extract_to_mid_vs_bare": timings["extract_to_mid_layer"].min / timings["bare_forward"].min,
            "speedup_all_vs_reference": reference.min / timings["extract_all_layers"].min,
            "speedup_mid_vs_reference": reference.min / timings["extract_to_mid_layer"].min,
        },
        "ratios_cpu_time": {
            "extract_all_vs_bare": timings["extract_all_layers"].cpu_min / timings["bare_forward"].cpu_min,
            "extract_to_mid_vs_bare": timings["extract_to_mid_layer"].cpu_min / timings["bare_forward"].cpu_min,
            "speedup_all_vs_reference": reference.cpu_min / timings["extract_all_layers"].cpu_min,
            "speedup_mid_vs_reference": reference.cpu_min / timings["extract_to_mid_layer"].cpu_min,
        },
        "ratios_of_medians": {
            "extract_all_vs_bare": timings["extract_all_layers"].median / timings["bare_forward"].median,
            "extract_to_mid_vs_bare": timings["extract_to_mid_layer"].median / timings["bare_forward"].median,
            "speedup_all_vs_reference": reference.median / timings["extract_all_layers"].median,
            "speedup_mid_vs_reference": reference.median / timings["extract_to_mid_layer"].median,
        },
    }
