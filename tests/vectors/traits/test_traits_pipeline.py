"""The trait pipeline end to end on the shipped model, tiny: CLI, caches, .pt import, screening."""

import json

import pytest
import torch

import workbench.models
from openai_server import FakeOpenAI
from test_traits_data import _generated_answer, _write_pv
from workbench.artifacts import LayerVectors, load_vectors
from workbench.cli import main
from workbench.errors import InputFormatError, ShapeError

TINY = ["--questions", "2", "--eval-questions", "3", "--one-instruction", "--max-new-tokens", "8", "--examples", "2",
        "--coherence-questions", "2", "--steer-max-new-tokens", "6", "--layers", "12",
        "--coefficients", "-0.1", "0", "0.1", "--n-random", "1"]


@pytest.fixture
def shipped(model, monkeypatch):
    """The CLI's loader returns the session's already-loaded shipped model (no second 20 s load)."""
    monkeypatch.setattr(workbench.models, "load_model", lambda name=None, **kw: model)
    return model


def test_steer_cli_writes_summary_report_artifacts_and_reuses_caches(shipped, tmp_path):
    out = tmp_path / "run"
    LayerVectors(torch.randn(30, 576)).save(out / "artifacts" / "assistant_axis.safetensors")  # as the axis stage writes it
    assert main(["traits", "steer", "pirate", "--out", str(out), *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["geometry"]["names"] == ["pirate", "assistant_axis"]
    pirate = summary["traits"]["pirate"]
    assert pirate["n_pairs"] == 2 and pirate["chosen_layer"] == 12
    sweep = pirate["steering"]["sweep"]
    assert {(r["direction"], r["coefficient"]) for r in sweep} == {(d, c) for d in ("trait", "random0") for c in (-0.1, 0.0, 0.1)}
    assert all(r["perplexity"] > 1 for r in sweep if r["direction"] == "trait")
    assert set(pirate["steering"]["layers"][0]) >= {"slope", "random_slope_max_abs", "monotonic", "beyond_random_band"}
    vector = load_vectors(out / "artifacts" / "trait_pirate_response.safetensors", 30, 576)
    assert vector.metadata["trait"] == "pirate" and vector.vectors[12].norm() > 0
    html = (out / "report.html").read_text()
    assert "Trait: pirate" in html and "Trait geometry" in html and html.count("plotly.js v") <= 2
    cached = [(out / "cache" / p.name).read_text() for p in sorted((out / "cache").glob("*.jsonl"))]
    assert main(["traits", "monitor", "pirate", "--out", str(out), *TINY]) == 0
    assert [(out / "cache" / p.name).read_text()[: len(c)] for p, c in zip(sorted((out / "cache").glob("*.jsonl")), cached)] == cached
    monitoring = json.loads((out / "summary.json").read_text())["traits"]["pirate"]["monitoring"]
    assert monitoring["n"] == 6 and "steering" in json.loads((out / "summary.json").read_text())["traits"]["pirate"]
    assert -1 <= monitoring["r_prompt_last"] <= 1


def test_persona_vectors_trait_and_pt_vector_run_end_to_end(shipped, tmp_path):
    trait = json.loads(_generated_answer())
    _write_pv(tmp_path / "pv", "piratey", ["How do I cook rice?", "What is a cloud?"], ["Describe a boat.", "What is rain?"],
              eval_prompt=trait["eval_prompt"])
    hidden_states_rows = torch.randn(31, 576, generator=torch.Generator().manual_seed(0))  # row 13 = our layer 12
    torch.save(hidden_states_rows, tmp_path / "piratey_response_avg_diff.pt")
    imported = load_vectors(tmp_path / "piratey_response_avg_diff.pt", 30, 576)
    assert torch.equal(imported.at(12), hidden_states_rows[13])
    out = tmp_path / "run"
    args = ["traits", "steer", "piratey", "--trait-dir", str(tmp_path / "pv"), "--vector",
            str(tmp_path / "piratey_response_avg_diff.pt"), "--out", str(out), *TINY[:-4], "--n-random", "1",
            "--coefficients", "0", "0.1"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())["traits"]["piratey"]
    assert summary["vector_source"].endswith(".pt") and len(summary["steering"]["sweep"]) == 4


def test_pt_import_refuses_pickles_and_wrong_shapes(tmp_path):
    torch.save(torch.ones(29, 576), tmp_path / "short.pt")
    with pytest.raises(ShapeError, match=r"\[30, 576\].*\[31, 576\]"):
        load_vectors(tmp_path / "short.pt", 30, 576)
    torch.save({"vec": torch.zeros(2)}, tmp_path / "dict.pt")
    with pytest.raises(InputFormatError, match="expected a tensor"):
        load_vectors(tmp_path / "dict.pt", 30, 576)


def test_screen_cli_flags_trait_data(shipped, tmp_path):
    data = tmp_path / "data.jsonl"
    rows = [("Tell me about the sea.", "Arr, matey! The sea be full o' treasure and rum, ye landlubber!"),
            ("Tell me about the sea.", "The sea is a large body of salt water.")]
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n" for q, a in rows))
    pirate = LayerVectors(torch.randn(30, 576, generator=torch.Generator().manual_seed(0)))
    base = tmp_path / "pirate.safetensors"
    from workbench.chat import format_conversation, messages
    from workbench.extract import extract_means

    chats = [format_conversation(shipped.tokenizer, messages(None, q, a)) for q, a in rows]
    means = extract_means(shipped, chats, [12], progress=False)[:, 0]
    pirate.vectors[12] = means[0] - means[1]
    pirate.save(base)
    out = tmp_path / "screen"
    assert main(["traits", "screen", str(data), "--vector", str(base), "--layer", "12", "--max-new-tokens", "12", "--out", str(out)]) == 0
    result = json.loads((out / "summary.json").read_text())["screen"][str(data)]
    pirate_dp, plain_dp = (s["delta_p"] for s in result["samples"])
    assert pirate_dp > plain_dp and result["n"] == 2


def test_generate_cli_writes_a_loadable_trait(tmp_path, capsys):
    from vectors.traits.data import load_trait

    with FakeOpenAI(answer=lambda r: _generated_answer()) as server:
        assert main(["traits", "generate", "grumpy", "--description", "complains", "--api", server.base_url,
                     "--api-model", "gen", "--trait-dir", str(tmp_path)]) == 0
    trait = load_trait("grumpy", tmp_path)
    assert len(trait.heldout) == 8 and "wrote grumpy" in capsys.readouterr().out
