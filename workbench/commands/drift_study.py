"""``workbench drift-study --out DIR``: drift and capping as an experiment with intervals.

Replays every conversation (``--transcripts DIR``, default the shipped drifting set; plus one per
``--simulate GOAL`` written by a simulated user) ``--samples`` times per condition — no
intervention, a floor cap per ``--cap-grid`` setting, steering toward the axis, and capping the
axis's top SAE features (``--sae``) — and scores each intervention's capability cost. Writes
``DIR/summary.json`` and ``DIR/report.html`` (per-turn curves with intervals, the trade-off plot,
token views); caches under ``DIR/cache`` make a re-run or a resumed run cheap.
"""

from __future__ import annotations

from pathlib import Path

from workbench.commands.scale_options import add_plan_option


def register(subparsers) -> None:
    parser = subparsers.add_parser("drift-study", help="drift and capping over many conversations × samples, "
                                   "with intervals and the capability cost")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--axis", type=Path, required=True, help="Assistant Axis LayerVectors .safetensors")
    parser.add_argument("--transcripts", type=Path, metavar="DIR",
                        help="folder of transcripts (.json/.jsonl, assistant-axis format; default: the shipped drift set)")
    parser.add_argument("--simulate", nargs="+", metavar="GOAL", default=[],
                        help="also study conversations a simulated user with each GOAL writes")
    parser.add_argument("--user-api", metavar="URL", help="simulated user through this OpenAI-compatible endpoint")
    parser.add_argument("--user-model", metavar="NAME", help="the endpoint's model for the simulated user")
    parser.add_argument("--sim-turns", type=int, default=6, help="turns per simulated conversation (default 6)")
    parser.add_argument("--samples", type=int, default=5, help="seeded samples per conversation and condition (default 5)")
    parser.add_argument("--cap-grid", nargs="+", metavar="FIRST-LAST@P",
                        help="capping settings, e.g. 12-19@0.25 16-23@0.5 (default: 7 settings, see docs/drift_study.md)")
    parser.add_argument("--chosen", metavar="FIRST-LAST@P", help="the setting to mark (default: the first of the grid)")
    parser.add_argument("--turns", type=int, help="replay at most this many user turns per conversation")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="tokens per replayed turn (default 32)")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    parser.add_argument("--layer", type=int, help="reading layer (default: the model's reference layer)")
    parser.add_argument("--steer-coef", type=float, default=2.0, help="steering condition: coefficient × axis (default 2)")
    parser.add_argument("--steer-layer", type=int, default=15, help="steering layer (default 15)")
    parser.add_argument("--no-steer", action="store_true", help="leave out the steering condition")
    parser.add_argument("--sae", metavar="SAE", help="add SAE-feature capping with this SAE (e.g. shipped)")
    parser.add_argument("--sae-top-k", type=int, default=8, help="axis features the SAE cap holds (default 8)")
    parser.add_argument("--no-capability", action="store_true", help="skip the capability cost")
    parser.add_argument("--capability-items", type=int, metavar="N",
                        help="score N multiple-choice items spread over the set and N/4 neutral answers (default: all)")
    parser.add_argument("--judge", metavar="MODEL", help="role-play judge (OpenAI-compatible) for in-role rates per condition")
    parser.add_argument("--judge-url", metavar="URL", help="judge endpoint (default: $OPENAI_BASE_URL)")
    parser.add_argument("--model", help="model name, HF id or local folder (default: the shipped SmolLM2-135M-Instruct)")
    parser.add_argument("--device", default="cpu")
    add_plan_option(parser)
    parser.set_defaults(func=run)


def load_folder(folder: Path) -> list:
    """Every conversation of every ``.json`` / ``.jsonl`` file in ``folder``, files sorted by name."""
    from workbench.errors import InputFormatError
    from vectors.drift.transcripts import load_transcripts

    if not folder.is_dir():
        raise InputFormatError(f"{folder}: not a folder of transcripts")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".jsonl"))
    if not files:
        raise InputFormatError(f"{folder}: no .json or .jsonl transcripts")
    return [t for path in files for t in load_transcripts(path)]


