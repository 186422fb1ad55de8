"""Figures 1–2: extraction against the bare forward pass and against the persona_vectors reference.

All three run on the same inputs. The bare forward pass runs the whole conversations through the
batched forward primitive that :func:`~workbench.extract.extract_means` is built on
(:func:`workbench.forward.iter_batches`: sorted by length, right-padded, ``inference_mode``) with no
hooks, to the logits; extraction itself also stops after each conversation's last
selected token (the reply's end-of-turn tokens are never run). The reference is the persona_vectors repository's
``get_hidden_p_and_r`` reduced to response means: a Hugging Face model in fp32, one sequence at a
time, ``output_hidden_states=True``, no ``inference_mode``/``no_grad`` (so autograd records the
graph), every hidden state computed whichever layer is wanted. It runs on a subset of the
responses and is scaled per response (one-at-a-time cost is linear in the number of sequences).
"""

from __future__ import annotations

from typing import Sequence

import time

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.benchmark.measure import Timing, interleaved
from workbench.chat import ChatTokens
from workbench.extract import extract_means
from workbench.forward import iter_batches, plan_batches


def bare_forward(model, chats: Sequence[ChatTokens], batch_size: int) -> None:
    """The whole model to the logits on every whole conversation: no hooks, no early stop."""
    for _ in iter_batches(model, chats, batch_size=batch_size):
        pass


def reference_means(hf_model, chats: Sequence[ChatTokens]) -> Float[Tensor, "n layer d_model"]:
    """persona_vectors' way: one sequence at a time, all hidden states, autograd on.

    As there, each sequence is the chat-formatted prompt followed by the reply's text, with no
    end-of-turn tokens after it. Row ``L`` of the result is our layer ``L`` (HF ``hidden_states[L + 1]``).
    """
    out = []
    for chat in chats:
        (start, end), = chat.assistant_spans
        outputs = hf_model(torch.tensor([chat.ids[:end]], device=hf_model.device), output_hidden_states=True)
        out.append(torch.stack([h[0, start:end].float().mean(dim=0).detach().cpu() for h in outputs.hidden_states[1:]]))
        del outputs
    return torch.stack(out)


def measure_extraction(
    model, hf_model, chats: Sequence[ChatTokens], mid_layer: int, batch_size: int,
    reference_responses: int, repeats: int, progress: bool = True,
) -> dict:
    """Timings of bare forward, extraction (all layers, layers ≤ mid) and the reference, interleaved."""
    n_layers = model.cfg.n_layers
    batches = plan_batches([len(c) for c in chats], batch_size)
    reference_chats = list(chats[:reference_responses])

    def extract(layers: list[int]) -> Tensor:
        return extract_means(model, chats, layers, batch_size=batch_size, progress=False)

    bare_forward(model, [chats[i] for i in batches[0]], batch_size)  # warm-up: lazy initialisation, allocator growth
    timings: dict[str, Timing] = interleaved(
        {
            "bare_forward": lambda: bare_forward(model, chats, batch_size),
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
        "padded_tokens": sum(len(b) * max(len(chats[i]) for i in b) for b in batches),
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


def measure_batch_scaling(model, chats: Sequence[ChatTokens], batch_sizes: Sequence[int]) -> dict:
    """All-layer extraction of the same chats at each batch size, once each after a warm-up batch:
    tokens per second (and the peak GPU memory of each on a GPU)."""
    layers = list(range(model.cfg.n_layers))
    tokens = sum(len(c) for c in chats)
    cuda = torch.device(model.cfg.device).type == "cuda"
    rows = []
    for batch_size in batch_sizes:
        extract_means(model, chats[:batch_size], layers, batch_size=batch_size, progress=False)  # warm-up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        extract_means(model, chats, layers, batch_size=batch_size, progress=False)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        rows.append({"batch_size": batch_size, "seconds": seconds, "tokens_per_second": tokens / seconds}
                    | ({"peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20} if cuda else {}))
    return {"n_responses": len(chats), "tokens": tokens, "rows": rows}
