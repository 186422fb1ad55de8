"""Run every figure, check each ratio against its goal, and record the machine and versions.

Goals (issue 5; generation against Hugging Face ``generate``: issue 20). Ratios are taken from the minimum over repeats (the least disturbed run on a
shared machine); medians are reported beside them.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch

from workbench.benchmark import inputs
from workbench.benchmark.dashboards import measure_dashboards
from workbench.benchmark.decomposition import measure_decomposition
from workbench.benchmark.extraction import measure_batch_scaling, measure_extraction
from workbench.benchmark.generation import measure_generation
from workbench.benchmark.isolated import measure_memory, measure_projection
from workbench.benchmark.training import measure_training
from workbench.errors import InputFormatError


FIGURES = ("extraction", "batch_scaling", "generation", "decomposition", "dashboards", "projection", "memory", "training")
# Projection and memory run in child processes that read the model back from a file: not for a
# random 27B model on a GPU (``--random-weights``); their figures are left out there.
RANDOM_WEIGHT_FIGURES = ("extraction", "batch_scaling", "generation", "decomposition")


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of every figure. The defaults are the issue's; :meth:`quick` is a seconds-long smoke run.

    ``threads``: torch intra-op threads for the run and its children (None: torch's default). On an
    oversubscribed machine one thread avoids OpenMP barrier stalls that slow small ops unevenly.
    ``memory_repeats``: fresh processes per memory size (the 512-response one dominates the run).
    ``figures``: which of :data:`FIGURES` to run (all by default).
    """

    responses: int = 64
    response_tokens: int = 80
    batch_size: int = 16
    reference_responses: int = 16
    generation_prompts: int = 8
    generation_batch: int = 8
    new_tokens: int = 64
    cap_layers: int = 6
    decoder_shape: tuple[int, int] = (131072, 4608)
    top_k: int = 20
    dashboard_features: int = 20
    dashboard_rows: int = 40
    dashboard_width: int = 131072
    conversation_tokens: int = 5000
    chunk_size: int = 256
    memory_sizes: tuple[int, int] = (64, 512)
    scaling_batch_sizes: tuple[int, ...] = (1, 4, 16, 64)
    memory_repeats: int = 3
    train_batch: int = 8
    train_tokens: int = 64
    repeats: int = 3
    threads: int | None = None
    figures: tuple[str, ...] = FIGURES

    @classmethod
    def quick(cls) -> "BenchConfig":
        return cls(responses=8, response_tokens=12, batch_size=4, reference_responses=2,
                   generation_prompts=2, generation_batch=2, new_tokens=3, cap_layers=2,
                   decoder_shape=(2048, 256), dashboard_features=2, dashboard_rows=2, dashboard_width=4096,
                   conversation_tokens=300, chunk_size=64,
                   memory_sizes=(4, 16), memory_repeats=1, scaling_batch_sizes=(1, 4),
                   train_batch=2, train_tokens=24)


def _meets(value: float, op: str, target: float) -> bool:
    return bool(value <= target if op == "<=" else value >= target if op == ">=" else value < target)


def goal(value: float, op: str, target: float, what: str, value_cpu: float | None = None) -> dict:
    """One ratio against its goal: ``pass`` on wall time, ``pass_cpu_time`` on CPU time where measured.

    With one torch thread CPU time is the work itself, free of waits for a core on a loaded machine.
    """
    return {"what": what, "value": value, "value_cpu_time": value_cpu, "goal": f"{op} {target:.3g}",
            "pass": _meets(value, op, target),
            "pass_cpu_time": None if value_cpu is None else _meets(value_cpu, op, target)}


def machine() -> dict:
    """CPU count, torch threads, platform and the versions of the stack."""
    packages = ("torch", "transformers", "transformer-lens", "persona-workbench")
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "versions": {name: importlib.metadata.version(name) for name in packages},
    }


