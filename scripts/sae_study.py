"""Decompose the Assistant Axis and persona-trait vectors of the shipped model into shipped-SAE features.

Vectors, at every layer (quick versions of the vectors/ pipelines, built offline in minutes):
- ``axis``: mean(default-assistant answers) − mean(role-play answers) over the shipped SAE corpus
  (``corpus.jsonl``: the model's own answers under 25 system prompts), response tokens;
- ``evil`` / ``sycophantic``: mean over prompt tokens with the trait's positive instructions minus
  with its negative instructions (``vectors/data/traits/extract``: 5 pairs × 4 questions), the
  persona_vectors "prompt" variant (no generation). Held-out examples stay unused until scoring.
An axis artifact from the vectors pipeline can be added with ``--vector NAME=PATH``.
Each vector gets ``workbench decompose`` output in ``OUT/<name>/`` and, with ``--compare``, a
``compare-steering`` run scored on the built-in held-out trait examples. ``OUT/study.json`` sums up.

Usage: ``python scripts/sae_study.py --out runs/sae_study [--compare]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def corpus_vectors(model, out: Path) -> dict[str, Path]:
    from sae_analysis.contexts import row_chat
    from sae_analysis.pipeline import DEFAULT_PERSONAS, corpus_rows
    from workbench.artifacts import LayerVectors
    from workbench.extract import extract_means
    from workbench.models import SHIPPED_MODEL

    rows = [r for r in corpus_rows(model) if r.get("reply") and not r.get("reread")]
    chats = [row_chat(r) for r in rows]
    means = extract_means(model, chats, list(range(model.cfg.n_layers)))
    default = torch.tensor([r["persona"] in DEFAULT_PERSONAS for r in rows])
    vector = means[default].mean(0) - means[~default].mean(0)
    path = out / "vectors" / "axis.safetensors"
    LayerVectors(vector, {"method": "assistant axis: mean(default) - mean(roles), shipped SAE corpus",
                          "model": SHIPPED_MODEL, "n_default": int(default.sum()),
                          "n_roles": int((~default).sum())}).save(path)
    paths = {"axis": path}
    for trait in ("evil", "sycophantic"):
        paths[trait] = instruction_vector(model, trait, out)
    return paths


def instruction_vector(model, trait: str, out: Path, n_questions: int = 4) -> Path:
    """mean(prompt tokens | positive instruction) − mean(prompt tokens | negative instruction)."""
    from vectors.traits.data import load_trait
    from workbench.artifacts import LayerVectors
    from workbench.chat import ChatTokens, format_prompt, messages
    from workbench.extract import extract_means
    from workbench.models import SHIPPED_MODEL

    data = load_trait(trait)
    layers = list(range(model.cfg.n_layers))
    sides = {}
    for side in ("pos", "neg"):
        chats = [ChatTokens(format_prompt(model.tokenizer, messages(getattr(pair, side), q)), ())
                 for pair in data.instructions for q in data.extract_questions[:n_questions]]
        sides[side] = extract_means(model, chats, layers, select="prompt").mean(0)
    path = out / "vectors" / f"{trait}.safetensors"
    LayerVectors(sides["pos"] - sides["neg"], {
        "method": f"trait {trait}: mean prompt activation, positive minus negative instructions",
        "model": SHIPPED_MODEL, "n_prompts_per_side": len(data.instructions) * n_questions}).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sae_study"))
    parser.add_argument("--vector", action="append", default=[], help="extra NAME=PATH (LayerVectors)")
    parser.add_argument("--compare", action="store_true", help="also run compare-steering per trait vector")
    args = parser.parse_args()

    from sae_analysis.feature_steering import ComparisonConfig
    from vectors.traits.data import load_trait
    from workbench.commands.compare_steering import run_compare
    from workbench.commands.decompose import run_decompose
    from workbench.generate import Sampling
    from workbench.models import SHIPPED_MODEL, load_model

    model = load_model(SHIPPED_MODEL)
    paths = corpus_vectors(model, args.out)
    paths.update({n: Path(p) for n, p in (v.split("=", 1) for v in args.vector)})
    study = {}
    for name, path in paths.items():
        summary = run_decompose(path, "shipped", args.out / name, corpus_limit=300, model=model)
        d = summary["decomposition"]
        study[name] = {"max_abs_cos": d["max_abs_cos"], "chance_mean": d["baseline"]["mean_max_abs_cos"],
                       "chance_p99": d["baseline"]["p99_max_abs_cos"], "beats_chance": d["beats_chance_p99"],
                       "n_top_above_chance": d["n_top_above_chance_p99"],
                       "reconstruction_k1_k5_k20_k50": [d["reconstruction"][i] for i in (0, 4, 19, 49)],
                       "seconds": d["seconds"]}
        print(name, json.dumps(study[name]))
    if args.compare:
        config = ComparisonConfig(ks=(1, 5, 20), coefficients=(-0.1, 0.1), clamp_multiples=(0.0, 2.0), n_random=3,
                                  sampling=Sampling(max_new_tokens=16))
        for name, trait in (("evil", "evil"), ("sycophantic", "sycophantic")):
            examples = list(load_trait(trait).heldout)[:6]
            summary = run_compare(paths[name], "shipped", args.out / f"compare_{name}", examples, config=config,
                                  corpus_limit=120, model=model)
            study[f"compare_{name}"] = summary["summary"]
            print(name, json.dumps(summary["summary"]))
    (args.out / "study.json").write_text(json.dumps(study, indent=2) + "\n")


if __name__ == "__main__":
    main()