def study_config(args):
    from workbench.generate import Sampling
    from vectors.drift.study import DEFAULT_GRID, CapSetting, StudyConfig

    grid = tuple(CapSetting.parse(s) for s in args.cap_grid) if args.cap_grid else DEFAULT_GRID
    chosen = CapSetting.parse(args.chosen) if args.chosen else grid[0]
    return StudyConfig(cap_grid=grid, chosen=chosen, samples=args.samples, max_turns=args.turns,
                       sampling=Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=0.9),
                       layer=args.layer, steer_layer=args.steer_layer,
                       steer_coefficient=None if args.no_steer else args.steer_coef, sae_top_k=args.sae_top_k,
                       capability=not args.no_capability)


def capability_sets(n_items: int | None) -> tuple[list, list]:
    """The multiple-choice items and neutral answers, or ``n_items`` items spread evenly over the
    set (every kind represented) with a quarter as many neutral answers, for quick runs."""
    from workbench.errors import InputFormatError
    from vectors.capability import load_choice_items, load_neutral_answers

    items, neutral = load_choice_items(), load_neutral_answers()
    if n_items is None:
        return items, neutral
    if n_items < 1:
        raise InputFormatError(f"--capability-items must be ≥ 1, got {n_items}")
    step = max(1, len(items) // n_items)
    return items[::step][:n_items], neutral[: max(1, n_items // 4)]


def simulated(model, args) -> list:
    from workbench.api import ApiConfig, ChatClient
    from workbench.cache import JsonlCache
    from workbench.errors import InputFormatError
    from vectors.drift.simulated_user import UserModel, save_transcripts, simulate_conversations

    if args.user_api or args.user_model:
        if not (args.user_api and args.user_model):
            raise InputFormatError("--user-api and --user-model go together")
        user = UserModel(args.user_model, client=ChatClient(ApiConfig(args.user_api, args.user_model)))
    else:
        user = UserModel(f"local:{model.cfg.model_name}", model=model)
    transcripts = simulate_conversations(model, args.simulate, user, JsonlCache(args.out / "cache" / "simulated.jsonl"),
                                         args.sim_turns)
    save_transcripts(transcripts, args.out / "simulated")
    return transcripts


def run(args) -> int:
    from dataclasses import replace

    from workbench.cache import JsonlCache
    from workbench.commands.vector_input import load_model_and_vectors
    from workbench.report import write_run
    from vectors.drift.study import plan_study, run_study
    from vectors.drift.study_report import study_report
    from vectors.drift.transcripts import load_transcript, shipped_drift_transcripts

    config = study_config(args)  # bad settings and data fail before the slow model load
    items, neutral = capability_sets(args.capability_items)
    transcripts = load_folder(args.transcripts) if args.transcripts else [
        load_transcript(p) for p in shipped_drift_transcripts()]
    model, axis = load_model_and_vectors(args.axis, args.model, args.device)
    simulate_note = (f"not counted: {len(args.simulate)} simulated conversations of {args.sim_turns} turns "
                     "(their text is not written yet)",) if args.simulate else ()
    plan = plan_study(model, transcripts, config, items if config.capability else (), neutral, bool(args.sae),
                      bool(args.judge))
    print(replace(plan, notes=(*plan.notes, *simulate_note)).render(), flush=True)
    if args.plan:
        return 0
    sae = None
    if args.sae:
        from sae_analysis.saes import load_sae

        sae = load_sae(args.sae, device=args.device)
    if args.simulate:
        transcripts += simulated(model, args)
    study = run_study(model, axis, transcripts, config, JsonlCache(args.out / "cache" / "study.jsonl"), items, neutral, sae)
    in_role = None
    summary = study.to_summary()
    if args.judge:
        from workbench.api import ApiConfig, ChatClient
        from vectors.drift.study import judge_in_role_rates

        client = ChatClient(ApiConfig.from_env(args.judge, args.judge_url))
        in_role = judge_in_role_rates(study, transcripts, client, JsonlCache(args.out / "cache" / "judge.jsonl"))
        summary["judge_in_role_rate"] = {name: rate.to_summary() for name, rate in in_role.items()}
    write_run(args.out, summary, study_report(study, in_role))
    for result in study.conditions[1:]:
        cost = f"; Δ NLL {result.capability.nll_change}, Δ accuracy {result.capability.accuracy_change}" if result.capability else ""
        print(f"{result.name}: Δ late-turn projection {result.difference['late_mean']}, "
              f"Δ below-floor share {result.difference['below_floor_share']}{cost}")
    print(f"{len(transcripts)} conversations × {config.samples} samples in {study.seconds:.0f} s → {args.out / 'report.html'}")
    return 0
