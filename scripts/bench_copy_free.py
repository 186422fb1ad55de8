"""Side by side, in one process: TransformerLens' own MLP/unembedding forwards against the copy-free ones.

Why: ``workbench.copy_free`` replaces two TransformerLens forwards that copied every MLP weight and
the unembedding on each call. This measures what that buys, interleaved (each repeat runs both
variants, order rotated), on the benchmark's fixed inputs: greedy generation (batch 8, 64 new
tokens, KV cache) and all-layer extraction (64 responses, batch 16). The model object is the same;
only the modules' classes are switched between variants.

Usage: ``python scripts/bench_copy_free.py [--repeats 3] [--out copy_free.json]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from transformer_lens.components import GatedMLP, Unembed

from workbench.benchmark import inputs
from workbench.benchmark.measure import interleaved
from workbench.copy_free import remove_weight_copies
from workbench.extract import extract_means
from workbench.generate import Sampling, generate_tokens
from workbench.models import load_model


def use_transformer_lens_forwards(model) -> None:
    """Back to TransformerLens' classes (``W.T.contiguous()`` on every call)."""
    for block in model.blocks:
        block.mlp.__class__ = GatedMLP
    model.unembed.__class__ = Unembed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    model = load_model()
    prompts = inputs.generation_prompts(model.tokenizer, 8)
    chats = inputs.persona_chats(model.tokenizer, 64, 80)
    sampling = Sampling(max_new_tokens=64, stop_at_eos=False)
    layers = list(range(model.cfg.n_layers))

    def generate(copy_free: bool) -> None:
        remove_weight_copies(model) if copy_free else use_transformer_lens_forwards(model)
        generate_tokens(model, prompts, sampling, batch_size=8, progress=False)

    def extract(copy_free: bool) -> None:
        remove_weight_copies(model) if copy_free else use_transformer_lens_forwards(model)
        extract_means(model, chats, layers, batch_size=16, progress=False)

    generate(True), extract(True)  # warm-up
    timings = interleaved({
        "generation_transformer_lens": lambda: generate(False),
        "generation_copy_free": lambda: generate(True),
        "extraction_transformer_lens": lambda: extract(False),
        "extraction_copy_free": lambda: extract(True),
    }, args.repeats, "copy-free vs TransformerLens", True)
    result = {
        "timings": {name: t.to_json() for name, t in timings.items()},
        "speedup_min": {what: timings[f"{what}_transformer_lens"].min / timings[f"{what}_copy_free"].min
                        for what in ("generation", "extraction")},
        "speedup_median": {what: timings[f"{what}_transformer_lens"].median / timings[f"{what}_copy_free"].median
                           for what in ("generation", "extraction")},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
