"""The benchmark's own test: a tiny configuration of every figure, its JSON structure and sane ratios."""

import json
import math
from dataclasses import replace

import pytest

from workbench.benchmark import BenchConfig, run_benchmark
from workbench.benchmark.run import goal
from workbench.benchmark.table import markdown
from workbench.generate import Sampling, generate_tokens

GOALS = {"extract_all_vs_bare", "extract_to_mid_vs_bare", "speedup_all_vs_reference", "speedup_mid_vs_reference",
         "steered_vs_plain", "capped_vs_plain", "decomposition_seconds", "dashboards_seconds",
         "memory_large_vs_small",
         "plain_vs_hf_generate", "steered_vs_hf_generate", "capped_vs_hf_generate", "sampled_vs_hf_generate"}


@pytest.fixture(scope="module")
def result(model, smollm2_hf):
    config = replace(BenchConfig.quick(), threads=1)  # robust on a loaded CI machine; restored afterwards
    return run_benchmark(config, model=model, hf_model=smollm2_hf[0], progress=False)


def _positive_finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_every_goal_has_a_finite_positive_ratio(result):
    assert set(result["goals"]) == GOALS
    for name, g in result["goals"].items():
        assert _positive_finite(g["value"]), name
        assert isinstance(g["pass"], bool) and g["goal"][:2] in ("<=", ">=", "< ")
        assert g["pass_cpu_time"] is None or isinstance(g["pass_cpu_time"], bool)


def test_timings_have_min_median_and_three_repeats(result):
    figures = [result["extraction"], result["generation"], result["decomposition"], result["training"]]
    for figure in figures:
        for name, timing in figure["timings"].items():
            assert len(timing["repeats_s"]) >= 3, name
            assert 0 < timing["min_s"] <= timing["median_s"], name
    assert len(result["projection"]["seconds"]["repeats"]) >= 3
    for ratio in [*result["extraction"]["ratios"].values(), *result["generation"]["ratios"].values()]:
        assert _positive_finite(ratio)


def test_reference_computes_the_same_means(result):
    assert result["extraction"]["reference"]["max_relative_difference_at_mid_layer"] < 1e-3


def test_memory_and_projection_were_measured_in_children(result):
    sizes = result["memory"]["sizes"]
    assert set(sizes) == {"4", "16"}
    for size in sizes.values():
        assert size["peak_rss_mib"]["min"] >= size["rss_before_mib"]["min"] > 100  # the model is loaded
    assert result["projection"]["tokens"] >= 300
    assert result["projection"]["peak_increase_mib"]["min"] >= 0


def test_json_records_machine_and_versions_and_table_renders(result):
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and machine["torch_threads"] >= 1
    assert set(machine["versions"]) >= {"torch", "transformers", "transformer-lens"}
    json.dumps(result)
    assert markdown(result).count("\n|") >= len(GOALS)


def test_threads_are_recorded_and_restored(result):
    import torch

    assert result["machine"]["torch_threads"] == 1
    assert torch.get_num_threads() == result["threads_default"]


def test_goal_pass_and_fail():
    assert goal(1.0, "<=", 1.05, "x")["pass"] and not goal(1.1, "<=", 1.05, "x")["pass"]
    assert goal(2.0, ">=", 1.5, "x")["pass"] and not goal(1.4, ">=", 1.5, "x")["pass"]
    assert goal(1.9, "<", 2.0, "x")["pass"] and not goal(2.0, "<", 2.0, "x")["pass"]
    assert goal(1.1, "<=", 1.05, "x", value_cpu=1.0)["pass_cpu_time"] and goal(1.0, "<=", 1.05, "x")["pass_cpu_time"] is None


def test_generation_without_eos_stop_gives_every_token(model):
    prompts = [model.tokenizer("Hi", add_special_tokens=False)["input_ids"]] * 2
    out = generate_tokens(model, prompts, Sampling(max_new_tokens=5, stop_at_eos=False), progress=False)
    assert [len(t) for t in out] == [5, 5]


def test_unknown_figure_is_refused():
    from workbench.errors import InputFormatError

    with pytest.raises(InputFormatError, match="unknown figures"):
        run_benchmark(replace(BenchConfig.quick(), figures=("nope",)), model=object(), hf_model=object())


def test_training_step_is_measured_beside_the_forward_pass(result):
    rates = result["training"]["tokens_per_s"]
    assert set(rates) == {"forward", "lora_step", "lora_step_naive"}
    assert all(_positive_finite(rate["best"]) for rate in rates.values())
    assert "lora_step" in markdown(result)
