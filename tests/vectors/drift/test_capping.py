import pytest
import torch

from drift_helpers import QUESTION, quick_axis
from workbench.cache import JsonlCache
from workbench.chat import format_conversation, messages
from workbench.cli import main
from workbench.errors import InputFormatError, LayerError
from workbench.generate import Sampling
from workbench.report import Report
from vectors.drift.capping import CappingConfig, calibrate
from vectors.drift.report import add_replay_views
from vectors.drift.projection import project_chat, project_chats
from vectors.drift.replay import Condition, replay_and_measure
from vectors.drift.transcripts import Transcript

LAYERS = (10, 12)
DEFAULTS = ["Sure. Water boils at 100 degrees Celsius at sea level.", "Here are three tips: sleep, eat well, exercise.",
            "A bank loan is money you borrow and repay with interest."]
ROLE = messages("You are an ancient oracle.", QUESTION, "Mortal, the eternal tides whisper thy name from beyond the veil.")


@pytest.fixture(scope="module")
def config(model):
    chats = [format_conversation(model.tokenizer, messages(None, "Question?", a)) for a in DEFAULTS]
    return calibrate(model, quick_axis(model), chats, LAYERS, progress=False), chats


def test_thresholds_are_percentiles_of_default_token_projections(model, config):
    config, chats = config
    assert config.layers == LAYERS and config.percentiles == (0.01, 0.25, 0.5, 0.75)
    pooled = torch.cat([p.response_values(12) for p in project_chats(model, chats, quick_axis(model), [12], progress=False)])
    expected = torch.quantile(pooled.double(), torch.tensor([0.01, 0.25, 0.5, 0.75], dtype=torch.double))
    assert torch.allclose(config.thresholds[:, 1].double(), expected, atol=1e-4)
    assert (config.thresholds.diff(dim=0) >= 0).all()
    assert config.band(12) == (config.threshold(12, 0.25), config.threshold(12, 0.75))
    with pytest.raises(LayerError, match="layer 3 was not calibrated"):
        config.band(3)
    with pytest.raises(InputFormatError, match="percentile 0.9 was not calibrated"):
        config.threshold(12, 0.9)


def test_save_load_roundtrip_and_bad_sidecar(config, tmp_path):
    config, _ = config
    path = config.save(tmp_path / "cap")
    loaded = CappingConfig.load(path)
    assert torch.equal(loaded.thresholds, config.thresholds) and loaded.layers == config.layers
    assert torch.equal(loaded.directions, config.directions) and "created" in loaded.metadata
    (tmp_path / "cap.json").write_text('{"layers": "10"}')
    with pytest.raises(InputFormatError, match=r"cap\.json: field 'layers' must be a list"):
        CappingConfig.load(path)


def test_floor_cap_lifts_role_play_tokens_to_tau(model, config):
    config, _ = config
    axis = quick_axis(model)
    chat = format_conversation(model.tokenizer, ROLE)
    tau = config.threshold(12, 0.5)
    plain = project_chat(model, chat, axis, [12]).response_values(12)
    capped = project_chat(model, chat, axis, [12], [config.intervention(0.5, "floor")]).response_values(12)
    assert (plain < tau - 0.1).any(), "the role-play answer should start below the default median"
    assert capped.min() >= tau - 1e-3
    ceiling = project_chat(model, chat, axis, [12], [config.intervention(0.01, "ceiling", layers=[12])])
    assert ceiling.response_values(12).max() <= config.threshold(12, 0.01) + 1e-3


def test_replay_caches_turns_and_capping_keeps_turns_above_the_floor(model, config, tmp_path):
    config, _ = config
    axis = quick_axis(model)
    transcript = Transcript(tuple(ROLE[:2]) + ({"role": "assistant", "content": "x"},
                                                {"role": "user", "content": "Speak again, oracle of the mists."}))
    conditions = [Condition("none"), Condition("capped", (config.intervention(0.25),), "cap-test")]
    cache = JsonlCache(tmp_path / "replay.jsonl")
    results = replay_and_measure(model, transcript, conditions, axis, 12, Sampling(max_new_tokens=5), cache, progress=False)
    assert len(cache) == 4 and [len(r.reread.turn_means(12)) for r in results] == [2, 2]
    assert results[0].conversation[1]["content"] == ROLE[1]["content"]  # system and user turns kept
    low = config.threshold(12, 0.25)
    assert all(m >= low - 1e-3 for m in results[1].as_generated.turn_means(12))
    report = Report("replay")
    add_replay_views(report.section("Replay"), results, config.band(12))
    page = report.render()
    assert page.count("Plotly.newPlot") == 2 and "in band (re-read)" in page and "Speak again, oracle" in page
    again = replay_and_measure(model, transcript, conditions, axis, 12, Sampling(max_new_tokens=5), cache, progress=False)
    assert len(cache) == 4 and [r.conversation for r in again] == [r.conversation for r in results]


def test_cap_cli_rejects_bad_layers_and_questions(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["cap", "calibrate", "--vector", "v.safetensors", "--layers", "a-b", "--out", str(tmp_path / "c")])
    assert "expected a range like 12-19" in capsys.readouterr().err
    questions = tmp_path / "q.json"
    questions.write_text('{"q": 1}')
    code = main(["cap", "calibrate", "--vector", "v.safetensors", "--layers", "10-12", "--out", str(tmp_path / "c"),
                 "--questions", str(questions)])
    assert code == 2 and "q.json: expected a non-empty JSON list" in capsys.readouterr().err
