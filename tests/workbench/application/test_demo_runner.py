"""The demo runner hands values between stages in memory, and write_run writes every run the same way."""

import json
from pathlib import Path

import pytest
import torch

from workbench.artifacts import LayerVectors
from workbench.demo import RunContext, run_demo
from workbench.demo.sae import SaeStage
from workbench.errors import WorkbenchError
from workbench.report import Report, write_run

PLANTED_FEATURE = 7


class PlantAxis:
    """Stands in for the axis stage: puts an axis into the context and writes no artifact."""

    title = "planted axis"

    def __init__(self, axis: LayerVectors):
        self.axis = axis

    def run(self, context: RunContext) -> dict:
        context.axis = self.axis
        context.report.section("Planted").text("an axis along one SAE decoder row")
        return {"planted": True}


def test_sae_stage_reads_the_axis_from_the_context_not_from_disk(model, tmp_path):
    from sae_analysis.saes import load_sae, resolve

    decoder_row = load_sae(resolve("shipped")).W_dec.detach()[PLANTED_FEATURE]
    vectors = torch.randn(model.cfg.n_layers, model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    vectors[18] = 3.0 * decoder_row  # the shipped SAE reads layer 18
    out = tmp_path / "run"
    summary = run_demo(model, out, quick=True, stages=[PlantAxis(LayerVectors(vectors, {"method": "planted"})), SaeStage()])

    assert not (out / "artifacts").exists()  # nothing saved, so nothing could have been read back
    decomposition = summary["sae"]["decompositions"]["assistant_axis"]
    assert list(summary["sae"]["decompositions"]) == ["assistant_axis"]  # no trait vectors in the context
    assert decomposition["top_features"][0] == PLANTED_FEATURE and decomposition["max_abs_cos"] > 0.99
    assert summary["sae"]["steering_comparison"] is None
    assert list(summary["stage_seconds"]) == ["planted axis", SaeStage.title] and summary["planted"] is True
    assert json.loads((out / "summary.json").read_text())["sae"]["decompositions"]["assistant_axis"] == decomposition
    assert (out / "sae" / "assistant_axis" / "report.html").is_file()
    page = (out / "report.html").read_text()
    assert "About this run" in page and "Planted" in page and "SAE decomposition and feature-level steering" in page


def test_a_stage_that_needs_the_axis_fails_clearly_without_one(tmp_path):
    with pytest.raises(WorkbenchError, match="needs the Assistant Axis"):
        run_demo(None, tmp_path, quick=True, stages=[SaeStage()])


def test_write_run_writes_summary_and_report(tmp_path):
    report = Report("a run")
    report.section("Results").text("<b>escaped</b>")
    summary = {"figure": 0.25, "where": Path("artifacts/x.safetensors"), "text": "caf\u00e9 \ud800"}
    assert write_run(tmp_path / "out", summary, report) is summary
    saved = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert saved == {"figure": 0.25, "where": "artifacts/x.safetensors", "text": "caf\u00e9 \ud800"}
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    write_run(tmp_path / "out", [1, 2], None, summary_name="steer.json")  # another name; no page
    assert json.loads((tmp_path / "out" / "steer.json").read_text()) == [1, 2]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "steer.json", "summary.json"]
