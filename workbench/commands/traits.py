"""``workbench traits extract|steer|monitor|screen|generate``: the Persona Vectors pipeline.

Every sub-command writes into ``--out``: ``summary.json`` (merged per trait, so running ``steer``
after ``extract`` keeps both), ``report.html``, ``artifacts/`` and ``cache/`` (re-runs reuse it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from workbench.commands.cap import parse_layers
from workbench.commands.scale_options import add_plan_option, add_scale_options, api_overrides, start, stop

DEFAULT_OUT = Path("runs/traits")


def register(subparsers) -> None:
    parser = subparsers.add_parser("traits", help="contrastive trait vectors: extract, steer, monitor, screen, finetune, generate")
    sub = parser.add_subparsers(dest="traits_command", metavar="ACTION", required=True)
    for action, text in (("extract", "generate contrastive responses and extract trait vectors"),
                         ("steer", "extract, then sweep layers × coefficients against random directions"),
                         ("monitor", "extract, then correlate projections with trait scores")):
        p = sub.add_parser(action, help=text)
        p.add_argument("traits", nargs="+", help="built-in trait names, or names found in --trait-dir")
        _common(p)
        _pipeline_options(p)
        p.add_argument("--device", default="cpu")
        add_scale_options(p)
        p.set_defaults(func=run_pipeline, stages={"extract": (), "steer": ("steer",), "monitor": ("monitor",)}[action])
    p = sub.add_parser("screen", help="ΔP per training sample: projection of the data's response minus the model's own")
    p.add_argument("data", type=Path, help='JSONL of {"messages": [...]} (the last assistant message is y_i)')
    p.add_argument("--vector", type=Path, required=True,
                   help="trait vector (.safetensors artifact, persona_vectors or assistant-axis .pt)")
    p.add_argument("--layer", type=int, help="layer to project at (default: the model's default layer)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    _common(p)
    p.set_defaults(func=run_screen)
    p = sub.add_parser("finetune", help="LoRA fine-tunes on trait data: finetuning shift vs trait, and mitigations")
    p.add_argument("--trait", required=True, help="built-in trait name (or one in --trait-dir)")
    p.add_argument("--trait-dir", type=Path, help="folder of trait data in our or persona_vectors' layout")
    p.add_argument("--data", type=Path, nargs="+", help='training JSONL files of {"messages": [...]} instead of the '
                   "built-in mixed sets (persona_vectors' normal.jsonl, misaligned_*.jsonl)")
    p.add_argument("--levels", default="0,25,50,75,100", help="mixing levels, %% trait data (comma-separated)")
    p.add_argument("--prevent-coef", type=float, nargs="+", default=[], help="preventative steering coefficients α")
    p.add_argument("--ablate", action="store_true", help="also train with the direction ablated (CAFT)")
    p.add_argument("--ablate-layers", type=parse_layers, default=[],
                   help="CAFT: ablate the vector's direction at these layers (e.g. 12-29 or 12,15,18; "
                        "default: --layer alone); implies --ablate")
    p.add_argument("--inference-coef", type=float, nargs="+", default=[1.0],
                   help="inference-time steering of the strongest fine-tune against the vector (coefficients)")
    p.add_argument("--vector", type=Path, help="trait vector (default: extract one from the trait's data first)")
    p.add_argument("--other-vector", type=Path, nargs="+", default=[], help="other traits' vectors for the null")
    p.add_argument("--layer", type=int, default=15, help="the vector's layer: shift, steering and ablation")
    p.add_argument("--questions", type=int, help="training questions (default all extraction questions)")
    p.add_argument("--all-instructions", action="store_true",
                   help="answer each training question under every instruction pair (5x the data) instead of one")
    p.add_argument("--eval-questions", type=int, default=5)
    p.add_argument("--steps", type=int, default=10, help="LoRA steps (keep to 1-2 epochs: more memorises the set)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=64, help="tokens per training sequence")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--first-layer", type=int, help="lowest layer with adapters (default layer - 3)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--n-random", type=int, default=50, help="random directions of the null")
    _common(p)
    add_plan_option(p)
    p.set_defaults(func=run_finetune)
    p = sub.add_parser("generate", help="write a new trait artifact with an OpenAI-compatible model")
    p.add_argument("trait", help="trait name, e.g. 'overconfident'")
    p.add_argument("--description", required=True, help="what the trait looks like in a response")
    p.add_argument("--trait-dir", type=Path, default=Path("traits"), help="folder to write extract/, eval/, heldout/ into")
    p.add_argument("--api", help="base URL (default $OPENAI_BASE_URL)")
    p.add_argument("--api-model", required=True, help="model name at that endpoint")
    p.set_defaults(func=run_generate)


def _common(p) -> None:
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (summary.json, report.html, artifacts/, cache/)")
    p.add_argument("--model", help="model name, HF id or local folder (default: the shipped SmolLM2-135M-Instruct)")


def _pipeline_options(p) -> None:
    p.add_argument("--trait-dir", type=Path, help="folder in our layout (extract/, eval/, heldout/) or persona_vectors' "
                   "(trait_data_extract/, trait_data_eval/); default: the built-in traits")
    p.add_argument("--questions", type=int, help="extraction questions per trait (default all)")
    p.add_argument("--eval-questions", type=int, default=6, help="evaluation questions for monitoring")
    p.add_argument("--samples", type=int, default=1, help="samples per question and instruction")
    p.add_argument("--one-instruction", action="store_true", help="question j under instruction pair j mod 5 only")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--layers", type=int, nargs="+", help="sweep layers (default n/3, n/2, 2n/3)")
    p.add_argument("--coefficients", type=float, nargs="+", default=[-0.1, 0.0, 0.05, 0.1, 0.15],
                   help="steering coefficients as fractions of the mean activation norm at the layer")
    p.add_argument("--n-random", type=int, default=3, help="random directions per layer (the control band)")
    p.add_argument("--examples", type=int, help="held-out examples scored by the offline trait metric (default all)")
    p.add_argument("--coherence-questions", type=int, default=4, help="questions generated per setting for perplexity")
    p.add_argument("--steer-max-new-tokens", type=int, default=24, help="tokens generated per setting for perplexity")
    p.add_argument("--vector", type=Path,
                   help="steer/monitor with this vector instead (.safetensors, persona_vectors or assistant-axis .pt)")
    p.add_argument("--positive-template", default="You are {article} {trait} assistant. {instruction}")
    p.add_argument("--negative-template", default="You are a helpful assistant. {instruction}")
    p.add_argument("--api", help="generate responses on this OpenAI-compatible base URL instead of locally")
    p.add_argument("--api-model", help="model name for --api generation")
    p.add_argument("--judge-api", help="base URL of the LLM judge (default: no judge, offline metrics only)")
    p.add_argument("--judge-model", help="judge model name; enables judging and the paper's filter")


def _merged_summary(out: Path, keys: tuple[str, ...], fragment: dict, summary: dict | None = None) -> dict:
    """``summary`` (default: ``out/summary.json`` as written by an earlier sub-command) with
    ``fragment`` merged in at ``keys``, so a later stage keeps an earlier one's fields."""
    path = out / "summary.json"
    if summary is None:
        summary = json.loads(path.read_text()) if path.is_file() else {}
    node = summary
    for key in keys:
        node = node.setdefault(key, {})
    node.update(fragment)
    return summary