def _goals(result: dict, n_layers: int, mid: int) -> dict:
    """Every goal whose figure is in ``result``."""
    goals = {}
    if "extraction" in result:
        r, c = result["extraction"]["ratios"], result["extraction"]["ratios_cpu_time"]
        goals |= {
            "extract_all_vs_bare": goal(r["extract_all_vs_bare"], "<=", 1.05, "extraction, all layers ÷ bare forward",
                                        c["extract_all_vs_bare"]),
            "extract_to_mid_vs_bare": goal(r["extract_to_mid_vs_bare"], "<=", (mid + 1) / n_layers + 0.1,
                                           f"extraction, layers ≤ {mid} ÷ bare forward", c["extract_to_mid_vs_bare"]),
            "speedup_all_vs_reference": goal(r["speedup_all_vs_reference"], ">=", 1.5,
                                             "reference ÷ extraction, all layers", c["speedup_all_vs_reference"]),
            "speedup_mid_vs_reference": goal(r["speedup_mid_vs_reference"], ">=", 2.0,
                                             f"reference ÷ extraction, layers ≤ {mid}", c["speedup_mid_vs_reference"]),
        }
    if "generation" in result:
        r, c = result["generation"]["ratios"], result["generation"]["ratios_cpu_time"]
        goals |= {
            f"{name}_vs_plain": goal(r[f"{name}_vs_plain_tokens_per_s"], ">=", 0.9,
                                     f"{name} ÷ plain generation, tokens/s", c[f"{name}_vs_plain_tokens_per_s"])
            for name in ("steered", "capped")
        }
        goals |= {
            f"{name}_vs_hf_generate": goal(r[f"{name}_vs_hf_generate_tokens_per_s"], ">=", 1.0,
                                           f"{name} generation ÷ HF generate, tokens/s",
                                           c[f"{name}_vs_hf_generate_tokens_per_s"])
            for name in ("plain", "steered", "capped")
        }
        goals["sampled_vs_hf_generate"] = goal(
            r["sampled_vs_hf_generate_sampled_tokens_per_s"], ">=", 1.0,
            "sampled generation (T 0.7, top-p 0.9) ÷ HF generate sampled, tokens/s",
            c["sampled_vs_hf_generate_sampled_tokens_per_s"])
    if "decomposition" in result:
        timing = result["decomposition"]["timings"]["decompose"]
        goals["decomposition_seconds"] = goal(timing["min_s"], "<", 2.0, "decompose one vector (sae_analysis.decompose), s",
                                              timing["cpu_min_s"])
    if "dashboards" in result:
        d = result["dashboards"]
        goals["dashboards_seconds"] = goal(d["seconds"], "<", 60.0, f"dashboards of {d['n_features']} features, "
                                           f"{d['d_sae']}-feature dictionary (d_in {d['d_in']}), s", d["cpu_seconds"])
    if "memory" in result:
        goals["memory_large_vs_small"] = goal(result["memory"]["ratio_peak_rss_large_vs_small"], "<=", 1.1,
                                              "peak RSS of extraction, large ÷ small set")
    return goals


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children: the run's cost on an idle machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_benchmark(
    config: BenchConfig = BenchConfig(), model=None, hf_model=None, progress: bool = True, out: Path | None = None,
) -> dict:
    """The figures in ``config.figures`` on the shipped model; pass both loaded models to skip loading.

    The hooked model is built from the same in-memory Hugging Face model the reference uses
    (exactly what :func:`workbench.models.load_model` does for the shipped model), so the GGUF
    is read once. With ``out``, the JSON is rewritten after every figure (``"complete": false``
    until the end), so a long run interrupted still leaves what it measured.
    """
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads or threads_before)
    try:
        for result in _run(config, model, hf_model, progress):
            result |= {"threads_default": threads_before, "seconds_total": time.perf_counter() - started,
                       "cpu_seconds_total": _cpu_seconds()}
            if out is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(result, indent=2))
        return result
    finally:
        torch.set_num_threads(threads_before)


def _run(config: BenchConfig, model, hf_model, progress: bool) -> Iterator[dict]:
    """Yield the growing result after each figure; the last one has ``complete: true``."""
    from workbench.models import SHIPPED_MODEL, hooked_from_hf, load_smollm2_hf

    unknown = set(config.figures) - set(FIGURES)
    if unknown:
        raise InputFormatError(f"unknown figures {sorted(unknown)}; choose from {', '.join(FIGURES)}")
    result: dict = {"complete": False, "config": asdict(config), "machine": machine()}
    if model is None or hf_model is None:
        hf_model, tokenizer = load_smollm2_hf()
        model = hooked_from_hf(hf_model, tokenizer)
        model.cfg.model_name = SHIPPED_MODEL
    n_layers, d_model, tokenizer = model.cfg.n_layers, model.cfg.d_model, model.tokenizer
    mid = n_layers // 2
    result["model"] = {"name": model.cfg.model_name, "n_layers": n_layers, "d_model": d_model,
                       "device": str(model.cfg.device), "dtype": str(model.cfg.dtype)}
    chats = inputs.persona_chats(tokenizer, max(config.responses, *config.memory_sizes), config.response_tokens)
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        model_file = Path(tmp) / "model.pt"
        if {"projection", "memory"} & set(config.figures):
            torch.save(model, model_file)
        figures = {
            "extraction": lambda: measure_extraction(
                model, hf_model, chats[: config.responses], mid, config.batch_size,
                config.reference_responses, config.repeats, progress),
            "batch_scaling": lambda: measure_batch_scaling(model, chats[: config.responses], config.scaling_batch_sizes),
            "generation": lambda: measure_generation(
                model, hf_model, inputs.generation_prompts(tokenizer, config.generation_prompts), mid, config.new_tokens,
                config.generation_batch, config.cap_layers, config.repeats, progress),
            "decomposition": lambda: measure_decomposition(*config.decoder_shape, config.top_k, config.repeats, progress),
            "dashboards": lambda: measure_dashboards(
                model, config.dashboard_features, config.dashboard_rows, config.dashboard_width, progress=progress),
            "projection": lambda: measure_projection(
                model_file, inputs.long_conversation(tokenizer, config.conversation_tokens), mid,
                config.chunk_size, config.repeats),
            "memory": lambda: measure_memory(
                model_file, {n: chats[:n] for n in config.memory_sizes}, n_layers, d_model, config.memory_repeats),
            "training": lambda: measure_training(
                model, hf_model, chats[: config.train_batch], mid, config.train_tokens, config.repeats, progress),
        }
        for name in FIGURES:
            if name in config.figures:
                result[name] = figures[name]()
                result["goals"] = _goals(result, n_layers, mid)
                if torch.cuda.is_available():
                    result["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
                yield result
    result["complete"] = True
    yield result
