"""``workbench axis``: persona space and the Assistant Axis for one model (see :mod:`vectors.axis.pipeline`).

Writes ``DIR/summary.json``, ``DIR/report.html``, the axis and persona vectors under
``DIR/artifacts`` and resumable caches under ``DIR/cache``; re-running resumes. When the judge leaves
too few responses for a figure (the axis, PCA, held-out AUC), the run is still written with that
figure marked unavailable and why, and the exit status is 3 (:mod:`workbench.unavailable`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from workbench.commands.scale_options import add_scale_options, api_overrides, start, stop


def register(subparsers) -> None:
    parser = subparsers.add_parser("axis", help="map persona space and extract the Assistant Axis")
    parser.add_argument("--model", help="model name, HF id, local folder or .gguf file (default: the shipped SmolLM2-135M-Instruct)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumes if it exists)")
    parser.add_argument("--personas", type=Path, help="personas JSON file or assistant-axis roles folder")
    parser.add_argument("--questions", type=Path, help="questions JSON file or extraction_questions.jsonl")
    parser.add_argument("--api", metavar="URL", help="generate on this OpenAI-compatible endpoint (key: $OPENAI_API_KEY)")
    parser.add_argument("--api-model", metavar="NAME", help="the endpoint's model name for generation")
    parser.add_argument("--judge", metavar="MODEL", help="role-play judge model (same endpoint as --api, or --judge-url)")
    parser.add_argument("--judge-url", metavar="URL", help="judge endpoint (default: --api or $OPENAI_BASE_URL)")
    parser.add_argument("--min-passing", type=int, default=1, help="keep roles with at least this many responses scored 3")
    parser.add_argument("--layer", type=int, help="analysis layer (default: the model's, about 60%% of depth)")
    parser.add_argument("--n-personas", type=int, help="use this many roles, spread over groups (default: all)")
    parser.add_argument("--n-extraction", type=int, default=8, help="extraction questions (default 8)")
    parser.add_argument("--n-heldout", type=int, default=4, help="held-out questions (default 4)")
    parser.add_argument("--samples", type=int, default=1, help="samples per prompt and question")
    parser.add_argument("--all-prompts", action="store_true", help="every role prompt variant for every question")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64, help="generation batch size")
    parser.add_argument("--device", default="cpu")
    add_scale_options(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.generate import Sampling
    from workbench.models import load_model
    from workbench.report import Report, write_run

    from workbench.unavailable import EXIT_OK, EXIT_PARTIAL, by_reason

    from vectors.axis.pipeline import AxisConfig, plan_axis, run_axis
    from vectors.axis.report import add_axis_sections

    config = AxisConfig(
        personas=args.personas, questions=args.questions, n_roles=args.n_personas, n_extraction=args.n_extraction,
        n_heldout=args.n_heldout, samples=args.samples, all_role_prompts=args.all_prompts,
        sampling=Sampling(args.max_new_tokens, args.temperature, args.top_p, args.seed), batch_size=args.batch_size,
        layer=args.layer, api_url=args.api, api_model=args.api_model, judge_model=args.judge,
        judge_url=args.judge_url, min_passing=args.min_passing, chunk=args.chunk, api_options=api_overrides(args),
    )
    shard, device = start(args)
    model = load_model(args.model, device=device)
    if shard.is_main:
        print(plan_axis(model, config, shard.world_size).render(), flush=True)
    if args.plan:
        stop(shard)
        return 0
    result = run_axis(model, config, args.out, shard)
    stop(shard)  # on an error torchrun stops the other ranks
    if result is None:  # a rank other than 0 of a distributed run: rank 0 writes the outputs
        return 0
    report = Report(f"Assistant Axis: {result.summary['model']}")
    add_axis_sections(report, result)
    write_run(args.out, result.to_summary(), report)
    s = result.summary
    auc = f"{s['heldout_auc']:.3f}" if "heldout_auc" not in s["unavailable"] else "unavailable"
    pc1 = f"{s['pc1_explained_variance']:.1%}" if "pc1_explained_variance" not in s["unavailable"] else "unavailable"
    print(f"layer {s['layer']}: PC1 explains {pc1}, held-out AUC {auc}, "
          f"{s['n_responses_used']} responses, {s['seconds']} s → {args.out / 'summary.json'}")
    for reason, figures in by_reason(s["unavailable"]).items():
        print(f"{', '.join(figures)} unavailable: {reason}", file=sys.stderr)
    return EXIT_OK if result.complete else EXIT_PARTIAL
