"""The drift study: metrics read against the calibrated thresholds they name, and a tiny end-to-end
study on the shipped model (conditions, intervals, capability cost, the report)."""

import math

import pytest
import torch

from workbench.api import ApiConfig, ChatClient
from workbench.cache import JsonlCache
from workbench.generate import Sampling
from vectors.capability import load_choice_items, load_neutral_answers
from vectors.drift.capping import CappingConfig
from vectors.drift.study import CapSetting, StudyConfig, judge_in_role_rates, run_study
from vectors.drift.study_metrics import DriftThresholds, condition_drift, drift_difference, run_metrics
from vectors.drift.study_report import study_report
from vectors.drift.transcripts import load_transcript, shipped_drift_transcripts
from drift_helpers import quick_axis
from openai_server import FakeOpenAI

PERCENTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _config(layer=18):
    # thresholds at layer 18: p05 −10, p25 −2, p50 3, p75 8, p95 20; at layer 17 other values
    thresholds = torch.tensor([[-11.0, -10.0], [-1.0, -2.0], [2.0, 3.0], [7.0, 8.0], [19.0, 20.0]])
    return CappingConfig(torch.ones(2, 4), (17, 18), PERCENTILES, thresholds, {})


def test_metrics_use_the_thresholds_they_name():
    thresholds = DriftThresholds.from_config(_config(), 18, floor_percentile=0.25)
    assert (thresholds.floor, thresholds.range_low, thresholds.range_high, thresholds.band) == (-2.0, -10.0, 20.0, (-2.0, 8.0))
    summary = thresholds.to_summary()
    assert summary["floor"] == {"percentile": 0.25, "value": -2.0}
    assert summary["band"] == {"percentiles": [0.25, 0.75], "values": [-2.0, 8.0]}
    # turns: in band, exactly at the floor (a capped turn: in band, not below), below the floor,
    # above the band (not in band, not below), below the default range
    run = run_metrics([5.0, -2.0, -3.0, 12.0, -15.0, 1.0], thresholds)
    assert run.in_band_share == pytest.approx(3 / 6)
    assert run.below_floor_share == pytest.approx(2 / 6)
    assert run.first_exit_turn == 5
    assert run.late_mean == pytest.approx((12.0 - 15.0 + 1.0) / 3)
    # a floor at the median names the median: the same turns count as below it
    median = DriftThresholds.from_config(_config(), 18, floor_percentile=0.5)
    assert median.floor == 3.0 and run_metrics([5.0, -2.0, -3.0, 12.0, -15.0, 1.0], median).below_floor_share == pytest.approx(4 / 6)
    assert run_metrics([1.0, 2.0], thresholds).first_exit_turn == 3  # never left: turns + 1


def test_uncalibrated_percentile_is_refused():
    with pytest.raises(Exception, match="percentile 0.1 was not calibrated"):
        DriftThresholds.from_config(_config(), 18, floor_percentile=0.1)


def test_difference_of_shifted_condition_excludes_zero():
    thresholds = DriftThresholds.from_config(_config(), 18)
    base = [[[0.0, -1.0, -3.0, -4.0], [1.0, -2.0, -2.5, -5.0]], [[2.0, 0.0, -1.0, -3.0], [0.5, -1.0, -4.0, -3.5]]]
    capped = [[[v + 6 for v in run] for run in conversation] for conversation in base]
    plain, treated = condition_drift("none", base, thresholds), condition_drift("cap", capped, thresholds)
    difference = drift_difference(treated, plain)
    assert difference["late_mean"].estimate == pytest.approx(6.0) and difference["late_mean"].excludes_zero()
    assert difference["below_floor_share"].estimate < 0
    assert len(plain.curve) == 4 and plain.curve[0].low <= plain.curve[0].estimate <= plain.curve[0].high


def test_tiny_study_on_the_shipped_model(model, tmp_path):
    transcripts = [load_transcript(p) for p in shipped_drift_transcripts()[:2]]
    grid = (CapSetting.parse("12-19@0.25"), CapSetting.parse("16-23@0.5"))
    config = StudyConfig(cap_grid=grid, chosen=grid[0], samples=2, max_turns=2, steer_coefficient=2.0,
                         sampling=Sampling(max_new_tokens=6, temperature=0.7, top_p=0.9),
                         calibration_sampling=Sampling(max_new_tokens=12))
    study = run_study(model, quick_axis(model), transcripts, config, JsonlCache(tmp_path / "cache.jsonl"),
                      load_choice_items()[:4], load_neutral_answers()[:2], progress=False)
    assert [c.kind for c in study.conditions] == ["none", "cap", "cap", "steer"]
    summary = study.to_summary()
    assert summary["thresholds"]["floor"]["percentile"] == 0.25
    none, chosen = study.conditions[0], study.chosen
    assert none.capability is None and chosen.capability is not None
    assert len(chosen.drift.turn_means) == 2 and all(len(c) == 2 for c in chosen.drift.turn_means)
    assert all(math.isfinite(i.estimate) for i in chosen.difference.values())
    # steering toward the axis raises the late-turn projection of what the model writes
    assert study.condition("steer +2×axis L15").difference["late_mean"].estimate > 0
    with FakeOpenAI(lambda request: "3") as server:
        client = ChatClient(ApiConfig(server.base_url, "judge", backoff_base_s=0.01))
        rates = judge_in_role_rates(study, transcripts, client, JsonlCache(tmp_path / "judge.jsonl"), progress=False)
        calls = len(server.requests)
    # one call per distinct (question, answer): identical short replies are judged once
    assert 0 < calls <= 4 * 2 * 2 * 2 and all(rate.estimate == 1.0 for rate in rates.values())
    html = study_report(study, rates).render()
    assert "Trade-off" in html and "cap L16-23 p0.5" in html and "Role-play judge" in html
