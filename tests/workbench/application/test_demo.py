"""`workbench demo --quick` end to end on the shipped model and SAE, then its page in headless Chromium."""

import json
import shutil

import pytest

from workbench.demo import run_demo


@pytest.fixture(scope="module")
def demo_run(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(model, out, quick=True)


def test_every_stage_reports_its_headline_figures(demo_run):
    out, summary = demo_run
    assert json.loads((out / "summary.json").read_text())["quick"] is True
    axis = summary["assistant_axis"]
    assert 0 < axis["pc1_explained_variance"] <= 1 and 0 <= axis["heldout_auc"] <= 1
    assert len(summary["drift"]["replay"]) == 2
    study = summary["drift"]["study"]
    assert [c["kind"] for c in study["conditions"]] == ["none", "cap"] and study["samples"] >= 2
    assert len(study["late_mean_capped_minus_uncapped"]["ci95"]) == 2 and study["capability_cost"]["accuracy_change"]
    assert set(summary["traits"]) == {"sycophantic", "evil", "pirate"}
    assert set(summary["sae"]["decompositions"]) == {"assistant_axis", "sycophantic", "evil", "pirate"}
    assert summary["sae"]["steering_comparison"]["by_coefficient"]
    finetune = summary["finetune"]
    assert [s["level"] for s in finetune["sets"]] == [0, 100]
    assert {row["mitigation"] for row in finetune["mitigation"]} == {
        "base", "none", "inference steer", "preventative steer", "CAFT ablation"}
    assert finetune["correlation"]["n"] == 5 and finetune["correlation"]["n_random"] > 0
    for artifact in ("assistant_axis.safetensors", "assistant_axis.json", "trait_pirate_response.safetensors"):
        assert (out / "artifacts" / artifact).is_file(), artifact
    assert list((out / "artifacts").glob("capping_*.safetensors"))


def _figures(summary: dict) -> dict:
    """A stage's summary without its timings and cache flags (what a re-run may change)."""
    return {k: _figures(v) if isinstance(v, dict) else v for k, v in summary.items() if k not in ("seconds", "reused")}


def test_rerun_reuses_cached_work(model, demo_run, tmp_path):
    """A re-run in a copy of the run folder reads the axis and trait stages' caches back: same figures,
    less time per stage. (The SAE and fine-tuning stages recompute their evaluations; re-running them
    here would only double their test time.)"""
    from workbench.demo.axis import AxisStage
    from workbench.demo.traits import TraitStage

    out, first = demo_run
    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    stages = [AxisStage(), TraitStage()]
    again = run_demo(model, copy, quick=True, stages=stages)
    assert again["assistant_axis"].pop("reused") == {"persona_vectors": True, "heldout_means": True}
    assert _figures(again["assistant_axis"]) == _figures(first["assistant_axis"])
    assert _figures(again["traits"]) == _figures(first["traits"])
    for stage in stages:
        assert again["stage_seconds"][stage.title] < first["stage_seconds"][stage.title], stage.title


def test_report_renders_offline_in_chromium(demo_run):
    from browser import console_errors, open_page

    out, _ = demo_run
    page_html = (out / "report.html").read_text()
    assert page_html.count("var CircuitsVis=") == 1 and "cdn.plot.ly" not in page_html.split("</head>")[1]
    with open_page(out / "report.html", settle_s=3.0) as page:
        assert not console_errors(page), console_errors(page)
        sections = page.find_elements("css selector", "section")
        assert len(sections) >= 8
        charts = page.find_elements("css selector", ".plotly-graph-div")
        assert charts and all(c.find_elements("css selector", ".main-svg") for c in charts)
        views = page.find_elements("css selector", ".cv-view")
        assert views and all(v.find_elements("css selector", ".colored-tokens span") for v in views)
        page.save_screenshot(str(out / "report.png"))
    assert (out / "report.png").stat().st_size > 10_000
