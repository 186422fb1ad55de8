"""API faults on real loopback HTTP: long generation and judging runs never lose or duplicate work.

Every run goes through the real stack: :class:`ChatClient` (openai client, httpx, retries) against
:class:`FakeOpenAI` on 127.0.0.1, results appended by :func:`run_cached` to a :class:`JsonlCache`.
The invariants checked on the cache *file* (not the in-memory dict): every item appears exactly
once; an item either has the right answer or a recorded error after exactly ``max_retries + 1``
attempts; the server never saw more than ``max_retries + 1`` requests for one item.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from openai_server import FakeOpenAI, Faults
from workbench.api import ApiConfig, ChatClient, ChatRequest, ChatResult
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.judge import judge_roles, judge_trait, role_judge_prompt

MAX_RETRIES = 4
FAULT_TYPES = ("429", "500", "timeout", "truncated")


def client_config(server: FakeOpenAI, max_retries: int = MAX_RETRIES) -> ApiConfig:
    """Fast settings: tiny backoff, a timeout shorter than the server's injected stall."""
    return ApiConfig(
        server.base_url, "test-model", max_retries=max_retries, requests_per_second=1000,
        backoff_base_s=0.005, backoff_max_s=0.05, timeout_s=0.5, max_concurrency=8,
    )


def result_record(result: ChatResult) -> dict[str, Any]:
    """What a run caches per item: the answer or the error, never silently nothing."""
    return {"text": result.text, "logprobs": result.first_token_logprobs, "error": result.error,
            "attempts": result.attempts}


def api_run(client: ChatClient, cache: JsonlCache, prompts: list[str], batch_size: int,
            top_logprobs: int | None = None) -> list[dict[str, Any]]:
    """A cached API run as a pipeline does it: one request per prompt, batched, resumable."""
    items = [(cache_key(prompt=p), ChatRequest(({"role": "user", "content": p},), top_logprobs=top_logprobs))
             for p in prompts]

    def work(batch: list[ChatRequest]) -> list[dict[str, Any]]:
        return [result_record(r) for r in client.complete_many(batch)]

    return run_cached(cache, items, work, batch_size=batch_size, desc="api", progress=False)


def file_key_counts(path: Path) -> Counter:
    """How many lines of the cache file carry each key (duplicates would show as counts > 1)."""
    return Counter(json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip())


def requests_per_prompt(server: FakeOpenAI) -> Counter:
    return Counter(r["body"]["messages"][-1]["content"] for r in server.requests)


def check_exactly_once(path: Path, prompts: list[str], server: FakeOpenAI, expected: Callable[[str], Any],
                       answer_of: Callable[[dict], Any], max_retries: int = MAX_RETRIES) -> dict[str, int]:
    """The run's invariants; returns counts of ok / failed items for the caller's assertions."""
    counts = file_key_counts(path)
    keys = [cache_key(prompt=p) for p in prompts]
    assert sorted(counts) == sorted(keys), "items lost or foreign keys in the cache"
    assert set(counts.values()) == {1}, f"duplicated items: {[k for k, n in counts.items() if n > 1]}"
    per_prompt = requests_per_prompt(server)
    assert max(per_prompt.values()) <= max_retries + 1, "retries not bounded"
    reloaded = JsonlCache(path)
    tally = {"ok": 0, "failed": 0}
    for prompt, key in zip(prompts, keys):
        record = reloaded.get(key)
        assert 1 <= record["attempts"] <= max_retries + 1
        if record["error"] is None:
            assert answer_of(record) == expected(prompt)
            tally["ok"] += 1
        else:
            assert record["text"] is None and record["error"].strip()
            assert record["attempts"] == max_retries + 1
            tally["failed"] += 1
    return tally


