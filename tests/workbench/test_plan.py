"""``--plan``: exact counts from the planned items, throughput measured once per shape and cached."""

import torch

import vectors.axis.pipeline as axis_module
from vectors.axis.personas import load_personas, load_questions, select_questions
from vectors.axis.responses import plan_items
from workbench.generate import Sampling
from workbench.plan import Throughput, cache_file

CONFIG = axis_module.AxisConfig(n_roles=2, n_extraction=2, n_heldout=1, batch_size=8, progress=False,
                                sampling=Sampling(max_new_tokens=8, temperature=0.7, top_p=0.9))


def test_axis_plan_counts_and_caches_throughput(model, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    personas = load_personas(None).subset(2)
    items = plan_items(personas, select_questions(load_questions(None), 2, 1), model.cfg.model_name)
    plan = axis_module.plan_axis(model, CONFIG)
    assert plan.generations == len(items) and plan.judge_calls == 0 and plan.training_tokens == 0
    assert plan.generated_tokens == 8 * len(items) and plan.forward_tokens > plan.prompt_tokens > 10 * len(items)
    assert plan.throughput.source == "measured now" and cache_file().is_file()
    assert plan.estimated_seconds > 0 and 400 < plan.model_mib < 1000  # 135M float32 parameters
    again = axis_module.plan_axis(model, CONFIG, world_size=2)
    assert again.throughput.source.startswith("cached") and again.throughput.step_seconds == plan.throughput.step_seconds
    assert again.estimated_seconds < plan.estimated_seconds  # extraction split over two ranks
    text = plan.render()
    for label in ("generations", "judge calls", "forward tokens", "training tokens", "estimated time", "MiB"):
        assert label in text
    assert plan.to_summary()["generations"] == len(items)


def test_throughput_arithmetic():
    t = Throughput(prefill_seconds=2.0, step_seconds=0.5, forward_tokens_per_second=100.0, generation_batch=4,
                   prompt_tokens=32, extraction_batch=16, sequence_tokens=48, source="test")
    assert t.generation_seconds(8, 5) == 2 * (2.0 + 4 * 0.5)
    assert t.forward_seconds(250) == 2.5
    assert torch.isfinite(torch.tensor(t.generation_seconds(1, 1)))


def test_scale_options_reach_the_api_config():
    from workbench.api import ApiConfig
    from workbench.cli import build_parser
    from workbench.commands.scale_options import api_overrides

    args = build_parser().parse_args(["axis", "--out", "x", "--plan", "--distributed", "--chunk", "32",
                                      "--api-concurrency", "64", "--api-rps", "1000"])
    assert args.plan and args.distributed and args.chunk == 32
    config = ApiConfig.from_env("m", "http://127.0.0.1:1/v1", **api_overrides(args))
    assert (config.max_concurrency, config.requests_per_second) == (64, 1000.0)
    traits = build_parser().parse_args(["traits", "extract", "evil", "--plan", "--device", "cuda"])
    assert traits.plan and traits.device == "cuda" and api_overrides(traits)["max_concurrency"] == 8


def _plan_figures(text: str) -> dict[str, int]:
    """The integer rows of a printed plan (``generations``, ``training tokens``, ...)."""
    import re

    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\s+([a-z ]+?)\s{2,}(?:≤ )?([\d,]+)\b", line)
        if match:
            rows[match[1]] = int(match[2].replace(",", ""))
    return rows


def test_drift_study_and_finetune_plans_print_and_write_nothing(model, tmp_path, monkeypatch, capsys):
    """``--plan`` on ``drift-study`` and ``traits finetune``: the counts of the run, no output folder,
    nothing generated or trained (only the throughput table is written, in the cache dir)."""
    import shutil

    from drift_helpers import quick_axis

    from vectors.drift.capping import calibration_questions
    from vectors.drift.transcripts import load_transcript, shipped_drift_transcripts
    from vectors.traits.data import load_trait
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("workbench.models.load_model", lambda *args, **kwargs: model)
    axis = quick_axis(model).save(tmp_path / "axis.safetensors")
    folder = tmp_path / "transcripts"
    folder.mkdir()
    shutil.copy(shipped_drift_transcripts()[0], folder)
    turns = min(2, len(load_transcript(shipped_drift_transcripts()[0]).user_turns))
    out = tmp_path / "study"
    assert main(["drift-study", "--out", str(out), "--axis", str(axis), "--transcripts", str(folder), "--samples", "2",
                 "--turns", "2", "--max-new-tokens", "4", "--no-steer", "--capability-items", "4",
                 "--cap-grid", "12-19@0.25", "16-23@0.5", "--judge", "j", "--plan"]) == 0
    text = capsys.readouterr().out
    figures = _plan_figures(text)
    conditions = 3  # none + two caps
    assert "plan: workbench drift-study" in text and not out.exists()
    assert figures["generations"] == len(calibration_questions()) + turns * 2 * conditions
    assert figures["judge calls"] == turns * 2 * conditions and figures["training tokens"] == 0
    assert figures["forward tokens"] > figures["prompt tokens"] > 0

    out = tmp_path / "finetune"
    trait = load_trait("pirate")
    common = ["traits", "finetune", "--trait", "pirate", "--out", str(out), "--levels", "0,100", "--prevent-coef", "1",
              "--ablate", "--steps", "2", "--batch-size", "2", "--max-tokens", "32", "--questions", "3", "--plan"]
    assert main([*common, "--vector", str(axis)]) == 0
    with_vector = _plan_figures(capsys.readouterr().out)
    trained, evaluated = 2 + 1 + 1, 1 + 4 + 1  # levels + prevent + CAFT; base + those + one inference steer
    assert with_vector["training tokens"] == trained * 2 * 2 * 32
    eval_questions = min(5, len(trait.eval_questions))
    assert with_vector["generations"] == 3 * 2 + 3 + eval_questions * (evaluated + 1)  # data, screen, evaluation
    assert main([*common, "--vector", str(axis), "--all-instructions"]) == 0  # every instruction pair: 5x the data
    every_pair = _plan_figures(capsys.readouterr().out)
    assert every_pair["generations"] == 3 * len(trait.instructions) * 2 + 3 + eval_questions * (evaluated + 1)
    assert every_pair["forward tokens"] > with_vector["forward tokens"]  # screening 5x the conversations
    assert main(common) == 0
    extracting = _plan_figures(capsys.readouterr().out)
    assert extracting["generations"] == with_vector["generations"]  # the vector's responses are the data's
    assert extracting["forward tokens"] > with_vector["forward tokens"]  # plus the vector's extraction
    assert not out.exists() and sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()) == ["throughput.json"]
