"""The responses engine: local generation on the shipped model, the API path on the loopback
server, resume from the cache, the per-batch seeding rule, cache names, ``usable``."""

import json
from dataclasses import dataclass, replace

import pytest

import workbench.responses as engine
from openai_server import FakeOpenAI, Faults
from workbench.api import ApiConfig, ChatClient
from workbench.artifacts import inputs_hash
from workbench.cache import JsonlCache, cache_key
from workbench.chat import Message, messages
from workbench.generate import Sampling
from workbench.responses import batch_sampling, generate_api, generate_local, response_cache, usable


@dataclass(frozen=True)
class Conversation:
    """An item type of its own (turns alternate user/assistant and end on the user), so the engine is
    shown to serve multi-turn callers such as simulated users, not only one system + question."""

    name: str
    turns: tuple[str, ...]
    system: str | None = None

    @property
    def key(self) -> str:
        return cache_key(name=self.name)

    def messages(self) -> list[Message]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(self.turns)]

    def record(self, response: str | None, error: str | None = None) -> dict:
        return {"name": self.name, "response": response, "error": error}


ITEMS = [
    Conversation("a", ("Hi!",), "You are a pirate."),
    Conversation("b", ("Name a colour.",)),
    Conversation("c", ("Hi", "Hello! How can I help?", "Tell me a joke.")),
    Conversation("d", ("Count to three.",), "Be brief."),
]
SAMPLING = Sampling(max_new_tokens=6, temperature=1.0, top_p=0.9, seed=3)
REAL_GENERATE = engine.generate_responses


class Killed(RuntimeError):
    pass


def _spy(monkeypatch, fail_on_call: int | None = None) -> list[tuple[int, Sampling]]:
    """Wrap the real generate_responses: log (prompts, sampling) per call; raise on one call (a kill)."""
    calls = []

    def wrapper(model, conversations, sampling, **kwargs):
        if fail_on_call is not None and len(calls) + 1 >= fail_on_call:
            raise Killed
        calls.append((len(conversations), sampling))
        return REAL_GENERATE(model, conversations, sampling, **kwargs)

    monkeypatch.setattr(engine, "generate_responses", wrapper)
    return calls


def test_local_generation_answers_each_batch_under_its_seed(model, tmp_path):
    cache = JsonlCache(tmp_path / "r.jsonl")
    records = generate_local(model, cache, ITEMS, SAMPLING, batch_size=2, progress=False)
    expected = []
    for batch in (ITEMS[:2], ITEMS[2:]):
        expected += REAL_GENERATE(model, [i.messages() for i in batch], batch_sampling(SAMPLING, batch),
                                  batch_size=2, progress=False)
    assert [r["response"] for r in records] == expected and all(isinstance(t, str) for t in expected)
    assert [r["key"] for r in records] == [i.key for i in ITEMS] and [r["name"] for r in records] == list("abcd")
    assert JsonlCache(tmp_path / "r.jsonl").records == {r["key"]: r for r in records}  # on disk, in full


def test_killed_local_run_resumes_with_the_same_draws(model, tmp_path, monkeypatch):
    uninterrupted = generate_local(model, JsonlCache(tmp_path / "once.jsonl"), ITEMS, SAMPLING, batch_size=2, progress=False)
    _spy(monkeypatch, fail_on_call=2)
    with pytest.raises(Killed):
        generate_local(model, JsonlCache(tmp_path / "r.jsonl"), ITEMS, SAMPLING, batch_size=2, progress=False)
    assert len(JsonlCache(tmp_path / "r.jsonl")) == 2
    calls = _spy(monkeypatch)
    resumed = generate_local(model, JsonlCache(tmp_path / "r.jsonl"), ITEMS, SAMPLING, batch_size=2, progress=False)
    assert [n for n, _ in calls] == [2]  # only the missing batch was generated
    assert resumed == uninterrupted
    calls = _spy(monkeypatch)
    assert generate_local(model, JsonlCache(tmp_path / "r.jsonl"), ITEMS, SAMPLING, batch_size=2, progress=False) == resumed
    assert calls == []


def test_seeding_rule_keeps_every_other_setting(model, tmp_path, monkeypatch):
    sampling = Sampling(max_new_tokens=3, temperature=0.7, top_p=0.8, seed=5, stop_at_eos=False)
    seeded = batch_sampling(sampling, ITEMS[1:3])
    assert seeded == replace(sampling, seed=(5 + int(inputs_hash(ITEMS[1].key), 16)) % 2**31)
    assert seeded.stop_at_eos is False and seeded == batch_sampling(sampling, ITEMS[1:2])  # the first key decides
    assert batch_sampling(sampling, ITEMS[2:]).seed != seeded.seed
    calls = _spy(monkeypatch)
    generate_local(model, JsonlCache(tmp_path / "r.jsonl"), ITEMS, sampling, batch_size=3, progress=False)
    assert [s for _, s in calls] == [batch_sampling(sampling, ITEMS[:3]), batch_sampling(sampling, ITEMS[3:])]
    assert all(s.stop_at_eos is False for _, s in calls)


