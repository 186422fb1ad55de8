"""Figures 5–6 run here, in a fresh process each, so peak RSS belongs to one workload alone.

``python -m workbench.benchmark.child TASK MODEL_FILE INPUT_FILE [REPEATS]`` prints one JSON line.
The parent saves the already-loaded model with ``torch.save`` (a few seconds to read back, instead
of loading the GGUF again), so the child's baseline RSS is the model plus libraries, and the peak
increase over it is the workload's own memory.

Tasks: ``extract`` (response means at all layers of the chats in INPUT_FILE, once) and
``project`` (per-token projection of the conversation in INPUT_FILE at one layer, REPEATS times,
through ``vectors.drift.projection``: imported lazily, the benchmark being application layer).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import torch

from workbench.benchmark.measure import peak_rss_mib, reset_peak_rss, rss_mib


def _measured(fn) -> dict:
    """Run ``fn`` once; seconds, RSS before, peak RSS during, and the increase."""
    method = reset_peak_rss()
    before = rss_mib()
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    peak = peak_rss_mib()
    return {"seconds": seconds, "rss_before_mib": before, "peak_rss_mib": peak,
            "peak_increase_mib": peak - before, "peak_method": method}


def extract_task(model, chats) -> list[dict]:
    from workbench.extract import extract_means

    layers = list(range(model.cfg.n_layers))
    return [_measured(lambda: extract_means(model, chats, layers, progress=False))]


def project_task(model, payload: dict, repeats: int) -> list[dict]:
    from workbench.artifacts import LayerVectors
    from vectors.drift.projection import project_chat

    vectors = LayerVectors(torch.randn(model.cfg.n_layers, model.cfg.d_model,
                                       generator=torch.Generator().manual_seed(0)))
    layer, chunk_size = payload["layer"], payload["chunk_size"]
    return [
        _measured(lambda: project_chat(model, payload["chat"], vectors, [layer], chunk_size=chunk_size))
        for _ in range(repeats)
    ]


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    task, model_file, input_file, *rest = argv
    repeats = int(rest[0]) if rest else 1
    model = torch.load(model_file, weights_only=False)
    payload = torch.load(input_file, weights_only=False)
    runs = extract_task(model, payload) if task == "extract" else project_task(model, payload, repeats)
    print(json.dumps({"task": task, "torch_threads": torch.get_num_threads(), "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
