import pytest

from openai_server import FakeOpenAI, Faults
from workbench.api import ApiConfig, ChatClient, ChatRequest
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.errors import InputFormatError


def test_cache_resumes_and_skips_torn_line(tmp_path):
    path = tmp_path / "gen.jsonl"
    items = [(cache_key(persona="ghost", question=i), i) for i in range(5)]
    calls = []

    def work(batch):
        calls.extend(batch)
        return [{"text": f"answer {i}"} for i in batch]

    run_cached(JsonlCache(path), items[:3], work, batch_size=2, desc="t", progress=False)
    with open(path, "a") as handle:  # a run killed mid-write
        handle.write('{"key": "half')
    cache = JsonlCache(path)
    assert cache.torn_lines == 1 and len(cache) == 3
    records = run_cached(cache, items, work, batch_size=2, desc="t", progress=False)
    assert calls == [0, 1, 2, 3, 4]
    assert [r["text"] for r in records] == [f"answer {i}" for i in range(5)]
    assert len(JsonlCache(path)) == 5


def test_corrupt_middle_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('not json\n{"key": "a"}\n')
    with pytest.raises(InputFormatError, match="bad.jsonl"):
        JsonlCache(path)


def test_client_retries_faults_and_keeps_order(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-SENTINEL-123")
    faults = Faults(rate_429=0.2, rate_500=0.2, rate_truncated=0.1, seed=3)
    with FakeOpenAI(answer=lambda r: r["messages"][-1]["content"].upper(), faults=faults) as server:
        config = ApiConfig(server.base_url, "test", backoff_base_s=0.01, max_retries=8, requests_per_second=1000)
        results = ChatClient(config).complete_many([ChatRequest(({"role": "user", "content": f"q{i}"},)) for i in range(20)])
    assert [r.text for r in results] == [f"Q{i}" for i in range(20)]
    assert sum(server.injected.values()) > 0
    assert all(req["headers"].get("authorization") == "Bearer sk-SENTINEL-123" for req in server.requests)


def test_client_records_failure_after_last_retry(monkeypatch):
    with FakeOpenAI(answer=lambda r: "x", faults=Faults(rate_500=1.0)) as server:
        config = ApiConfig(server.base_url, "test", backoff_base_s=0.001, max_retries=2, requests_per_second=1000)
        result = ChatClient(config).complete(ChatRequest(({"role": "user", "content": "q"},)))
    assert result.text is None and "500" in result.error and result.attempts == 3
    assert len(server.requests) == 3
