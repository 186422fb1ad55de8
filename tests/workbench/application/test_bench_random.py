"""``workbench bench --random-weights``: the GPU benchmark's code, run on CPU at a tiny Gemma 2 size."""

import json

import pytest

from workbench.benchmark.random_model import hooked_config
from workbench.cli import main
from workbench.errors import InputFormatError


def test_random_weights_bench_runs_on_cpu_and_agrees_with_the_reference(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--random-weights", "tiny-gemma-2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["complete"] and result["model"]["name"] == "random-weights:tiny-gemma-2"
    assert result["model"]["dtype"] == "torch.bfloat16"
    assert {"extraction", "generation", "decomposition"} <= set(result) and "memory" not in result
    assert [r["batch_size"] for r in result["batch_scaling"]["rows"]] == [1, 4]
    assert all(r["tokens_per_second"] > 0 for r in result["batch_scaling"]["rows"])
    # our hooked model and the HF reference read the same random weights: bf16 rounding apart
    assert result["extraction"]["reference"]["max_relative_difference_at_mid_layer"] < 0.05
    assert result["extraction"]["ratios"]["extract_all_vs_bare"] > 0


def test_real_configs_resolve_offline():
    assert (hooked_config("gemma-2-27b-it").n_layers, hooked_config("gemma-2-27b-it").d_model) == (46, 4608)
    assert hooked_config("gemma-2-2b-it").n_layers == 26
    with pytest.raises(InputFormatError, match="random-weights"):
        hooked_config("gpt-5")
