"""``workbench axis-compare``: vectors (e.g. the paper's released Gemma 2 27B trait vectors) sorted
by cosine with an axis at one layer, as an offline report; no model is loaded."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("axis-compare", help="sort vectors by cosine with an axis (released .pt or ours)")
    parser.add_argument("--axis", type=Path, required=True, help="axis file: released assistant_axis.pt or our .safetensors")
    parser.add_argument("--vectors", type=Path, required=True, help="folder of .pt / .safetensors vectors (e.g. trait_vectors/)")
    parser.add_argument("--layer", type=int, required=True, help="layer to compare at (Gemma 2 27B: 22)")
    parser.add_argument("--out", type=Path, required=True, help="output folder: similarity.json, report.html")
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.artifacts import check_vector_shape, load_vectors
    from workbench.report import Report, write_run

    from vectors.axis.released import load_released_vector_folder, similarity_to_axis
    from vectors.axis.report import sorted_similarity_figure

    axis = load_vectors(args.axis)  # no model here: the axis file sets the shape the others must have
    check_vector_shape(axis.vectors, axis.n_layers, axis.d_model, str(args.axis))
    vectors = load_released_vector_folder(args.vectors, axis.n_layers, axis.d_model)
    similarity = dict(sorted(similarity_to_axis(vectors, axis, args.layer).items(), key=lambda item: item[1]))
    report = Report(f"Vectors along {args.axis.name}")
    section = report.section(f"{len(similarity)} vectors from {args.vectors} against the axis at layer {args.layer}")
    section.plotly(sorted_similarity_figure(list(similarity), list(similarity.values()),
                                            f"Cosine with {args.axis.name} at layer {args.layer}"))
    section.table([{"vector": name, "cosine": value} for name, value in similarity.items()])
    write_run(args.out, {"axis": str(args.axis), "layer": args.layer, "cosine": similarity}, report,
              summary_name="similarity.json")
    names = list(similarity)
    print(f"{len(names)} vectors; most role-playing: {names[:3]}; most assistant-like: {names[-3:]} → {args.out}")
    return 0
