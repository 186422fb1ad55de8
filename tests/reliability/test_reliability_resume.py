"""Resume after SIGKILL: a cached API generation or judge run killed mid-way and restarted completes the set.

The run is a real separate process (``python child.py``) calling a :class:`FakeOpenAI` server that
lives in the test process, so the server's request log tells which items each run sent: the run's
number travels as the request's ``model``. Killing with SIGKILL gives the process no chance to
clean up; the invariants are that the cache file always loads, that every item ends in it exactly
once, and that each restart re-sends at most the one batch that was in flight.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from openai_server import FakeOpenAI
from workbench.cache import JsonlCache, cache_key

N_ITEMS = 64
BATCH = 8

CHILD = textwrap.dedent(
    """
    import sys
    from workbench.api import ApiConfig, ChatClient, ChatRequest
    from workbench.cache import JsonlCache, cache_key, run_cached
    from workbench.judge import judge_roles, role_judge_prompt

    base_url, cache_path, run, n, batch, kind = sys.argv[1:4] + [int(a) for a in sys.argv[4:6]] + [sys.argv[6]]
    client = ChatClient(ApiConfig(base_url, f"run-{run}", requests_per_second=1000, max_concurrency=4))
    if kind == "generate":
        items = [(cache_key(item=i), ChatRequest(({"role": "user", "content": f"item {i}"},))) for i in range(n)]

        def work(requests):
            return [{"text": r.text, "error": r.error} for r in client.complete_many(requests)]
    else:
        items = [(cache_key(item=i), (role_judge_prompt("pirate"), f"question {i}", f"item {i}")) for i in range(n)]

        def work(batch):
            return [score.to_record() for score in judge_roles(client, batch)]

    run_cached(JsonlCache(cache_path), items, work, batch_size=batch, desc="child", progress=False)
    print("complete", flush=True)
    """
)


def slow_answer(request: dict) -> str:
    """Answer slowly enough (20 ms per request) that a kill lands in the middle of the run: a
    generation gets its prompt upper-cased, a judge prompt for ``item i`` the score ``i % 4``."""
    time.sleep(0.02)
    content = request["messages"][-1]["content"]
    if "[ANSWER START]" in content:
        return f"Score: {int(content.split('item ')[1].split()[0]) % 4}"
    return content.upper()


def answer_is_right(kind: str, record: dict) -> bool:
    index = json.loads(record["key"])["item"]
    return record["text"] == f"ITEM {index}" if kind == "generate" else record["score"] == index % 4


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def start_child(script: Path, server: FakeOpenAI, cache: Path, run: int, kind: str = "generate") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), server.base_url, str(cache), str(run), str(N_ITEMS), str(BATCH), kind],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def kill_after_lines(child: subprocess.Popen, cache: Path, lines: int, then_wait_s: float = 0.0,
                     timeout_s: float = 60) -> None:
    """SIGKILL the child ``then_wait_s`` after the cache file holds ``lines`` finished items (a
    wait lands the kill while the next batch's requests are in flight)."""
    deadline = time.monotonic() + timeout_s
    while line_count(cache) < lines:
        assert child.poll() is None, f"child ended before it could be killed: {child.communicate()}"
        assert time.monotonic() < deadline, "child made no progress"
        time.sleep(0.005)
    time.sleep(then_wait_s)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()  # reaps the child and closes its pipes


def items_sent_by_run(server: FakeOpenAI, run: int) -> set[str]:
    return {r["body"]["messages"][-1]["content"] for r in server.requests if r["body"]["model"] == f"run-{run}"}


@pytest.mark.parametrize("kind", ["generate", "judge"])
def test_sigkill_three_times_then_complete_redoes_at_most_one_batch_per_kill(tmp_path, record_property, kind):
    script, cache = tmp_path / "child.py", tmp_path / f"{kind}.jsonl"
    script.write_text(CHILD)
    kill_points = [(BATCH, 0.03), (3 * BATCH, 0.0), (5 * BATCH + 1, 0.01)]
    with FakeOpenAI(answer=slow_answer) as server:
        for run, (lines, then_wait_s) in enumerate(kill_points):
            kill_after_lines(start_child(script, server, cache, run, kind), cache, lines, then_wait_s)
            survived = JsonlCache(cache)  # loads after every kill: never corrupt
            assert lines <= len(survived) < N_ITEMS
        final = start_child(script, server, cache, len(kill_points), kind)
        out, err = final.communicate(timeout=60)
        assert final.returncode == 0 and "complete" in out, err
        time.sleep(0.1)  # let the server log any request the last killed run still had in flight
        sent = [items_sent_by_run(server, run) for run in range(len(kill_points) + 1)]

    keys = Counter(json.loads(line)["key"] for line in cache.read_text().splitlines())
    assert sorted(keys) == sorted(cache_key(item=i) for i in range(N_ITEMS)) and set(keys.values()) == {1}
    assert all(answer_is_right(kind, record) for record in JsonlCache(cache).records.values())
    resent = []
    for run in range(len(kill_points)):
        redone = sent[run] & set().union(*sent[run + 1 :])
        assert len(redone) <= BATCH, f"run {run} killed: {len(redone)} items re-sent"
        resent.append(len(redone))
    record_property("counts", {"items": N_ITEMS, "batch": BATCH, "kills": len(kill_points), "resent_per_kill": resent})
    assert sum(len(s) for s in sent) <= N_ITEMS + len(kill_points) * BATCH


def test_torn_last_line_after_kill_is_skipped_and_run_completes(tmp_path):
    """A kill during a write leaves part of a line: the restart reports it, cuts it, finishes clean."""
    script, cache = tmp_path / "child.py", tmp_path / "gen.jsonl"
    script.write_text(CHILD)
    with FakeOpenAI(answer=slow_answer) as server:
        kill_after_lines(start_child(script, server, cache, 0), cache, 2 * BATCH)
        kept = len(JsonlCache(cache))
        whole_line = json.dumps({"key": cache_key(item=N_ITEMS - 1), "text": "ITEM 63", "error": None})
        with open(cache, "ab") as handle:  # what a kill in the middle of ``write`` leaves
            handle.write(whole_line.encode()[:25])
        final = start_child(script, server, cache, 1)
        out, err = final.communicate(timeout=60)
    assert final.returncode == 0 and "complete" in out
    assert "skipped a torn last line (25 bytes)" in err
    lines = cache.read_text().splitlines()
    assert len(lines) == N_ITEMS and all(json.loads(line)["key"] for line in lines)
    assert len(items_sent_by_run(server, 1)) == N_ITEMS - kept
