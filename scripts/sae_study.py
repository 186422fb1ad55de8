"""Decompose the Assistant Axis and persona-trait vectors of the shipped model into shipped-SAE features.

Vectors are built from the shipped SAE corpus (``corpus.jsonl``: the model's own answers under 25
system prompts), response-token means at every layer:
- ``axis``: mean(default-assistant answers) − mean(role-play answers) (the Assistant Axis recipe);
- ``evil`` / ``sycophantic``: mean(answers under that persona prompt) − mean(default answers).
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
    from sae_analysis.pipeline import DEFAULT_PERSONAS, corpus_rows
    from workbench.artifacts import LayerVectors
    from workbench.chat import ChatTokens
    from workbench.extract import extract_means

    rows = [r for r in corpus_rows(model) if r.get("reply") and not r.get("reread")]
    chats = [ChatTokens(tuple(r["ids"]), (tuple(r["response_span"]),)) for r in rows]
    means = extract_means(model, chats, list(range(model.cfg.n_layers)))
    default = torch.tensor([r["persona"] in DEFAULT_PERSONAS for r in rows])
    groups = {
        "axis": (default, ~default),
        "evil": (torch.tensor(["evil" in (r["persona"] or "") for r in rows]), default),
        "sycophantic": (torch.tensor(["sycophant" in (r["persona"] or "") for r in rows]), default),
    }
    paths = {}
    for name, (pos, neg) in groups.items():
        vector = means[pos].mean(0) - means[neg].mean(0)
        path = out / "vectors" / f"{name}.safetensors"
        LayerVectors(vector, {"method": f"corpus persona contrast: {name}", "model": "smollm2-135m-instruct",
                              "n_positive": int(pos.sum()), "n_negative": int(neg.sum())}).save(path)
        paths[name] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sae_study"))
    parser.add_argument("--vector", action="append", default=[], help="extra NAME=PATH (LayerVectors)")
    parser.add_argument("--compare", action="store_true", help="also run compare-steering per trait vector")
    args = parser.parse_args()

    from sae_analysis.feature_steering import ComparisonConfig
    from sae_analysis.pipeline import run_compare, run_decompose
    from vectors.trait_data import load_trait
    from workbench.generate import Sampling
    from workbench.models import load_model

    model = load_model("smollm2-135m-instruct")
    paths = corpus_vectors(model, args.out)
    paths.update({n: Path(p) for n, p in (v.split("=", 1) for v in args.vector)})
    study = {}
    for name, path in paths.items():
        summary = run_decompose(path, "shipped", args.out / name, corpus_limit=300)
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
                                  corpus_limit=120)
            study[f"compare_{name}"] = summary["summary"]
            print(name, json.dumps(summary["summary"]))
    (args.out / "study.json").write_text(json.dumps(study, indent=2) + "\n")


if __name__ == "__main__":
    main()
