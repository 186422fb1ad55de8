"""``workbench compare-steering VECTOR --sae SPEC --out DIR``: feature-level vs whole-vector steering.

The command loads (vector file, SAE, model, corpus, held-out examples),
:func:`sae_analysis.pipeline.compare_vector` computes, :func:`sae_analysis.report.comparison_report`
draws, and :func:`sae_analysis.runs.write_sae_run` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # the CLI imports every command module for --help: nothing heavy at import time
    from sae_analysis.feature_steering import Baselines, ComparisonConfig
    from workbench.metrics import TraitExample


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare-steering", help="steer with top-k SAE features, an SAE splice, the whole vector and random directions")
    parser.add_argument("vector", type=Path,
                        help="vector file (LayerVectors .safetensors, persona_vectors or assistant-axis .pt)")
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
    parser.add_argument("--corpus", type=Path, default=None,
                        help="corpus JSONL for the activation norm and splice clamps (default: shipped)")
    parser.add_argument("--output-score-ks", type=int, nargs="*", default=[1, 5],
                        help="k of the output-score rows: features ranked by how much steering with each alone raises "
                             "the trait metric (on held-out examples beyond --max-examples); none: no such rows")
    parser.add_argument("--instruction", default=None,
                        help="the trait's positive instruction (prompting rows, behavioural score); default: the "
                             "built-in trait's first one; with --heldout and no --instruction there are no such rows")
    parser.add_argument("--judge-api", help="base URL of an LLM judge (OpenAI-compatible) scoring each generation's trait")
    parser.add_argument("--judge-model", help="judge model name; enables the judge column")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from sae_analysis.feature_steering import Baselines, ComparisonConfig
    from workbench.generate import Sampling

    instruction, name, description = args.instruction, args.trait, ""
    if args.heldout is not None:
        from vectors.traits.data import parse_heldout
        from workbench.errors import InputFormatError

        try:
            data = json.loads(args.heldout.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputFormatError(f"{args.heldout}: cannot read held-out examples ({exc})") from None
        description, examples = parse_heldout(data, str(args.heldout))
        name = args.heldout.stem
    else:
        from vectors.traits.data import load_trait

        trait = load_trait(args.trait)
        examples, description = trait.heldout, trait.description
        instruction = instruction or trait.instructions[0].pos
    judge = None
    if args.judge_model:
        from workbench.api import ApiConfig, ChatClient

        judge = ChatClient(ApiConfig.from_env(args.judge_model, args.judge_api))
    config = ComparisonConfig(tuple(args.ks), tuple(args.coefficients), tuple(args.clamp_multiples), args.n_random,
                              sampling=Sampling(max_new_tokens=args.max_new_tokens),
                              output_score_ks=tuple(args.output_score_ks))
    examples = list(examples)
    baselines = Baselines(instruction, tuple(examples[args.max_examples:]), judge, name, description)
    summary = run_compare(args.vector, args.sae, args.out, examples[: args.max_examples],
                          layer=args.layer, model_name=args.model, config=config, corpus=args.corpus,
                          baselines=baselines)
    print(json.dumps(summary["summary"], indent=2))
    return 0


def run_compare(
    vector_path: str | Path, sae: str, out: str | Path, examples: Sequence[TraitExample],
    questions: Sequence[str] | None = None, layer: int | None = None, model_name: str | None = None,
    config: ComparisonConfig | None = None, corpus: str | Path | None = None, corpus_limit: int | None = 200,
    progress: bool = True, model=None, baselines: Baselines | None = None,
) -> dict:
    """Load, compare, draw and write one vector's run; the summary.

    ``model``: an already loaded model, else loaded by name (``model_name`` or the SAE's pair); the
    corpus (default: the shipped one) sets the activation norm and the splice clamps.
    """
    from workbench.artifacts import load_vectors
    from workbench.errors import InputFormatError
    from workbench.models import card_shape, load_model

    from sae_analysis.feature_steering import Baselines, ComparisonConfig
    from sae_analysis.pipeline import compare_vector, corpus_rows, vector_for_sae
    from sae_analysis.report import comparison_report
    from sae_analysis.saes import SHIPPED_DIR, default_model_name, load_sae, resolve, sae_layer
    from sae_analysis.runs import write_sae_run

    spec = resolve(sae)
    layer = sae_layer(spec, layer)  # a layer without an SAE fails before the model loads
    if model is None:
        model_name = model_name or default_model_name(spec)
        if model_name is None:
            raise InputFormatError(f"no default model for SAE {spec.id}; pass --model")
        load_vectors(vector_path, *card_shape(model_name))  # fail on a bad file before the slow model load
        model = load_model(model_name)
    vectors = load_vectors(vector_path, model.cfg.n_layers, model.cfg.d_model)
    vector, layer = vector_for_sae(vectors, spec, layer, str(vector_path))
    rows = corpus_rows(model, corpus or SHIPPED_DIR / "corpus.jsonl", corpus_limit)
    result = compare_vector(vector, layer, load_sae(spec), spec, model, rows, examples, questions,
                            config or ComparisonConfig(), progress, baselines or Baselines())
    return write_sae_run(out, vector_path, vectors, result, comparison_report(result, Path(vector_path).name))
