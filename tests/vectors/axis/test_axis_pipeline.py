"""The Assistant Axis pipeline end to end on the shipped model (tiny sizes), resume, API + judge via the CLI."""

import json

import pytest
import torch

import vectors.axis.pipeline as axis_module
import workbench.demo.axis as demo_axis
import workbench.responses as responses_module
from openai_server import FakeOpenAI
from workbench.artifacts import LayerVectors
from workbench.demo import RunContext
from workbench.generate import Sampling
from workbench.report import Report

TINY = axis_module.AxisConfig(
    n_roles=2, n_extraction=2, n_heldout=1, sampling=Sampling(max_new_tokens=6, temperature=0.7, top_p=0.9),
    batch_size=4, progress=False,
)


REAL_GENERATE = responses_module.generate_responses


class Interrupted(RuntimeError):
    pass


def _counting_generate(monkeypatch, fail_on_call=None):
    """Wrap the real generate_responses: count prompts, and raise on one call to simulate a kill."""
    seen = {"calls": 0, "prompts": 0}

    def wrapper(model, conversations, *args, **kwargs):
        seen["calls"] += 1
        if fail_on_call is not None and seen["calls"] >= fail_on_call:
            raise Interrupted(f"killed at batch {seen['calls']}")
        seen["prompts"] += len(conversations)
        return REAL_GENERATE(model, conversations, *args, **kwargs)

    monkeypatch.setattr(responses_module, "generate_responses", wrapper)
    return seen


def test_interrupted_run_resumes_then_reuses_everything(model, tmp_path, monkeypatch):
    n_items = (4 + 2) * 3  # (4 default prompts + 2 roles) x 3 questions
    _counting_generate(monkeypatch, fail_on_call=3)
    with pytest.raises(Interrupted):
        axis_module.run_axis(model, TINY, tmp_path)
    (cache_file,) = (tmp_path / "cache").glob("responses_*.jsonl")
    assert len(cache_file.read_text().splitlines()) == 2 * TINY.batch_size

    seen = _counting_generate(monkeypatch)
    result = axis_module.run_axis(model, TINY, tmp_path)
    assert seen["prompts"] == n_items - 2 * TINY.batch_size  # nothing cached was regenerated
    s = result.summary
    assert s["n_personas"] == 2 and s["n_responses_generated"] == n_items and s["layer"] == 18
    assert 0 < s["pc1_explained_variance"] <= 1 and 0 <= s["heldout_auc"] <= 1
    assert len(s["heldout_auc_per_layer"]) == model.cfg.n_layers
    assert set(s["axis_cosine"]) == {"default:0", "default:1", "default:2", "default:3", "consultant", "storyteller"}
    assert s["judge"]["model"] is None and s["reused"] == {"persona_vectors": False, "heldout_means": False}
    axis = LayerVectors.load(tmp_path / "artifacts" / "assistant_axis.safetensors", model.cfg.n_layers, model.cfg.d_model)
    assert axis.metadata["model"] == "smollm2-135m-instruct" and axis.metadata["method"].startswith("assistant_axis")
    assert float(axis.at(18).norm()) == pytest.approx(s["axis_norm_at_layer"], rel=1e-5)

    _counting_generate(monkeypatch, fail_on_call=1)  # a third run must not generate at all
    monkeypatch.setattr(demo_axis, "DEMO_CONFIG", TINY)
    report = Report("demo")
    context = RunContext(model, tmp_path, report)
    fragment = demo_axis.AxisStage().run(context)
    assert context.axis is not None and torch.equal(context.axis.vectors, axis.vectors)  # handed on in memory
    again = fragment["assistant_axis"]
    assert again["reused"] == {"persona_vectors": True, "heldout_means": True}
    assert again["heldout_auc"] == pytest.approx(s["heldout_auc"])
    assert report.sections[0].title == "Persona space and the Assistant Axis"


def _fake_endpoint(request):
    text = request["messages"][-1]["content"]
    if "[ANSWER START]" in text:  # the role judge
        if "Arr" in text:
            return "3"
        return "I cannot tell." if "Boo" in text else "2"
    system = request["messages"][0]["content"] if request["messages"][0]["role"] == "system" else ""
    if "pirate" in system:
        return "Arr, the sea be my home and the wind my master, matey!"
    if "ghost" in system:
        return "Boo... I have haunted these cold halls for three hundred years."
    return "As an AI assistant, I am happy to help you with that question."


def test_cli_with_api_generation_and_judge(model, tmp_path, monkeypatch):
    import workbench.models
    from workbench.cli import main

    personas = tmp_path / "personas.json"
    personas.write_text(json.dumps({"default": ["", "You are a helpful assistant."], "roles": {
        "pirate": {"group": "fantastical", "prompts": ["You are a pirate."]},
        "ghost": {"group": "fantastical", "prompts": ["You are a ghost."]},
        "clerk": {"group": "assistant-like", "prompts": ["You are a clerk."]},
    }}))
    monkeypatch.setattr(workbench.models, "load_model", lambda name, device="cpu": model)
    out = tmp_path / "run"
    with FakeOpenAI(answer=_fake_endpoint) as server:
        argv = ["axis", "--model", "smollm2-135m-instruct", "--out", str(out), "--personas", str(personas),
                "--api", server.base_url, "--api-model", "remote", "--judge", "judge-model", "--min-passing", "2",
                "--n-extraction", "2", "--n-heldout", "2", "--layer", "10"]
        assert main(argv) == 0
        n_requests = len(server.requests)
        assert main(argv) == 0  # a re-run is served from the caches
        assert len(server.requests) == n_requests
    s = json.loads((out / "summary.json").read_text())
    assert s["generator"] == "api:remote" and s["layer"] == 10
    assert s["judge"]["kept_personas"] == ["pirate"] and set(s["judge"]["dropped_personas"]) == {"ghost", "clerk"}
    assert s["judge"]["unparseable"] == 4 and s["judge"]["pass_rates"]["pirate"] == 1.0
    assert s["judge"]["pass_rates"]["clerk"] == 0.0 and s["judge"]["pass_rates"]["ghost"] is None
    assert s["n_responses_used"] == 2 * 4 + 4 and s["heldout_auc"] == 1.0
    (judge_cache,) = (out / "cache").glob("judge_*.jsonl")
    records = [json.loads(line) for line in judge_cache.read_text().splitlines()]
    assert {r["raw"] for r in records if r["score"] is None} == {"I cannot tell."}
    html = (out / "report.html").read_text()
    assert html.count("Plotly.newPlot") >= 5 and "Role-play pass rates" in html and "<script src=\"http" not in html