def test_generation_run_with_every_fault_loses_and_duplicates_nothing(tmp_path, record_property):
    """60 prompts, 4 fault types at 10 % each: each item once, answers right or errors recorded."""
    prompts = [f"question {i}" for i in range(60)]
    faults = Faults(rate_429=0.1, rate_500=0.1, rate_timeout=0.1, rate_truncated=0.1,
                    timeout_sleep_s=1.0, seed=11)
    with FakeOpenAI(answer=lambda r: r["messages"][-1]["content"].upper(), faults=faults) as server:
        client = ChatClient(client_config(server))
        records = api_run(client, JsonlCache(tmp_path / "gen.jsonl"), prompts, batch_size=16)
    assert len(records) == len(prompts)
    tally = check_exactly_once(tmp_path / "gen.jsonl", prompts, server, str.upper, lambda rec: rec["text"])
    assert all(server.injected[f] > 0 for f in FAULT_TYPES), server.injected
    assert tally["ok"] >= 55, tally  # P(one item fails 5 times) = 0.4**5 ≈ 1 %
    record_property("counts", {"items": len(prompts), "requests": len(server.requests), **server.injected, **tally})


def parse_score(result: ChatResult) -> None:
    """A ``ChatClient`` validator: an answer without a score 0–3 is retried like a transport fault."""
    if result.text is None or not result.text.strip().isdigit() or not 0 <= int(result.text) <= 3:
        raise ValueError(f"judge answer is not a score 0–3: {result.text!r}")


NON_NUMERIC = ("I cannot rate this.", "REFUSAL", "", "three", "½", "10", "4")


