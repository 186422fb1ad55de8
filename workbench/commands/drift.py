"""``workbench drift TRANSCRIPT --axis AXIS --out DIR``: per-token and per-turn drift views.

Writes ``DIR/drift.html`` (offline page: per-turn lines with the default-assistant band, per-turn
means, a coloured token view per assistant turn) and ``DIR/drift.json`` (per-turn means and
per-token values). The band comes from ``--band CAPPING_CONFIG`` or, without it, from the model's
own answers to the shipped neutral questions (generated once, cached under ``DIR/cache``).
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("drift", help="per-token projections of a transcript onto a vector (drift views)")
    parser.add_argument("transcript", type=Path, help="assistant-axis JSON, a JSON list of messages, or JSONL")
    parser.add_argument("--axis", type=Path, required=True, help="LayerVectors .safetensors (the axis or any vector)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--index", type=int, default=0, help="which conversation of a JSONL file (default 0)")
    parser.add_argument("--layer", type=int, help="layer to project at (default: the model's reference layer)")
    parser.add_argument("--band", type=Path, metavar="CAPPING_CONFIG",
                        help="take the default band (25th–75th percentile) from a calibrated capping config")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model name, HF id or local folder")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.artifacts import LayerVectors, check_vector_shape
    from workbench.cache import JsonlCache
    from workbench.models import load_model

    from vectors.axis import default_layer
    from vectors.capping import CappingConfig
    from vectors.drift import calibrated_band, write_drift
    from vectors.transcripts import load_transcript

    transcript = load_transcript(args.transcript, args.index)
    config = CappingConfig.load(args.band) if args.band else None
    axis = LayerVectors.load(args.axis)  # fail on a bad file before the slow model load
    model = load_model(args.model, device=args.device)
    check_vector_shape(axis.vectors, model.cfg.n_layers, model.cfg.d_model, str(args.axis))
    layer = args.layer if args.layer is not None else default_layer(model)
    if config is None:
        config = calibrated_band(model, axis, [layer], JsonlCache(args.out / "cache" / "drift.jsonl"))
    band = config.band(layer)
    data = write_drift(model, transcript, axis, layer, band, args.out)
    means = ", ".join(f"{m:.2f}" for m in data["turn_means"])
    print(f"layer {layer}, band [{band[0]:.2f}, {band[1]:.2f}]; per-turn means: {means}; "
          f"{data['in_band_share']:.0%} of turns in band → {args.out / 'drift.html'}")
    return 0