def run_pipeline(args) -> int:
    from dataclasses import replace

    from workbench.api import ApiConfig, ChatClient
    from workbench.commands.vector_input import load_model_and_vectors
    from workbench.generate import Sampling
    from workbench.models import load_model
    from workbench.report import Report, write_run
    from workbench.unavailable import EXIT_OK, EXIT_PARTIAL, by_reason

    from vectors.traits.data import BUILTIN_DIR, load_trait
    from vectors.traits.report import add_traits_sections
    from vectors.traits.responses import PromptTemplates
    from vectors.traits.steering import SweepConfig
    from vectors.traits.pipeline import Clients, TraitConfig, find_assistant_axis, plan_traits, run_traits

    traits = [load_trait(name, args.trait_dir or BUILTIN_DIR) for name in args.traits]
    clients = Clients(
        generator=ChatClient(ApiConfig.from_env(args.api_model, args.api, **api_overrides(args))) if args.api_model else None,
        judge=ChatClient(ApiConfig.from_env(args.judge_model, args.judge_api, **api_overrides(args))) if args.judge_model else None,
    )
    config = TraitConfig(
        n_extract_questions=args.questions, n_eval_questions=args.eval_questions, samples=args.samples,
        all_instructions=not args.one_instruction,
        sampling=Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
        templates=PromptTemplates(args.positive_template, args.negative_template),
        sweep_layers=tuple(args.layers) if args.layers else None,
        n_examples=args.examples,
        sweep=SweepConfig(layers=(), coefficients=tuple(args.coefficients), n_random=args.n_random,
                          n_coherence_questions=args.coherence_questions,
                          sampling=Sampling(max_new_tokens=args.steer_max_new_tokens)),
        chunk=args.chunk,
    )
    shard, device = start(args)
    vector = None
    if args.vector:  # an artifact's sidecar names no file: the summary's vector_source comes from here
        model, vector = load_model_and_vectors(args.vector, args.model, device)
        vector = replace(vector, metadata={**vector.metadata, "source": str(args.vector)})
    else:
        model = load_model(args.model, device=device)
    if shard.is_main:
        print(plan_traits(model, traits, config, clients, args.stages, shard.world_size).render(), flush=True)
    if args.plan:
        stop(shard)
        return 0
    axis = find_assistant_axis(args.out, model.cfg.n_layers, model.cfg.d_model)
    result = run_traits(model, traits, args.out, config, clients, args.stages, vector, axis, shard=shard)
    stop(shard)  # on an error torchrun stops the other ranks
    if result is None:  # a rank other than 0 of a distributed run: rank 0 writes the outputs
        return 0
    report = Report(f"Trait vectors ({args.traits_command}): {', '.join(args.traits)}")
    add_traits_sections(report, result)
    summary = None
    for name, fragment in result.traits.items():
        summary = _merged_summary(args.out, ("traits", name), fragment, summary)
    write_run(args.out, _merged_summary(args.out, ("geometry",), result.to_summary()["geometry"], summary), report)
    for name, fragment in result.traits.items():
        chosen = fragment.get("steering", {}).get("chosen", {})
        print(f"{name}: {fragment['n_pairs']} pairs; chosen layer {chosen.get('layer')}, coefficient "
              f"{chosen.get('coefficient')}; slope {fragment.get('steering', {}).get('steering_slope')}")
    for name, fragment in result.traits.items():
        for reason, figures in by_reason(fragment["unavailable"]).items():
            print(f"{name}: {', '.join(figures)} unavailable: {reason}", file=sys.stderr)
    print(f"wrote {args.out / 'summary.json'} and {args.out / 'report.html'}")
    partial = result.geometry_unavailable is not None or any(f["unavailable"] for f in result.traits.values())
    return EXIT_PARTIAL if partial else EXIT_OK


