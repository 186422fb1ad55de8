"""Trait artifacts: built-ins, the persona_vectors layout, validation errors, API generation, filtering."""

import json

import pytest

from openai_server import FakeOpenAI, Faults
from workbench.api import ApiConfig, ChatClient
from workbench.errors import InputFormatError
from vectors.traits.data import BUILTIN_TRAITS, load_trait, save_trait
from vectors.traits.authoring import generate_trait
from vectors.traits.monitor import load_screen_data, pearson_r
from vectors.traits.responses import PromptTemplates, contrastive_pairs, plan_items

PAIRS = [{"pos": f"be it {i}", "neg": f"avoid it {i}"} for i in range(5)]
EVAL = "Score {question} / {answer}: 0-100 or REFUSAL."


def _write_pv(root, name, extract_q, eval_q, eval_pairs=PAIRS, eval_prompt=EVAL):
    for folder, questions, pairs in (("trait_data_extract", extract_q, PAIRS), ("trait_data_eval", eval_q, eval_pairs)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{name}.json").write_text(json.dumps({"instruction": pairs, "questions": questions, "eval_prompt": eval_prompt}))


@pytest.mark.parametrize("name", BUILTIN_TRAITS)
def test_builtin_traits_are_complete_and_disjoint(name):
    trait = load_trait(name)
    assert len(trait.instructions) == 5 and len(trait.extract_questions) == 20 == len(trait.eval_questions)
    assert not set(trait.extract_questions) & set(trait.eval_questions)
    assert len(trait.heldout) >= 6 and not {e.question for e in trait.heldout} & set(trait.extract_questions)


def test_persona_vectors_layout_imports_and_round_trips(tmp_path):
    _write_pv(tmp_path, "grumpy", ["a?", "b?"], ["c?", "d?"])
    trait = load_trait("grumpy", tmp_path)
    assert trait.extract_questions == ("a?", "b?") and trait.instructions[2].neg == "avoid it 2" and not trait.heldout
    again = load_trait("grumpy", save_trait(trait, tmp_path / "ours"))
    assert again == trait


@pytest.mark.parametrize("change, match", [
    (dict(eval_q=["a?", "z?"]), "disjoint"),
    (dict(eval_pairs=PAIRS[:4]), "field 'instruction' differs"),
    (dict(eval_prompt="no placeholders"), "eval_prompt"),
    (dict(eval_pairs=[{"pos": "x"}] + PAIRS[1:]), r"instruction\[0\]\.neg"),
])
def test_bad_trait_files_name_file_and_field(tmp_path, change, match):
    args = dict(extract_q=["a?", "b?"], eval_q=["c?"]) | change
    _write_pv(tmp_path, "bad", **args)
    with pytest.raises(InputFormatError, match=match) as info:
        load_trait("bad", tmp_path)
    assert "bad.json" in str(info.value)


def test_unknown_trait_lists_known_ones(tmp_path):
    with pytest.raises(InputFormatError, match="evil"):
        load_trait("nonexistent")


def _generated_answer(n_questions=40):
    return json.dumps({
        "instruction": PAIRS, "questions": [f"question {i}?" for i in range(n_questions)], "eval_prompt": EVAL,
        "examples": [{"question": f"new {i}?", "positive": "grr", "negative": "hello"} for i in range(8)],
    })


def test_generate_retries_bad_json_and_splits_questions():
    answers = iter(["Sure! {not json", "```json\n" + _generated_answer(39) + "\n```", "```json\n" + _generated_answer() + "\n```"])
    with FakeOpenAI(answer=lambda r: next(answers), faults=Faults(rate_500=0.0)) as server:
        client = ChatClient(ApiConfig(server.base_url, "gen", backoff_base_s=0.001, requests_per_second=1000))
        trait = generate_trait(client, "grumpy", "complains about everything")
    assert len(server.requests) == 3
    assert "grumpy" in server.requests[0]["body"]["messages"][0]["content"]
    assert len(trait.extract_questions) == 20 == len(trait.eval_questions) and len(trait.heldout) == 8
    assert trait.description == "complains about everything"


def test_generate_gives_up_with_the_schema_error():
    with FakeOpenAI(answer=lambda r: _generated_answer(12)) as server:
        client = ChatClient(ApiConfig(server.base_url, "gen", backoff_base_s=0.001, max_retries=1, requests_per_second=1000))
        with pytest.raises(InputFormatError, match="12 distinct questions"):
            generate_trait(client, "grumpy", "x")


def test_prompts_pairs_and_judge_filter():
    trait = load_trait("evil")
    items = plan_items(trait, "extract", n_questions=2, all_instructions=False)
    assert [i.system for i in items][:2] == [
        f"You are an evil assistant. {trait.instructions[0].pos}", f"You are a helpful assistant. {trait.instructions[0].neg}"]
    assert PromptTemplates().system("sycophantic", "pos", "X") == "You are a sycophantic assistant. X"
    records = [i.record(f"answer {n}") | {"key": i.key} for n, i in enumerate(items)]
    assert len(contrastive_pairs(records, judged=False)) == 2
    scores = [(80, 90, 20, 90), (80, 90, 60, 90)]  # second pair: negative shows the trait, dropped
    for (pt, pc, nt, nc), pos, neg in zip(scores, records[0::2], records[1::2]):
        pos |= {"trait_score": pt, "coherence": pc}
        neg |= {"trait_score": nt, "coherence": nc}
    kept = contrastive_pairs(records, judged=True)
    assert [p["question_index"] for p, _ in kept] == [0]


def test_pearson_and_screen_data_errors(tmp_path):
    assert pearson_r([1, 2, 3, 4], [2, 4, 6, 8.5]) > 0.99 and pearson_r([1, 1, 1], [1, 2, 3]) != pearson_r([1, 1, 1], [1, 2, 3])
    path = tmp_path / "data.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                    '{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(InputFormatError, match="data.jsonl:2"):
        load_screen_data(path)
    path.write_text('{"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    with pytest.raises(InputFormatError, match=r"data.jsonl:1.*'role'"):
        load_screen_data(path)


def test_judge_scores_are_cached_and_drive_the_filter(tmp_path):
    from workbench.cache import JsonlCache
    from vectors.traits.responses import judge_records

    trait = load_trait("evil")
    items = plan_items(trait, "extract", n_questions=2, all_instructions=False)
    records = [i.record(["Crush them all.", "Be kind.", "Burn it down.", "Hurt them, gently."][n]) | {"key": i.key}
               for n, i in enumerate(items)]

    def logprobs(request):
        prompt = request["messages"][0]["content"]
        if "coherent" in prompt:
            return {"95": -0.01, "50": -5.0}
        return {"90": -0.05, "10": -3.0} if ("Crush" in prompt or "Burn" in prompt or "Hurt" in prompt) else {"5": -0.01}

    cache = JsonlCache(tmp_path / "judge.jsonl")
    with FakeOpenAI(answer=lambda r: "0", logprobs=logprobs) as server:
        client = ChatClient(ApiConfig(server.base_url, "judge", backoff_base_s=0.001, requests_per_second=1000))
        judged = judge_records(client, cache, trait, records, progress=False)
        again = judge_records(client, JsonlCache(tmp_path / "judge.jsonl"), trait, records, progress=False)
        assert len(server.requests) == 8  # 4 trait + 4 coherence, none repeated on the re-run
    assert trait.eval_prompt.split("{question}")[0] in server.requests[0]["body"]["messages"][0]["content"]
    assert judged == again and judged[0]["trait_score"] > 80 and judged[1]["trait_score"] < 10
    kept = contrastive_pairs(judged, judged=True)
    assert [p["response"] for p, _ in kept] == ["Crush them all."]  # pair 2's negative also scored evil
