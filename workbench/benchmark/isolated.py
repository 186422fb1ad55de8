"""Figures 5–6 through :mod:`workbench.benchmark.child`: one fresh process per workload."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from workbench.chat import ChatTokens


def run_child(task: str, model_file: Path, payload: object, repeats: int = 1) -> dict:
    """Run one child task on ``payload``; its JSON result (raises with the child's stderr on failure)."""
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        input_file = Path(tmp) / "input.pt"
        torch.save(payload, input_file)
        env = os.environ | {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(torch.get_num_threads())}
        done = subprocess.run(
            [sys.executable, "-m", "workbench.benchmark.child", task, str(model_file), str(input_file), str(repeats)],
            capture_output=True, text=True, env=env,
        )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {task!r} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values)}


def measure_projection(model_file: Path, chat: ChatTokens, layer: int, chunk_size: int, repeats: int) -> dict:
    """Time and peak memory of the per-token projection of one long conversation at one layer."""
    result = run_child("project", model_file, {"chat": chat, "layer": layer, "chunk_size": chunk_size}, repeats)
    runs = result["runs"]
    return {
        "implementation": "vectors.drift.projection.project_chat (KV-cache chunks, stop_at_layer)",
        "tokens": len(chat),
        "layer": layer,
        "chunk_size": chunk_size,
        "seconds": _summary([r["seconds"] for r in runs]) | {"repeats": [r["seconds"] for r in runs]},
        "peak_increase_mib": _summary([r["peak_increase_mib"] for r in runs]),
        "rss_before_mib": runs[0]["rss_before_mib"],
        "peak_method": runs[0]["peak_method"],
    }


def measure_memory(model_file: Path, chats_by_size: dict[int, list[ChatTokens]], n_layers: int,
                   d_model: int, repeats: int) -> dict:
    """Peak RSS of all-layer extraction per number of responses, each run in a fresh process."""
    sizes: dict[str, dict] = {}
    for n, chats in chats_by_size.items():
        runs = [run_child("extract", model_file, chats)["runs"][0] for _ in range(repeats)]
        tokens = sum(len(c) for c in chats)
        sizes[str(n)] = {
            "peak_rss_mib": _summary([r["peak_rss_mib"] for r in runs]),
            "peak_increase_mib": _summary([r["peak_increase_mib"] for r in runs]),
            "rss_before_mib": _summary([r["rss_before_mib"] for r in runs]),
            "seconds": _summary([r["seconds"] for r in runs]),
            "result_tensor_mib": n * n_layers * d_model * 4 / 2**20,
            "full_activation_cache_would_be_mib": tokens * n_layers * d_model * 4 / 2**20,
            "peak_method": runs[0]["peak_method"],
        }
    small, large = (sizes[str(n)] for n in (min(chats_by_size), max(chats_by_size)))
    return {
        "sizes": sizes,
        "ratio_peak_rss_large_vs_small": large["peak_rss_mib"]["median"] / small["peak_rss_mib"]["median"],
    }