def run_screen(args) -> int:
    from workbench.cache import JsonlCache
    from workbench.commands.vector_input import load_model_and_vectors
    from workbench.generate import Sampling
    from workbench.layers import default_layer, sweep_layers
    from workbench.report import Report, write_run

    from vectors.traits.monitor import load_screen_data, screen
    from vectors.traits.report import add_screen_section

    conversations = load_screen_data(args.data)
    model, vector = load_model_and_vectors(args.vector, args.model)
    layer = args.layer if args.layer is not None else default_layer(model, fallback=sweep_layers(model.cfg.n_layers)[1])
    cache = JsonlCache(args.out / "cache" / "screen_own_responses.jsonl")
    result = screen(model, conversations, vector, layer, cache, Sampling(max_new_tokens=args.max_new_tokens))
    report = Report(f"Data screening: {args.data.name}")
    add_screen_section(report, result, layer, str(args.vector))
    write_run(args.out, _merged_summary(args.out, ("screen", str(args.data)), result), report)
    print(f"mean ΔP {result['mean_delta_p']} over {result['n']} samples; wrote {args.out / 'summary.json'}")
    return 0


def run_finetune(args) -> int:
    from workbench.artifacts import load_vectors
    from workbench.commands.vector_input import load_model_and_vectors
    from workbench.errors import InputFormatError
    from workbench.generate import Sampling
    from workbench.models import load_model
    from workbench.report import write_run
    from workbench.train import LoraConfig

    from vectors.traits.data import BUILTIN_DIR, load_trait
    from vectors.traits.finetune import FinetuneConfig, FinetuneRun, plan_finetune
    from vectors.traits.finetune_report import finetune_report
    from vectors.traits.pipeline import TraitConfig, TraitRun

    try:
        levels = tuple(int(x) for x in args.levels.split(","))
    except ValueError:
        raise InputFormatError(f"--levels: expected comma-separated integers, got {args.levels!r}") from None
    trait = load_trait(args.trait, args.trait_dir or BUILTIN_DIR)
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=1.0)
    config = FinetuneConfig(
        levels=levels, layer=args.layer, n_train_questions=args.questions, all_instructions=args.all_instructions,
        n_eval_questions=args.eval_questions,
        prevent_coefs=tuple(args.prevent_coef), ablate=args.ablate or bool(args.ablate_layers),
        ablate_layers=tuple(args.ablate_layers), inference_coefs=tuple(args.inference_coef),
        n_random=args.n_random, sampling=sampling,
        lora=LoraConfig(rank=args.rank, alpha=args.alpha, learning_rate=args.lr, steps=args.steps,
                        batch_size=args.batch_size, max_tokens=args.max_tokens,
                        first_layer=args.first_layer if args.first_layer is not None else max(0, args.layer - 3)),
    )
    if args.vector:
        model, vector = load_model_and_vectors(args.vector, args.model)
    else:
        model = load_model(args.model)
    print(plan_finetune(model, trait, config, args.data or (), extract_vector=not args.vector).render(), flush=True)
    if args.plan:
        return 0
    if not args.vector:
        extracted, _ = TraitRun(model, trait, args.out, TraitConfig(n_extract_questions=args.questions,
                                all_instructions=False, sampling=sampling)).extract()
        if not isinstance(extracted, dict):
            raise InputFormatError(f"no {args.trait} vector: {extracted.reason}")
        vector = extracted["response"]
    others = {p.stem: load_vectors(p, model.cfg.n_layers, model.cfg.d_model) for p in args.other_vector}
    study = FinetuneRun(model, trait, vector, args.out, config, others).run(args.data or ())
    summary = write_run(args.out, study.to_summary(), finetune_report(study.to_summary()))
    corr = summary["correlation"]
    print(f"{args.trait}: r(shift, trait) = {corr.get('r')} (95% CI {corr.get('interval_95')}); random band "
          f"{corr.get('random_band_95')}; wrote {args.out / 'summary.json'} and {args.out / 'report.html'}")
    return 0


def run_generate(args) -> int:
    from workbench.api import ApiConfig, ChatClient

    from vectors.traits.data import save_trait
    from vectors.traits.authoring import generate_trait

    trait = generate_trait(ChatClient(ApiConfig.from_env(args.api_model, args.api)), args.trait, args.description)
    root = save_trait(trait, args.trait_dir)
    print(f"wrote {args.trait} to {root}/extract, eval and heldout "
          f"({len(trait.extract_questions)} + {len(trait.eval_questions)} questions, {len(trait.heldout)} examples)")
    return 0
