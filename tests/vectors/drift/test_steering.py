import pytest

from drift_helpers import quick_axis
from workbench.cache import JsonlCache
from workbench.chat import messages
from workbench.cli import main
from workbench.errors import InputFormatError, LayerError
from workbench.generate import Sampling, generate_responses
from workbench.report import Report
from vectors.drift.report import add_sweep_section, side_by_side
from vectors.drift.steering import steer_sweep, steering

PROMPT = "Who are you?"


def test_sweep_zero_equals_plain_negative_changes_and_is_cached(model, tmp_path):
    axis = quick_axis(model)
    sampling = Sampling(max_new_tokens=8)
    cache = JsonlCache(tmp_path / "steer.jsonl")
    rows = steer_sweep(model, axis, [PROMPT], [15], [0.0, -8.0], cache, sampling, progress=False)
    plain = generate_responses(model, [messages(None, PROMPT)], sampling, progress=False)[0]
    assert [r["coefficient"] for r in rows] == [0.0, -8.0]
    assert rows[0]["response"] == plain and rows[1]["response"] != plain
    again = steer_sweep(model, axis, [PROMPT], [15], [0.0, -8.0], cache, sampling, progress=False)
    assert again == rows and len(cache) == 2
    table = side_by_side(rows)
    assert table == [{"prompt": PROMPT, "coef +0": plain, "coef -8": rows[1]["response"]}]
    report = Report("steer")
    add_sweep_section(report.section("sweep"), rows)
    assert "coef -8" in report.render()


def test_steering_checks_layers(model):
    axis = quick_axis(model)
    assert steering(axis, [3, 4], -2.0).layers == (3, 4)
    with pytest.raises(LayerError, match="out of range"):
        steering(axis, [30], 1.0)
    with pytest.raises(InputFormatError, match="at least one layer"):
        steering(axis, [], 1.0)


def test_steer_cli_names_a_missing_vector(tmp_path, capsys):
    code = main(["steer", "--vector", str(tmp_path / "nope.safetensors"), "--layer", "15", "--coef", "-2",
                 "--out", str(tmp_path), PROMPT])
    assert code == 2 and "nope.safetensors: no such file" in capsys.readouterr().err
