"""``workbench cap calibrate`` and ``workbench cap generate``: activation capping along a vector.

``calibrate`` measures τ_L (percentiles 0.01/0.25/0.5/0.75 of default-assistant token projections)
at each layer of a range and saves a capping config (safetensors + JSON). ``generate`` answers
prompts with and without the cap, side by side. Sign: ``--mode floor`` (default, the paper's)
keeps ⟨h, v̂⟩ from falling below τ_L; ``--mode ceiling`` keeps it from rising above.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.errors import InputFormatError


def parse_layers(text: str) -> list[int]:
    """``"12-19"`` → 12..19; ``"12,14,16"`` → those layers."""
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-", 1))
            return list(range(first, last + 1))
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a range like 12-19 or a list like 12,14,16") from None


def register(subparsers) -> None:
    parser = subparsers.add_parser("cap", help="activation capping: calibrate thresholds, generate capped")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    calibrate = actions.add_parser("calibrate", help="τ per layer from default-assistant responses")
    calibrate.add_argument("--vector", type=Path, required=True, help="vector file (LayerVectors .safetensors, persona_vectors or assistant-axis .pt; e.g. the axis)")
    calibrate.add_argument("--layers", type=parse_layers, required=True, help="layer range, e.g. 12-19")
    calibrate.add_argument("--out", type=Path, required=True, help="capping config path (.safetensors + .json)")
    calibrate.add_argument("--questions", type=Path, help="JSON list of questions (default: the shipped ones)")
    calibrate.add_argument("--max-new-tokens", type=int, default=40)
    calibrate.add_argument("--cache", type=Path, help="JSONL cache of default responses (default: beside --out)")
    calibrate.set_defaults(func=run_calibrate)

    generate = actions.add_parser("generate", help="answer prompts with and without the cap")
    generate.add_argument("prompts", nargs="+", metavar="PROMPT")
    generate.add_argument("--config", type=Path, required=True, help="capping config from 'cap calibrate'")
    generate.add_argument("--percentile", type=float, default=0.25, help="which calibrated τ (default 0.25)")
    generate.add_argument("--mode", choices=["floor", "ceiling"], default="floor")
    generate.add_argument("--layers", type=parse_layers, help="subset of the calibrated layers (default: all)")
    generate.add_argument("--system", help="system prompt (default: none)")
    generate.add_argument("--max-new-tokens", type=int, default=48)
    generate.set_defaults(func=run_generate)
    for sub in (calibrate, generate):
        sub.add_argument("--model", help="model name, HF id or local folder (default: the shipped SmolLM2-135M-Instruct)")
        sub.add_argument("--device", default="cpu")


def _questions(path: Path | None) -> list[str]:
    import json

    from vectors.drift.capping import calibration_questions

    if path is None:
        return calibration_questions()
    try:
        questions = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(questions, list) or not questions or not all(isinstance(q, str) for q in questions):
        raise InputFormatError(f"{path}: expected a non-empty JSON list of question strings")
    return questions


def run_calibrate(args) -> int:
    from workbench.cache import JsonlCache
    from workbench.commands.vector_input import load_model_and_vectors
    from workbench.generate import Sampling

    from vectors.drift.capping import calibrate, default_assistant_chats

    questions = _questions(args.questions)
    model, vectors = load_model_and_vectors(args.vector, args.model, args.device)
    cache = JsonlCache(args.cache or args.out.with_suffix(".responses.jsonl"))
    chats = default_assistant_chats(model, questions, Sampling(max_new_tokens=args.max_new_tokens), cache)
    config = calibrate(model, vectors, chats, args.layers)
    path = config.save(args.out)
    for layer in config.layers:
        taus = ", ".join(f"p{p:g}={config.threshold(layer, p):.3f}" for p in config.percentiles)
        print(f"layer {layer}: {taus}")
    print(f"{config!r} → {path}")
    return 0


def run_generate(args) -> int:
    from workbench.chat import messages
    from workbench.generate import Sampling, generate_responses
    from workbench.models import load_model

    from vectors.drift.capping import CappingConfig

    config = CappingConfig.load(args.config)
    cap = config.intervention(args.percentile, args.mode, args.layers)
    model = load_model(args.model, device=args.device)
    convs = [messages(args.system, prompt) for prompt in args.prompts]
    sampling = Sampling(max_new_tokens=args.max_new_tokens)
    plain = generate_responses(model, convs, sampling)
    capped = generate_responses(model, convs, sampling, [cap])
    for prompt, before, after in zip(args.prompts, plain, capped):
        print(f"{prompt}\n  uncapped: {before}\n  capped ({args.mode}, p{args.percentile:g}, layers "
              f"{list(cap.layers)}): {after}\n")
    return 0
