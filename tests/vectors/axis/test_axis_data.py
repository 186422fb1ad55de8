"""Built-in persona data, assistant-axis format importers, released-vector importers (no model needed)."""

import json

import pytest
import torch

from workbench.artifacts import load_vectors
from workbench.cli import main
from workbench.errors import InputFormatError, ShapeError
from vectors.axis.released import load_capping_config, load_released_vector_folder, similarity_to_axis
from vectors.axis.report import sorted_similarity_figure
from vectors.axis.personas import (
    GROUPS, fill_model_name, load_personas, load_questions, select_questions,
)


def test_builtin_personas_and_questions():
    personas = load_personas()
    assert len(personas.roles) >= 24
    assert personas.default.prompts == ("", "You are an AI assistant.", "You are a large language model.",
                                        "You are a helpful assistant.")
    assert {r.group for r in personas.roles} == set(GROUPS)
    assert all(2 <= len(r.prompts) <= 5 for r in personas.roles)
    questions = load_questions()
    assert len(questions) >= 40 and len({q.text for q in questions}) == len(questions)
    assert {q.split for q in questions} == {"extraction", "heldout"}
    small = personas.subset(6)
    assert [r.group for r in small.roles].count("fantastical") == 2 and len(small.roles) == 6
    chosen = select_questions(questions, 3, 2)
    assert [q.split for q in chosen] == ["extraction"] * 3 + ["heldout"] * 2


def _aa_tree(root):
    folder = root / "data" / "roles" / "instructions"
    folder.mkdir(parents=True)
    (folder / "default.json").write_text(json.dumps({"instruction": [{"pos": ""}, {"pos": "You are {model_name}."}]}))
    for role in ("pirate", "ghost"):
        (folder / f"{role}.json").write_text(json.dumps({
            "instruction": [{"pos": f"You are a {role}, not {{model_name}}."}, {"pos": f"Act as a {role}."}],
            "questions": ["Who are you?"],
            "eval_prompt": f"Is this a {role}? Q: {{question}} A: {{answer}} Answer 0-3.",
        }))
    (root / "data" / "extraction_questions.jsonl").write_text(
        "\n".join(json.dumps({"question": f"Question {i}?", "id": i}) for i in range(8)) + "\n")
    return folder


def test_import_assistant_axis_format(tmp_path):
    folder = _aa_tree(tmp_path)
    for path in (tmp_path / "data", folder):  # the repo's data folder or the instructions folder
        personas = load_personas(path)
        assert [r.name for r in personas.roles] == ["ghost", "pirate"]
    assert personas.default.prompts == ("", "You are {model_name}.")
    assert personas.roles[1].eval_prompt.format(question="q", answer="a").startswith("Is this a pirate? Q: q A: a")
    assert fill_model_name(personas.roles[1].prompts[0], "google/gemma-2-27b-it") == "You are a pirate, not Gemma."
    assert fill_model_name("Hi {model_name} {other}", "smollm2-135m-instruct") == "Hi SmolLM {other}"
    questions = load_questions(tmp_path / "data" / "extraction_questions.jsonl")
    assert [q.id for q in questions if q.split == "heldout"] == [3, 7]


@pytest.mark.parametrize("content, message", [
    ({"questions": []}, "pirate.json: field 'instruction'"),
    ({"instruction": [{"neg": "x"}]}, "pirate.json: field 'instruction' item 0"),
    ({"instruction": [{"pos": "x"}], "eval_prompt": 3}, "pirate.json: field 'eval_prompt'"),
    ({"instruction": [{"pos": "x"}], "questions": [1]}, "pirate.json: field 'questions' item 0"),
    ({"instruction": [{"pos": "x"}], "eval_prompt": "Rate {answer} 0-3."}, "pirate.json field 'eval_prompt': placeholders"),
    ({"instruction": [{"pos": "x"}], "eval_prompt": "Rate {question} 0-3."}, "pirate.json field 'eval_prompt': placeholders"),
])
def test_bad_role_files_name_file_and_field(tmp_path, content, message):
    (tmp_path / "pirate.json").write_text(json.dumps(content))
    with pytest.raises(InputFormatError, match=message):
        load_personas(tmp_path)


