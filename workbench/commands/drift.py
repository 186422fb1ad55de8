"""``workbench drift TRANSCRIPT --axis AXIS --out DIR``: per-token and per-turn drift views.

Writes ``DIR/drift.html`` (offline page: per-turn lines with the default-assistant band, per-turn
means, a coloured token view per assistant turn) and ``DIR/drift.json`` (per-turn means and
per-token values). The band comes from ``--band CAPPING_CONFIG`` or, without it, from the model's
own answers to the shipped neutral questions (generated once, cached under ``DIR/cache``).

``--replay`` keeps the user turns and regenerates every assistant turn without intervention, and
also with ``--cap CONFIG`` (floor at ``--percentile``) and/or ``--steer-coef C`` at
``--steer-layer``; the page and JSON then show the per-turn projections of each condition, and with
``--judge MODEL`` (OpenAI-compatible, ``--judge-url`` or ``$OPENAI_BASE_URL``) the share of replayed
turns the role-play judge scores fully in the transcript's persona, per condition.
"""

from __future__ import annotations

from pathlib import Path

from workbench.commands.scale_options import add_distributed_options, start, stop


def register(subparsers) -> None:
    parser = subparsers.add_parser("drift", help="per-token projections of a transcript onto a vector (drift views)")
    parser.add_argument("transcript", type=Path, help="assistant-axis JSON, a JSON list of messages, or JSONL")
    parser.add_argument("--axis", type=Path, required=True, help="vector file (LayerVectors .safetensors, persona_vectors or assistant-axis .pt; the axis or any vector)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--index", type=int, default=0, help="which conversation of a JSONL file (default 0)")
    parser.add_argument("--layer", type=int, help="layer to project at (default: the model's reference layer)")
    parser.add_argument("--band", type=Path, metavar="CAPPING_CONFIG",
                        help="take the default band (25th–75th percentile) from a calibrated capping config")
    parser.add_argument("--replay", action="store_true", help="regenerate the assistant turns per condition")
    parser.add_argument("--cap", type=Path, metavar="CAPPING_CONFIG", help="replay condition: floor cap from this config")
    parser.add_argument("--percentile", type=float, default=0.25, help="τ percentile of the cap (default 0.25)")
    parser.add_argument("--steer-coef", type=float, help="replay condition: add this × the axis")
    parser.add_argument("--steer-layer", type=int, default=15, help="layer to steer at (default 15)")
    parser.add_argument("--turns", type=int, help="replay at most this many user turns (default: all)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="tokens per replayed turn (default 48)")
    parser.add_argument("--judge", metavar="MODEL", help="with --replay: role-play judge model for the in-role rate")
    parser.add_argument("--judge-url", metavar="URL", help="judge endpoint (default: $OPENAI_BASE_URL)")
    parser.add_argument("--model", help="model name, HF id or local folder (default: the shipped SmolLM2-135M-Instruct)")
    parser.add_argument("--device", default="cpu")
    add_distributed_options(parser)  # shards the band's calibration projections; rank 0 does the rest
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.artifacts import inputs_hash
    from workbench.cache import JsonlCache
    from workbench.generate import Sampling
    from workbench.layers import default_layer
    from workbench.commands.vector_input import load_model_and_vectors

    from workbench.report import write_run

    from vectors.drift.capping import CappingConfig, calibrated_band
    from vectors.drift.measure import measure_drift
    from vectors.drift.report import drift_report
    from vectors.drift.replay import Condition, replay_and_measure
    from vectors.drift.steering import steering, vector_fingerprint
    from vectors.drift.transcripts import load_transcript

    transcript = load_transcript(args.transcript, args.index)
    config = CappingConfig.load(args.band) if args.band else None
    cap = CappingConfig.load(args.cap).intervention(args.percentile, "floor") if args.cap else None
    shard, device = start(args)
    model, axis = load_model_and_vectors(args.axis, args.model, device)
    layer = args.layer if args.layer is not None else default_layer(model)
    if config is None:
        config = calibrated_band(model, axis, [layer], JsonlCache(args.out / "cache" / "drift.jsonl"), shard=shard,
                                 chunk=args.chunk)
    if not shard.is_main:  # a rank other than 0 of a distributed run: rank 0 does the rest
        stop(shard)
        return 0
    band = config.band(layer)
    replays = []
    if args.replay:
        conditions = [Condition("no intervention")]
        if cap is not None:
            conditions.append(Condition(f"capped (floor, p{args.percentile:g})", (cap,),
                                        f"cap:{inputs_hash(sorted(cap.thresholds.items()))}:{vector_fingerprint(axis)}"))
        if args.steer_coef is not None:
            conditions.append(Condition(f"steered ({args.steer_coef:+g} × axis, layer {args.steer_layer})",
                                        (steering(axis, [args.steer_layer], args.steer_coef),),
                                        f"steer:{vector_fingerprint(axis)}:{args.steer_layer}:{args.steer_coef}"))
        replays = replay_and_measure(model, transcript, conditions, axis, layer, Sampling(args.max_new_tokens),
                                     JsonlCache(args.out / "cache" / "replay.jsonl"), args.turns)
    judged = None
    if replays and args.judge:
        from workbench.api import ApiConfig, ChatClient
        from vectors.drift.replay import judge_in_role

        client = ChatClient(ApiConfig.from_env(args.judge, args.judge_url))
        judged = judge_in_role(client, transcript, {r.condition: r.conversation for r in replays},
                               JsonlCache(args.out / "cache" / "judge.jsonl"))
    result = measure_drift(model, transcript, axis, layer, band, replays, judged)
    data = write_run(args.out, result.to_summary(), drift_report(result), summary_name="drift.json",
                     report_name="drift.html")
    means = ", ".join(f"{m:.2f}" for m in data["turn_means"])
    print(f"layer {layer}, band [{band[0]:.2f}, {band[1]:.2f}]; per-turn means: {means}; "
          f"{data['in_band_share']:.0%} of turns in band → {args.out / 'drift.html'}")
    stop(shard)
    for replay in data.get("replay", []):
        in_role = replay.get("judge", {}).get("in_role_rate")
        judged_text = f", judge: {in_role:.0%} of turns in role" if in_role is not None else ""
        print(f"replay [{replay['condition']}]: {replay['in_band_share_reread']:.0%} of turns in band re-read, "
              f"{replay['in_band_share_as_generated']:.0%} as generated{judged_text}")
    return 0
