"""A missing figure is a line in the report, not a lost run.

``workbench axis`` with a judge (a real OpenAI-compatible server on loopback) that rejects every
answer, or rejects only the held-out ones, must still write summary.json and report.html saying
which figures are unavailable and why (per-role pass rates, surviving held-out responses, roles
dropped, the --min-passing in force) and exit 3. The pass-rate table has the same columns with the
workbench's own judge template and with assistant-axis role files carrying their own eval_prompt.
"""

import json

import pytest

from openai_server import FakeOpenAI
from workbench.cli import main
from workbench.unavailable import EXIT_ERROR, EXIT_PARTIAL

ROLES = ("pirate", "ghost", "clerk")
OFF_TASK = "Here is my considered answer (5e2de22e). I would reflect carefully, weigh each option, and act kindly."


def _personas_json(tmp_path):
    path = tmp_path / "personas.json"
    path.write_text(json.dumps({"default": ["", "You are a helpful assistant."], "roles": {
        role: {"group": "fantastical", "prompts": [f"You are a {role}."]} for role in ROLES}}))
    return path


def _aa_roles(tmp_path, eval_prompt="Is this answer in role? Q: {question} A: {answer} Reply 0-3."):
    folder = tmp_path / "roles" / "instructions"
    folder.mkdir(parents=True)
    (folder / "default.json").write_text(json.dumps({"instruction": [{"pos": ""}, {"pos": "You are {model_name}."}]}))
    for role in ROLES:
        (folder / f"{role}.json").write_text(json.dumps(
            {"instruction": [{"pos": f"You are a {role}."}], "questions": ["Who are you?"], "eval_prompt": eval_prompt}))
    return folder


def _questions(tmp_path):
    path = tmp_path / "questions.json"
    path.write_text(json.dumps({
        "extraction": [{"id": i, "question": f"Extraction question {i}?"} for i in range(2)],
        "heldout": [{"id": 10 + i, "question": f"Held-out question {i}?"} for i in range(2)]}))
    return path


def _endpoint(pass_extraction: bool):
    def answer(request):
        text = request["messages"][-1]["content"]
        if "Q: " in text or "[ANSWER START]" in text:  # a judge prompt: ours or the role file's
            return "3" if pass_extraction and "Extraction question" in text else OFF_TASK
        system = request["messages"][0]["content"] if request["messages"][0]["role"] == "system" else ""
        return f"Arr, I speak as one who is {system or 'nobody'}."
    return answer


def _run_axis(model, monkeypatch, out, personas, questions, pass_extraction, capsys=None):
    import workbench.models

    monkeypatch.setattr(workbench.models, "load_model", lambda name, device="cpu": model)
    with FakeOpenAI(answer=_endpoint(pass_extraction)) as server:
        status = main(["axis", "--out", str(out), "--personas", str(personas), "--questions", str(questions),
                       "--api", server.base_url, "--api-model", "remote", "--judge", "judge-model",
                       "--min-passing", "2", "--layer", "10", "--batch-size", "8"])
        return status, server.requests


@pytest.mark.parametrize("source", ["workbench template", "assistant-axis role files"])
def test_axis_with_a_judge_rejecting_everything_writes_why(model, tmp_path, monkeypatch, capsys, source):
    personas = _personas_json(tmp_path) if source == "workbench template" else _aa_roles(tmp_path)
    out = tmp_path / "run"
    status, requests = _run_axis(model, monkeypatch, out, personas, _questions(tmp_path), pass_extraction=False)
    assert status == EXIT_PARTIAL
    contents = [r["body"]["messages"][-1]["content"] for r in requests]
    judge_prompts = [c for c in contents if "Q: " in c or "[ANSWER START]" in c]
    marker = "[ANSWER START]" if source == "workbench template" else "Is this answer in role?"
    assert judge_prompts and all(marker in p for p in judge_prompts)

    s = json.loads((out / "summary.json").read_text())
    reason = s["unavailable"]["heldout_auc"]
    assert s["heldout_auc"] == {"unavailable": reason} and set(s["unavailable"]) >= {"axis_cosine", "pc1_explained_variance"}
    assert "0 role responses survived" in reason and "--min-passing 2" in reason
    order = list(ROLES) if source == "workbench template" else sorted(ROLES)  # file order / role files by name
    assert f"roles dropped: {', '.join(order)}" in reason
    assert s["surviving_responses"] == {"extraction": {"default": 4, "roles": 0}, "heldout": {"default": 4, "roles": 0}}
    assert s["judge"]["kept_personas"] == [] and s["judge"]["unparseable"] == 12
    assert [row["persona"] for row in s["judge"]["table"]] == order
    assert all(row == {"persona": row["persona"], "judged": 2, "scored 3": 0, "scored 0-2": 0, "unparseable": 2,
                       "failed": 0, "pass rate": None} for row in s["judge"]["table"])
    assert not (out / "artifacts" / "assistant_axis.safetensors").exists()

    html = (out / "report.html").read_text()
    assert "heldout_auc" in html and "unavailable:" in html and "Role-play pass rates" in html
    assert "unparseable</th>" in html and "0 role responses survived" in html
    judged = [json.loads(line) for line in next((out / "cache").glob("judge_*.jsonl")).read_text().splitlines()]
    assert {j["raw"] for j in judged} == {OFF_TASK} and all(j["score"] is None for j in judged)
    assert "held-out AUC unavailable" in capsys.readouterr().out