def test_api_generation_sends_the_items_messages_and_records_failures(tmp_path):
    def config(server, retries=1):
        return ApiConfig(server.base_url, "gen", max_retries=retries, backoff_base_s=0.001, requests_per_second=1000)

    with FakeOpenAI(answer=lambda r: f"  echo {r['messages'][-1]['content']} \n") as server:
        records = generate_api(ChatClient(config(server)), JsonlCache(tmp_path / "api.jsonl"), ITEMS, SAMPLING,
                               batch_size=3, progress=False)
        again = generate_api(ChatClient(config(server)), JsonlCache(tmp_path / "api.jsonl"), ITEMS, SAMPLING,
                             batch_size=3, progress=False)
    assert [r["response"] for r in records] == ["echo Hi!", "echo Name a colour.", "echo Tell me a joke.", "echo Count to three."]
    assert again == records and len(server.requests) == len(ITEMS)  # the re-run asked for nothing
    bodies = sorted((b["body"] for b in server.requests), key=lambda b: b["messages"][-1]["content"])
    assert sorted(json.dumps(b["messages"]) for b in bodies) == sorted(json.dumps(i.messages()) for i in ITEMS)
    assert {(b["temperature"], b["top_p"], b["max_tokens"]) for b in bodies} == {(1.0, 0.9, 6)}

    with FakeOpenAI(answer=lambda r: "never sent", faults=Faults(rate_500=1.0)) as failing:
        failed = generate_api(ChatClient(config(failing, retries=0)), JsonlCache(tmp_path / "fail.jsonl"), ITEMS[:2],
                              SAMPLING, progress=False)
    assert [r["response"] for r in failed] == [None, None] and all("500" in r["error"] for r in failed)
    assert not any(usable(r) for r in failed)


def test_api_samples_of_one_prompt_go_in_one_request_for_n(tmp_path):
    """Three samples of one prompt (and one other prompt) in a batch: one request with n = 3 where the
    server serves n; a server that ignores n is asked again for the samples it did not return."""
    samples = [replace(ITEMS[0], name=f"a{s}") for s in range(3)] + [ITEMS[1]]
    config = lambda server: ApiConfig(server.base_url, "gen", max_retries=0, requests_per_second=1000)  # noqa: E731
    for serves_n, requests in ((True, 2), (False, 4)):
        counter = iter(range(100))
        with FakeOpenAI(answer=lambda r: f"answer {next(counter)}", serves_n=serves_n) as server:
            records = generate_api(ChatClient(config(server)), JsonlCache(tmp_path / f"n{serves_n}.jsonl"), samples,
                                   SAMPLING, batch_size=4, progress=False)
        assert len(server.requests) == requests
        assert sorted(b["body"].get("n", 1) for b in server.requests) == ([1, 3] if serves_n else [1, 1, 1, 3])
        texts = [r["response"] for r in records]
        assert all(usable(r) for r in records) and len(set(texts)) == 4  # every sample its own answer


def test_cache_names_stay_those_of_existing_runs(tmp_path):
    """The persona and trait caches keep their file names, so caches of earlier runs stay valid."""
    quick_axis = Sampling(max_new_tokens=12, temperature=0.7, top_p=0.9, seed=0)
    assert response_cache(tmp_path, "responses", "smollm2-135m-instruct", quick_axis).path.name == (
        "responses_smollm2-135m-instruct_83b70039bcaeb757.jsonl")
    assert response_cache(tmp_path, "responses", "api-gpt-x/y", quick_axis).path.name == "responses_api-gpt-x-y_83b70039bcaeb757.jsonl"
    from vectors.traits.responses import PromptTemplates

    quick_trait = Sampling(max_new_tokens=12, temperature=1.0)
    assert response_cache(tmp_path, "trait_evil", "smollm2-135m-instruct", quick_trait, PromptTemplates()).path.name == (
        "trait_evil_smollm2-135m-instruct_b146838f4a6dae5c.jsonl")
    assert response_cache(tmp_path, "responses", "m", replace(quick_axis, stop_at_eos=False)).path != (
        response_cache(tmp_path, "responses", "m", quick_axis).path)


def test_both_item_types_send_their_single_exchange():
    from vectors.axis.personas import load_personas, load_questions, select_questions
    from vectors.axis.responses import plan_items as persona_items
    from vectors.traits.data import load_trait
    from vectors.traits.responses import plan_items as trait_items

    personas = load_personas(None).subset(1)
    for item in persona_items(personas, select_questions(load_questions(None), 1, 1), "m"):
        assert item.messages() == messages(item.system, item.question.text)
    for item in trait_items(load_trait("evil"), "extract", n_questions=2):
        assert item.messages() == messages(item.system, item.question_text)


@pytest.mark.parametrize("record, ok", [
    ({"response": "Arr.", "error": None}, True), ({"response": "  \n", "error": None}, False),
    ({"response": None, "error": "500"}, False), ({"response": "text", "error": "truncated"}, False), ({}, False),
])
def test_usable(record, ok):
    assert usable(record) is ok
