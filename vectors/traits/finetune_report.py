"""Report of the fine-tuning study: shift-vs-expression scatter with its null, mitigation bars,
sample generations before and after (text escaped by :mod:`workbench.report`)."""

from __future__ import annotations

from typing import Any

from workbench.report import Report


def finetune_report(summary: dict[str, Any]) -> Report:
    """The page of one :class:`vectors.traits.finetune.FinetuneStudy` summary."""
    report = Report(f"Persona vectors under fine-tuning: {summary['trait']}")
    add_finetune_sections(report, summary)
    return report


def add_finetune_sections(report: Report, summary: dict[str, Any]) -> None:
    """The study's sections (also the demo's fine-tuning stage)."""
    trait, layer = summary["trait"], summary["layer"]
    data = report.section(f"Fine-tuning ({trait}): training sets")
    data.text("The model's own answers under the trait's positive (trait) and negative (normal) system prompts, "
              "stored without the system prompt, mixed at each level; ΔP is the mean screening score.")
    data.table(summary["sets"])
    dose = summary.get("by_level", {})
    if dose.get("rows"):
        section = report.section(f"Fine-tuning ({trait}): trait by mixing level")
        section.text(
            "Trait metric of each plain fine-tune minus the base's, paired over the held-out examples (each "
            "example is scored on every model), ± its standard error; and the generation-based measure: "
            "per-token log-likelihood of the fine-tune's own answers under the base model with the trait's "
            "positive minus its negative system prompt. Monotone in the level: trait metric "
            f"{_yes_no(dose['trait_metric_monotone'])}, generation-based {_yes_no(dose['answer_persona_ratio_monotone'])}.")
        section.table(dose["rows"])
    corr = summary["correlation"]
    section = report.section(f"Fine-tuning ({trait}): finetuning shift vs trait expression")
    if "unavailable" in corr:
        section.unavailable("r(shift, expression)", corr["unavailable"])
    else:
        interval = corr["interval_95"]
        band = corr["random_band_95"]
        section.text(
            f"Pearson r at layer {layer} (last prompt token) over {corr['n']} models: r = {_f(corr['r'])}"
            f"{f' (95% CI {_f(interval[0])} to {_f(interval[1])}, Fisher)' if interval else ''}. Null: "
            f"{corr['n_random']} random unit directions give r in {_band(band)} (95% band); a share of "
            f"{_f(corr['random_share_abs_r_at_least'])} of them reach |r| at least as large."
            + (f" Other traits' vectors: {', '.join(f'{k} r = {_f(v)}' for k, v in corr['other_traits'].items())}."
               if corr["other_traits"] else " No other trait's vector was given (--other-vector).")
        )
        section.plotly(_scatter(summary, band))
    mitigation = report.section(f"Fine-tuning ({trait}): mitigation")
    mitigation.text("Trait expression (offline trait metric) and capability cost (perplexity of the base model's "
                    "neutral answers; multiple-choice accuracy) of the plain fine-tune on the strongest set, "
                    "inference-time steering against the vector, preventative steering and CAFT ablation.")
    mitigation.plotly(_bars(summary["mitigation"]))
    mitigation.table(summary["mitigation"])
    samples = report.section(f"Fine-tuning ({trait}): sample generations before and after")
    for e in summary["finetunes"]:
        samples.preformatted(f"{e['name']}: {e['responses'][0] if e['responses'] else ''}")


def _f(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _yes_no(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _band(band) -> str:
    return "n/a" if band is None else f"[{band[0]:.3f}, {band[1]:.3f}]"


def _scatter(summary: dict[str, Any], band):
    import plotly.graph_objects as go

    layer = summary["layer"]
    rows = [e for e in summary["finetunes"] if e["mitigation"] != "inference steer"]
    fig = go.Figure(go.Scatter(
        x=[e["shift_prompt_last"][layer] for e in rows], y=[e["trait_metric"] for e in rows], mode="markers+text",
        text=[e["name"] for e in rows], textposition="top center", name="models"))
    fig.update_layout(title=f"Shift along the {summary['trait']} vector vs trait metric (layer {layer}); "
                            f"r = {_f(summary['correlation'].get('r'))}, random-direction 95% band of r {_band(band)}",
                      xaxis_title="finetuning shift (last prompt token, projection on unit vector)",
                      yaxis_title="trait metric", height=450)
    return fig


def _bars(rows: list[dict[str, Any]]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=["trait metric", "neutral perplexity", "capability accuracy"])
    for col, key in enumerate(("trait_metric", "neutral_perplexity", "capability_accuracy"), start=1):
        fig.add_trace(go.Bar(x=[r["name"] for r in rows], y=[r[key] for r in rows], showlegend=False), row=1, col=col)
    fig.update_layout(height=450, title="Mitigation: trait and capability")
    return fig