def test_bad_question_and_persona_files(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "a?", "id": 1}\n{"question": "b?"\n')
    with pytest.raises(InputFormatError, match="q.jsonl line 2"):
        load_questions(bad)
    bad.write_text('{"question": "a?", "id": 1}\n{"question": "b?", "id": 1}\n')
    with pytest.raises(InputFormatError, match="duplicate question ids"):
        load_questions(bad)
    with pytest.raises(InputFormatError, match="no role files"):
        load_personas(tmp_path)
    (tmp_path / "p.json").write_text(json.dumps({"default": [""], "roles": {"x": {"prompts": "You are x"}}}))
    with pytest.raises(InputFormatError, match="roles.x: field 'prompts'"):
        load_personas(tmp_path / "p.json")


def test_released_vectors_and_capping_config(tmp_path):
    torch.manual_seed(0)
    axis = torch.randn(4, 8)
    torch.save(axis, tmp_path / "assistant_axis.pt")
    traits = tmp_path / "trait_vectors"
    traits.mkdir()
    torch.save(axis * 2, traits / "calm.pt")
    torch.save(-axis, traits / "chaotic.pt")
    loaded = load_vectors(tmp_path / "assistant_axis.pt", n_layers=4, d_model=8)
    assert torch.equal(loaded.vectors, axis) and "row L = layer L" in loaded.metadata["layer_convention"]
    with pytest.raises(ShapeError, match=r"\[46, 4608\]"):
        load_vectors(tmp_path / "assistant_axis.pt", n_layers=46, d_model=4608)
    sims = similarity_to_axis(load_released_vector_folder(traits, 4, 8), loaded, layer=2)
    assert sims == pytest.approx({"calm": 1.0, "chaotic": -1.0})
    fig = sorted_similarity_figure(list(sims), list(sims.values()), "traits")
    assert list(fig.data[0].x) == pytest.approx([-1.0, 1.0])
    loaded.save(traits / "ours")  # a workbench artifact sits beside the released files
    assert main(["axis-compare", "--axis", str(tmp_path / "assistant_axis.pt"), "--vectors", str(traits),
                 "--layer", "2", "--out", str(tmp_path / "cmp")]) == 0
    cosine = json.loads((tmp_path / "cmp" / "similarity.json").read_text())["cosine"]
    assert list(cosine) == ["chaotic", "calm", "ours"] or list(cosine) == ["chaotic", "ours", "calm"]
    assert "Plotly.newPlot" in (tmp_path / "cmp" / "report.html").read_text()
    torch.save(torch.randn(3, 8), traits / "short.pt")
    assert main(["axis-compare", "--axis", str(tmp_path / "assistant_axis.pt"), "--vectors", str(traits),
                 "--layer", "2", "--out", str(tmp_path / "cmp")]) == 2

    names = {L: f"layer_{L}/contrast" for L in (1, 2)}
    config = {"vectors": {names[L]: {"vector": torch.ones(8) * L, "layer": L} for L in (1, 2)},
              "experiments": [{"id": "layers_1:3-p0.25", "interventions": [{"vector": names[L], "cap": -1.0 - L} for L in (1, 2)]}]}
    torch.save(config, tmp_path / "capping_config.pt")
    experiments = load_capping_config(tmp_path / "capping_config.pt", d_model=8)
    cap = experiments["layers_1:3-p0.25"].intervention()
    assert cap.thresholds == {1: -2.0, 2: -3.0} and cap.mode == "ceiling"
    with pytest.raises(ShapeError, match="d_model is 16"):
        load_capping_config(tmp_path / "capping_config.pt", d_model=16)
    config["experiments"][0]["interventions"][0]["vector"] = "missing"
    torch.save(config, tmp_path / "bad.pt")
    with pytest.raises(InputFormatError, match=r"interventions\[0\]: vector 'missing'"):
        load_capping_config(tmp_path / "bad.pt")