def role_answer(i: int) -> tuple[str, int | None]:
    """The judge's reply for item ``i`` and the score it must parse to (None: kept as raw text)."""
    return (NON_NUMERIC[i // 4 % len(NON_NUMERIC)], None) if i % 4 == 0 else (f"Score: {i % 4}", i % 4)


def trait_logprobs(i: int) -> dict[str, float]:
    """First-token logprobs for trait item ``i``: every fourth refuses (no numeric mass)."""
    if i % 4 == 0:
        return {"REFUSAL": math.log(0.9), "I": math.log(0.1)}
    return {str(10 * (i % 10)): math.log(0.75), "100": math.log(0.25)}


def item_index(request: dict) -> int:
    return int(request["messages"][-1]["content"].split("answer #")[1].split()[0])


def test_judges_under_faults_with_non_numeric_answers(tmp_path, record_property):
    """The real role (0–3) and trait (0–100) judges, cached, under all faults and bad answers."""
    n = 40
    role_items = [(cache_key(judge="role", i=i), (role_judge_prompt("pirate"), f"q{i}", f"answer #{i} end"))
                  for i in range(n)]
    trait_items = [(cache_key(judge="trait", i=i), (f"q{i}", f"answer #{i} end")) for i in range(n)]
    faults = Faults(rate_429=0.08, rate_500=0.08, rate_timeout=0.05, rate_truncated=0.08,
                    timeout_sleep_s=1.0, seed=12)
    with FakeOpenAI(answer=lambda r: role_answer(item_index(r))[0],
                    logprobs=lambda r: trait_logprobs(item_index(r)), faults=faults) as server:
        client = ChatClient(client_config(server))
        cache = JsonlCache(tmp_path / "judge.jsonl")
        run_cached(cache, role_items, lambda b: [s.to_record() for s in judge_roles(client, b)],
                   batch_size=8, desc="role", progress=False)
        run_cached(cache, trait_items, lambda b: [s.to_record() for s in judge_trait(client, "evil", b)],
                   batch_size=8, desc="trait", progress=False)
    counts = file_key_counts(tmp_path / "judge.jsonl")
    assert sorted(counts) == sorted(k for k, _ in role_items + trait_items) and set(counts.values()) == {1}
    assert max(Counter(item_index(r["body"]) for r in server.requests
                       if "role" in r["body"]["messages"][-1]["content"]).values()) <= MAX_RETRIES + 1
    assert all(server.injected[f] > 0 for f in FAULT_TYPES), server.injected
    reloaded, failed = JsonlCache(tmp_path / "judge.jsonl"), 0
    for i in range(n):
        role = reloaded.get(cache_key(judge="role", i=i))
        trait = reloaded.get(cache_key(judge="trait", i=i))
        failed += (role["error"] is not None) + (trait["error"] is not None)
        if role["error"] is None:
            assert (role["score"], role["raw"]) == (role_answer(i)[1], role_answer(i)[0])
        else:
            assert role["score"] is None and role["error"].strip()
        if trait["error"] is None:
            expected = None if i % 4 == 0 else 10 * (i % 10) * 0.75 + 100 * 0.25
            assert trait["refusal"] == (i % 4 == 0)
            assert (trait["score"] is None and expected is None) or trait["score"] == pytest.approx(expected)
        else:
            assert trait["score"] is None and trait["error"].strip()
    assert failed <= 4, failed
    record_property("counts", {"items": 2 * n, "requests": len(server.requests), **server.injected,
                               "non_numeric_role": sum(role_answer(i)[1] is None for i in range(n)),
                               "refusal_trait": sum(i % 4 == 0 for i in range(n)), "failed": failed})


@pytest.mark.parametrize("fault", FAULT_TYPES + ("non-numeric",))
def test_persistent_fault_is_recorded_after_bounded_retries(tmp_path, fault):
    """A fault on every attempt: each item ends as one failure record naming the error."""
    rates = {f"rate_{f}": 1.0 if f == fault else 0.0 for f in FAULT_TYPES}
    prompts = [f"item {i}" for i in range(3)]
    answer = (lambda r: "not a number") if fault == "non-numeric" else (lambda r: "2")
    with FakeOpenAI(answer=answer, faults=Faults(**rates, timeout_sleep_s=1.0)) as server:
        client = ChatClient(client_config(server, max_retries=2), validate=parse_score)
        started = time.monotonic()
        api_run(client, JsonlCache(tmp_path / "fail.jsonl"), prompts, batch_size=2)
        elapsed = time.monotonic() - started
    tally = check_exactly_once(tmp_path / "fail.jsonl", prompts, server, lambda p: None,
                               lambda rec: None, max_retries=2)
    assert tally == {"ok": 0, "failed": 3}
    assert len(server.requests) <= 3 * 3
    errors = {rec["error"] for rec in JsonlCache(tmp_path / "fail.jsonl").records.values()}
    expected_text = {"429": "429", "500": "500", "timeout": "Timeout", "truncated": "JSONDecodeError",
                     "non-numeric": "not a score"}[fault]
    assert all(expected_text in e for e in errors), errors
    if fault == "429":  # Retry-After: 0.05 s honoured twice per item (backoff alone would be ≤ 0.02 s)
        assert elapsed >= 2 * 2 * 0.05



MALFORMED = {
    "content is a number": (lambda r: 3, None),
    "content is an object": (lambda r: {"text": "hi"}, None),
    "logprob is a string": (lambda r: "5", lambda r: {"50": "abc"}),
    "logprob is positive": (lambda r: "5", lambda r: {"50": 5000.0}),
    "logprob is NaN": (lambda r: "5", lambda r: {"50": float("nan")}),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_answers_are_retried_then_recorded(tmp_path, kind):
    """Well-formed JSON that is not a usable answer (the openai client does not validate it) is
    treated like a truncated body: retried, then recorded as a failure naming what was wrong."""
    answer, logprobs = MALFORMED[kind]
    with FakeOpenAI(answer=answer, logprobs=logprobs) as server:
        client = ChatClient(client_config(server, max_retries=1))
        api_run(client, JsonlCache(tmp_path / "m.jsonl"), ["a", "b"], batch_size=2,
                top_logprobs=5 if logprobs else None)
    records = list(JsonlCache(tmp_path / "m.jsonl").records.values())
    assert len(records) == 2 and len(server.requests) == 4
    assert all(r["text"] is None and r["error"].startswith("ValueError") and r["attempts"] == 2 for r in records)
