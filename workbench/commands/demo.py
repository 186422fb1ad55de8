"""``workbench demo``: the study on the shipped model, offline, in one command.

Stages are added as the capability issues land; each writes into ``--out`` and into
``summary.json``. Re-running reuses cached work.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the study on the shipped offline model")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.set_defaults(func=run)


def run(args) -> int:
    import torch

    from workbench.chat import format_conversation, messages
    from workbench.extract import extract_means
    from workbench.generate import Sampling, generate_responses
    from workbench.models import KNOWN_MODELS, load_model

    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    layer = KNOWN_MODELS[args.model].default_layer if args.model in KNOWN_MODELS else model.cfg.n_layers // 2
    personas = {"assistant": "You are a helpful assistant.", "pirate": "You are a pirate captain. Speak like one."}
    question = "What do you think about the ocean?"
    convs = [messages(system, question) for system in personas.values()]
    replies = generate_responses(model, convs, Sampling(max_new_tokens=40))
    chats = [format_conversation(model.tokenizer, c + [{"role": "assistant", "content": r}])
             for c, r in zip(convs, replies)]
    means = extract_means(model, chats, [layer])[:, 0]
    cosine = torch.nn.functional.cosine_similarity(means[0], means[1], dim=0).item()
    summary = {
        "model": args.model, "layer": layer, "replies": dict(zip(personas, replies)),
        "cosine_assistant_vs_pirate": cosine, "seconds": round(time.time() - started, 1),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