def test_axis_whose_heldout_roles_all_fail_keeps_the_axis_and_marks_the_auc(model, tmp_path, monkeypatch):
    """The issue's run: extraction responses pass, no held-out role response does; the axis, cosines
    and PCA are written, the held-out AUC is a line saying how many held-out responses survived."""
    out = tmp_path / "run"
    status, requests = _run_axis(model, monkeypatch, out, _personas_json(tmp_path), _questions(tmp_path), pass_extraction=True)
    assert status == EXIT_PARTIAL
    s = json.loads((out / "summary.json").read_text())
    assert set(s["unavailable"]) == {"heldout_auc", "heldout_auc_per_layer", "heldout_auc_by_group",
                                     "heldout_auc_per_layer_by_group"}
    assert "4 default and 0 role held-out responses survived" in s["unavailable"]["heldout_auc"]
    assert "roles dropped: none" in s["unavailable"]["heldout_auc"]
    assert 0 < s["pc1_explained_variance"] <= 1 and set(s["axis_cosine"]) == {"default:0", "default:1", *ROLES}
    assert s["heldout_mean_projection_by_group"].keys() == {"default"}
    assert (out / "artifacts" / "assistant_axis.safetensors").is_file()
    html = (out / "report.html").read_text()
    assert "heldout_auc, heldout_auc_per_layer" in html and html.count("Plotly.newPlot") >= 4

    n_requests = len(requests)  # a re-run resumes from the caches: nothing asked again, same outcome
    status, requests = _run_axis(model, monkeypatch, out, _personas_json(tmp_path), _questions(tmp_path), pass_extraction=True)
    assert status == EXIT_PARTIAL and len(requests) == 0 and n_requests > 0


def test_bad_eval_prompt_fails_at_load_before_generation(model, tmp_path, monkeypatch, capsys):
    roles = _aa_roles(tmp_path, eval_prompt="Rate {answer} from 0 to 3.")
    status, requests = _run_axis(model, monkeypatch, tmp_path / "run", roles, _questions(tmp_path), pass_extraction=True)
    assert status == EXIT_ERROR and requests == []
    err = capsys.readouterr().err
    assert "clerk.json field 'eval_prompt'" in err and "{question} and {answer}" in err
    assert not (tmp_path / "run" / "cache").exists()


def test_traits_steer_with_a_judge_refusing_everything_writes_why(model, tmp_path, monkeypatch, capsys):
    """No contrastive pair survives the trait judge: the trait's vectors, steering and the geometry
    are lines saying why (responses usable, the filter's thresholds); the run is written, exit 3."""
    import math

    import workbench.models

    monkeypatch.setattr(workbench.models, "load_model", lambda name=None, **kw: model)
    out = tmp_path / "run"
    with FakeOpenAI(answer=lambda r: "REFUSAL", logprobs=lambda r: {"REFUSAL": math.log(0.95), "5": math.log(0.05)}) as server:
        status = main(["traits", "steer", "pirate", "--out", str(out), "--questions", "2", "--one-instruction",
                       "--max-new-tokens", "4", "--layers", "12", "--coefficients", "0.1", "--n-random", "1",
                       "--judge-api", server.base_url, "--judge-model", "judge"])
    assert status == EXIT_PARTIAL
    s = json.loads((out / "summary.json").read_text())
    pirate = s["traits"]["pirate"]
    assert pirate["n_pairs"] == 0 and set(pirate["unavailable"]) == {"vectors", "steering"}
    assert "no contrastive pair left: 4 of 4 responses usable" in pirate["unavailable"]["vectors"]
    assert "positive trait ≥ 50" in pirate["unavailable"]["vectors"] and "4 usable responses have no trait score" in pirate["unavailable"]["vectors"]
    assert s["geometry"] == {"unavailable": "no trait has a vector (see each trait's unavailable figures)"}
    html = (out / "report.html").read_text()
    assert "Trait: pirate" in html and "vectors unavailable:" in html and "steering unavailable:" in html
    assert "pirate: vectors unavailable" in capsys.readouterr().err


def test_traits_monitor_with_an_imported_vector_and_no_scores_marks_r(model, tmp_path, monkeypatch):
    """With an imported vector monitoring still runs; a judge that scores nothing leaves Pearson r
    a line (None in summary.json, never NaN, which is not JSON)."""
    import math

    import torch

    import workbench.models

    monkeypatch.setattr(workbench.models, "load_model", lambda name=None, **kw: model)
    torch.save(torch.randn(31, 576, generator=torch.Generator().manual_seed(1)), tmp_path / "pirate_response_avg_diff.pt")
    out = tmp_path / "run"
    with FakeOpenAI(answer=lambda r: "REFUSAL", logprobs=lambda r: {"REFUSAL": math.log(0.95), "5": math.log(0.05)}) as server:
        status = main(["traits", "monitor", "pirate", "--out", str(out), "--questions", "1", "--eval-questions", "2",
                       "--one-instruction", "--max-new-tokens", "4", "--layers", "12", "--vector",
                       str(tmp_path / "pirate_response_avg_diff.pt"), "--judge-api", server.base_url, "--judge-model", "j"])
    assert status == EXIT_PARTIAL
    text = (out / "summary.json").read_text()
    assert "NaN" not in text
    pirate = json.loads(text)["traits"]["pirate"]
    assert set(pirate["unavailable"]) == {"vectors", "monitoring r"} and pirate["monitoring"]["n"] == 4
    assert pirate["monitoring"]["r_prompt_last"] is None and "0 of 4 responses have a score" in pirate["unavailable"]["monitoring r"]
    assert json.loads(text)["geometry"]["names"] == ["pirate"]  # the imported vector
    assert "monitoring r unavailable:" in (out / "report.html").read_text()
