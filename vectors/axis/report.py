"""Report sections and figures of persona space: cosine heatmaps, PCA, the sorted axis line, AUC.

Figures are plotly (inlined once per page by :class:`workbench.report.Report`, so the page works
offline). :func:`sorted_similarity_figure` is shared by a run's persona ranking and by released
vectors (e.g. the paper's 240 Gemma 2 27B trait vectors) plotted against an axis.
"""

from __future__ import annotations

from typing import Sequence

from workbench.report import Report
from workbench.unavailable import Unavailable, by_reason

from vectors.axis import space

GROUP_COLOURS = {"default": "#1f77b4", "assistant-like": "#2ca02c", "mid": "#ff7f0e", "fantastical": "#d62728", "role": "#9467bd"}


def heatmap_figure(matrix, names: Sequence[str], title: str):
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=matrix.tolist(), x=list(names), y=list(names), colorscale="RdBu", zmid=0,
                               zmin=-1, zmax=1, colorbar={"title": "cosine"}))
    fig.update_layout(title=title, height=650, yaxis={"autorange": "reversed"})
    return fig


def pca_figure(coordinates, names: Sequence[str], colour_values: Sequence[float], explained: Sequence[float], title: str):
    """PC1 × PC2 scatter, points coloured by ``colour_values`` (e.g. cosine with the axis)."""
    import plotly.graph_objects as go

    y = coordinates[:, 1].tolist() if coordinates.shape[1] > 1 else [0.0] * len(names)
    fig = go.Figure(go.Scatter(
        x=coordinates[:, 0].tolist(), y=y, mode="markers+text", text=list(names), textposition="top center",
        marker={"size": 11, "color": [float(v) for v in colour_values], "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": "axis cosine"}},
    ))
    second = f"{explained[1]:.1%}" if len(explained) > 1 else "n/a"
    fig.update_layout(title=title, xaxis_title=f"PC1 ({explained[0]:.1%})", yaxis_title=f"PC2 ({second})", height=600)
    return fig


def sorted_similarity_figure(
    names: Sequence[str], similarities: Sequence[float], title: str, groups: Sequence[str] | None = None,
    n_labels: int = 5,
):
    """Vectors sorted along one line by similarity to an axis, most role-playing (left) to most
    assistant-like (right); the ``n_labels`` most extreme at each end are labelled (all when few)."""
    import plotly.graph_objects as go

    order = sorted(range(len(names)), key=lambda i: similarities[i])
    sims = [float(similarities[i]) for i in order]
    labelled = set(order[:n_labels]) | set(order[-n_labels:]) if len(order) > 4 * n_labels else set(order)
    colours = [GROUP_COLOURS.get(groups[i], "#7f7f7f") for i in order] if groups else "#1f77b4"
    fig = go.Figure(go.Scatter(
        x=sims, y=[0.0] * len(sims), mode="markers+text",
        text=[names[i] if i in labelled else "" for i in order],
        textposition=["top center" if k % 2 else "bottom center" for k in range(len(order))],
        hovertext=[f"{names[i]}: {similarities[i]:.3f}" for i in order], hoverinfo="text",
        marker={"size": 10, "color": colours},
    ))
    fig.update_layout(title=title, xaxis_title="cosine with the axis (← role-playing · assistant-like →)",
                      yaxis={"visible": False, "range": [-1, 1]}, height=320)
    return fig


def auc_figure(auc_per_layer: Sequence[float], layer: int, by_group: dict[str, Sequence[float]] | None = None):
    """Held-out AUC per layer, all roles (thick) and each role group against the default (thin)."""
    import plotly.graph_objects as go

    layers = list(range(len(auc_per_layer)))
    fig = go.Figure(go.Scatter(x=layers, y=list(auc_per_layer), mode="lines+markers", name="default vs all roles",
                               line={"width": 3}))
    for group, aucs in (by_group or {}).items():
        fig.add_trace(go.Scatter(x=layers, y=list(aucs), mode="lines", name=f"default vs {group}",
                                 line={"color": GROUP_COLOURS.get(group), "dash": "dot"}))
    fig.add_vline(x=layer, line_dash="dash", annotation_text=f"layer {layer}")
    fig.update_layout(title="Held-out AUC per layer (default vs role responses projected on the axis)",
                      xaxis_title="layer (blocks.L.hook_resid_post)", yaxis_title="ROC AUC", yaxis_range=[0, 1.02], height=400)
    return fig


