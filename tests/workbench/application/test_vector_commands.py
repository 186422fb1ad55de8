"""Every vector-taking command reads every vector format the workbench imports.

A persona_vectors ``.pt`` (``[n_layers + 1, d_model]``, row i = ``hidden_states[i]``) written here in
the shipped model's shape runs through ``decompose``, ``compare-steering``, ``steer``, ``drift``,
``cap calibrate`` and ``traits screen`` (the CLI in-process, the shared model, tiny sizes); one of
another model's shape (Qwen3-4B: 36 layers, d_model 2560) fails with exit status 2 naming both
shapes, before any model load.
"""

import json

import pytest
import torch

from workbench.artifacts import LayerVectors
from workbench.cli import main
from workbench.unavailable import EXIT_ERROR

SHIPPED = (30, 576)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("vector_commands")
    generator = torch.Generator().manual_seed(0)
    torch.save(torch.randn(SHIPPED[0] + 1, SHIPPED[1], generator=generator), root / "evil_response_avg_diff.pt")
    torch.save(torch.randn(37, 2560, generator=generator), root / "qwen3_4b_evil_response_avg_diff.pt")
    torch.save(torch.randn(*SHIPPED, generator=generator), root / "assistant_axis.pt")
    LayerVectors(torch.randn(*SHIPPED, generator=generator)).save(root / "ours.safetensors")
    (root / "questions.json").write_text(json.dumps(["What is the capital of France?"]))
    (root / "transcript.json").write_text(json.dumps([
        {"role": "user", "content": "Tell me about the sea."}, {"role": "assistant", "content": "The sea is vast."},
        {"role": "user", "content": "And the stars?"}, {"role": "assistant", "content": "Stars are far away."}]))
    (root / "screen.jsonl").write_text(json.dumps({"messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]}) + "\n")
    from sae_analysis.saes import SHIPPED_DIR

    lines = (SHIPPED_DIR / "corpus.jsonl").read_text().splitlines()
    (root / "corpus.jsonl").write_text("\n".join(lines[:4]) + "\n")
    return root


def _commands(root, vector, out):
    """Each vector-taking command with ``vector``, at the smallest size that still runs it."""
    return {
        "steer": ["steer", "Hi", "--vector", str(vector), "--layer", "10", "--coef", "2", "--max-new-tokens", "3",
                  "--out", str(out / "steer")],
        "cap calibrate": ["cap", "calibrate", "--vector", str(vector), "--layers", "9-10", "--max-new-tokens", "3",
                          "--questions", str(root / "questions.json"), "--out", str(out / "cap")],
        "drift": ["drift", str(root / "transcript.json"), "--axis", str(vector), "--layer", "10",
                  "--band", str(out / "cap.safetensors"), "--out", str(out / "drift")],
        "traits screen": ["traits", "screen", str(root / "screen.jsonl"), "--vector", str(vector), "--layer", "10",
                          "--max-new-tokens", "3", "--out", str(out / "screen")],
        "decompose": ["decompose", str(vector), "--sae", "shipped", "--k", "3", "--corpus", str(root / "corpus.jsonl"),
                      "--out", str(out / "decompose")],
        "compare-steering": ["compare-steering", str(vector), "--sae", "shipped", "--ks", "1", "--coefficients", "0.1",
                             "--clamp-multiples", "0", "--n-random", "1", "--max-examples", "1", "--max-new-tokens", "2",
                             "--corpus", str(root / "corpus.jsonl"), "--out", str(out / "compare")],
    }


def _share_model(monkeypatch, model, loads):
    import workbench.models

    def load(name=None, *args, **kwargs):
        loads.append(name)
        return model

    monkeypatch.setattr(workbench.models, "load_model", load)


def test_persona_vectors_pt_runs_through_every_vector_command(model, files, tmp_path, monkeypatch, capsys):
    loads = []
    _share_model(monkeypatch, model, loads)
    commands = _commands(files, files / "evil_response_avg_diff.pt", tmp_path)
    for name, argv in commands.items():  # in order: drift reads the band cap calibrate wrote
        assert main(argv) == 0, f"{name}: {capsys.readouterr().err}"
    assert len(loads) == len(commands)
    assert (tmp_path / "steer" / "steer.json").is_file() and (tmp_path / "cap.safetensors").is_file()
    assert (tmp_path / "drift" / "drift.json").is_file() and (tmp_path / "screen" / "summary.json").is_file()
    for run in ("decompose", "compare"):
        summary = json.loads((tmp_path / run / "summary.json").read_text())
        assert summary["vector_metadata"]["method"] == "imported persona_vectors .pt"
        assert "file rows 1..30 -> layers 0..29" in summary["vector_metadata"]["layer_convention"]


@pytest.mark.parametrize("name", ["steer", "cap calibrate", "drift", "traits screen", "decompose", "compare-steering"])
def test_vector_of_another_model_fails_naming_both_shapes_before_loading(name, model, files, tmp_path, monkeypatch, capsys):
    loads = []
    _share_model(monkeypatch, model, loads)
    argv = _commands(files, files / "qwen3_4b_evil_response_avg_diff.pt", tmp_path)[name]
    if name == "drift":  # no band file in this test: drift would take its band from the model's answers
        argv = argv[: argv.index("--band")] + argv[argv.index("--band") + 2 :]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "qwen3_4b_evil_response_avg_diff.pt" in err and "d_model 2560 but the model has 576" in err
    assert "(37, 2560)" in err and "[30, 576]" in err and "[31, 576]" in err
    assert loads == []  # the shipped model's card gave its shape: no model was loaded to find out


@pytest.mark.parametrize("vector", ["assistant_axis.pt", "ours.safetensors"])
def test_other_formats_steer(vector, model, files, tmp_path, monkeypatch):
    _share_model(monkeypatch, model, [])
    assert main(_commands(files, files / vector, tmp_path)["steer"]) == 0
    rows = json.loads((tmp_path / "steer" / "steer.json").read_text())
    assert rows[0]["coefficient"] == 2.0 and rows[0]["layers"] == [10]
