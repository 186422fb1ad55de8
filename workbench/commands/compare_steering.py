"""``workbench compare-steering VECTOR --sae SPEC --out DIR``: feature-level vs whole-vector steering."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare-steering", help="steer with top-k SAE features, an SAE splice, the whole vector and random directions")
    parser.add_argument("vector", type=Path, help="vector artifact (LayerVectors .safetensors)")
    parser.add_argument("--sae", default="shipped", help="'shipped', an SAE folder, or RELEASE/SAE_ID")
    parser.add_argument("--out", type=Path, required=True, help="output folder (summary.json, report.html)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--trait", default="evil", help="built-in trait whose held-out examples score steering")
    source.add_argument("--heldout", type=Path, help="held-out examples JSON ({'examples': [{question, positive, negative}]})")
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--coefficients", type=float, nargs="+", default=[-0.1, 0.05, 0.1],
                        help="multiples of the mean activation norm at the layer")
    parser.add_argument("--clamp-multiples", type=float, nargs="+", default=[0.0, 2.0])
    parser.add_argument("--n-random", type=int, default=3)
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from sae_analysis.feature_steering import ComparisonConfig
    from sae_analysis.pipeline import run_compare
    from workbench.generate import Sampling

    if args.heldout is not None:
        from vectors.traits.data import parse_heldout
        from workbench.errors import InputFormatError

        try:
            data = json.loads(args.heldout.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputFormatError(f"{args.heldout}: cannot read held-out examples ({exc})") from None
        _, examples = parse_heldout(data, str(args.heldout))
    else:
        from vectors.traits.data import load_trait

        examples = load_trait(args.trait).heldout
    config = ComparisonConfig(tuple(args.ks), tuple(args.coefficients), tuple(args.clamp_multiples), args.n_random,
                              sampling=Sampling(max_new_tokens=args.max_new_tokens))
    summary = run_compare(args.vector, args.sae, args.out, list(examples)[: args.max_examples],
                          layer=args.layer, model_name=args.model, config=config)
    print(json.dumps(summary["summary"], indent=2))
    return 0
