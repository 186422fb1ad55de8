"""`workbench drift-study` end to end at a tiny size: a folder of transcripts, six capping settings,
summary.json and report.html with the trade-off plot (one point per setting, the chosen marked)."""

import json
import shutil

from workbench.cli import main
from vectors.drift.transcripts import shipped_drift_transcripts

GRID = ["12-19@0.25", "8-15@0.25", "16-23@0.25", "20-27@0.25", "12-19@0.5", "16-23@0.5"]


def test_drift_study_cli_writes_the_tradeoff_over_six_settings(model, tmp_path, monkeypatch):
    from drift_helpers import quick_axis

    axis_path = quick_axis(model).save(tmp_path / "axis.safetensors")
    folder = tmp_path / "transcripts"
    folder.mkdir()
    shutil.copy(shipped_drift_transcripts()[0], folder)
    monkeypatch.setattr("workbench.models.load_model", lambda *args, **kwargs: model)
    out = tmp_path / "study"
    code = main(["drift-study", "--out", str(out), "--axis", str(axis_path), "--transcripts", str(folder),
                 "--samples", "2", "--turns", "2", "--max-new-tokens", "4", "--no-steer", "--capability-items", "4",
                 "--cap-grid", *GRID, "--chosen", "12-19@0.5"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    caps = [c for c in summary["conditions"] if c["kind"] == "cap"]
    assert [c["setting"] for c in caps] == GRID and summary["chosen"] == "12-19@0.5"
    assert all(c["capability"]["nll_change"]["ci95"] for c in caps)
    html = (out / "report.html").read_text()
    assert "Trade-off" in html and "cap L12-19 p0.5 (chosen)" in html
    assert main(["drift-study", "--out", str(out), "--axis", str(axis_path), "--cap-grid", "19-12@0.25"]) == 2