def add_axis_sections(report: Report, result) -> None:
    """Add the persona-space section of an :class:`vectors.axis.pipeline.AxisResult` to ``report``;
    each figure the run could not compute is a line saying why."""
    s = result.summary
    layer = s["layer"]
    section = report.section("Persona space and the Assistant Axis")
    surviving = s["surviving_responses"]
    section.text(
        f"Model {s['model']}, layer {layer}: {s['n_personas']} roles and {s['n_default_prompts']} default prompts, "
        f"{s['n_responses_used']} of {s['n_responses_generated']} responses used: extraction "
        f"{surviving['extraction']['default']} default + {surviving['extraction']['roles']} role, held-out "
        f"{surviving['heldout']['default']} default + {surviving['heldout']['roles']} role."
    )
    for reason, figures in by_reason(s["unavailable"]).items():
        section.unavailable(figures, reason)
    judge = s["judge"]
    if judge["model"] is None:
        section.note("No judge configured: every non-empty response was kept (no role-play filter).")
    else:
        section.text(f"Judge {judge['model']}: kept responses scored 3, roles with ≥ {judge['min_passing']} of them "
                     f"(--min-passing); {judge['unparseable']} unparseable answers (kept with their raw text in the "
                     f"judge cache), {judge['failed']} failed requests.")
        section.table(judge["table"], "Role-play pass rates (extraction responses; pass rate = scored 3 / scored)")
        if judge["dropped_personas"]:
            section.note(f"Dropped (too few in-role responses): {', '.join(judge['dropped_personas'])}")
    if isinstance(result.axis, Unavailable):
        return
    if isinstance(result.pca, space.Pca):
        section.text(f"PC1 explains {s['pc1_explained_variance']:.1%} of the persona-vector variance; cos(PC1, axis) = "
                     f"{s['pc1_axis_cosine']:.3f} (PC1 oriented towards the axis).")
    if "heldout_auc" not in s["unavailable"]:
        section.text(f"Held-out AUC at layer {layer}: {s['heldout_auc']:.3f} (default vs each group: "
                     + ", ".join(f"{g} {a:.3f}" for g, a in s["heldout_auc_by_group"].items()) + ").")
    at_layer = result.vectors[:, layer]
    section.plotly(heatmap_figure(space.cosine_matrix(at_layer, centered=True), result.unit_names,
                                  f"Centered cosine similarity of persona vectors (layer {layer})"))
    section.plotly(heatmap_figure(space.cosine_matrix(at_layer), result.unit_names,
                                  f"Raw cosine similarity of persona vectors (layer {layer})"))
    cosines = [s["axis_cosine"][name] for name in result.unit_names]
    if isinstance(result.pca, space.Pca):
        section.plotly(pca_figure(result.pca.coordinates, result.unit_names, cosines,
                                  result.pca.explained_variance_ratio.tolist(), f"PCA of persona vectors (layer {layer})"))
    section.plotly(sorted_similarity_figure(result.unit_names, cosines, f"Persona vectors along the Assistant Axis (layer {layer})",
                                            result.unit_groups))
    if "heldout_auc" not in s["unavailable"]:
        section.plotly(auc_figure(list(s["heldout_auc_per_layer"].values()), layer, s["heldout_auc_per_layer_by_group"]))
    if "heldout_mean_projection_by_group" not in s["unavailable"]:
        section.table([{"group": g, "mean projection": v} for g, v in s["heldout_mean_projection_by_group"].items()],
                      f"Held-out responses: mean projection on the unit axis at layer {layer}")
    section.table([{"persona": n, "group": g, "axis cosine": s["axis_cosine"][n]}
                   for n, g in sorted(zip(result.unit_names, result.unit_groups), key=lambda t: s["axis_cosine"][t[0]])],
                  "Centered cosine with the axis, most role-playing first")
    if isinstance(result.pca, space.Pca):
        section.table([{"PC": i + 1, "explained variance": v} for i, v in enumerate(s["explained_variance"])], "PCA")
