"""Judge answers that are not clearly a score must be unparseable, never a score.

The corpus (tests/data/judge_outputs.jsonl) holds real-looking judge outputs: bare numbers, score
phrases, prose with digits, hex request ids (the endpoint that turned "5e2de22e" into a 2), ranges,
lists, refusals and answers with two scores. Each is replayed through the role judge over a
loopback OpenAI-compatible server (text path) and through the trait judge (first-token logprob
path), and parsed on the 0–100 scale.
"""

import json
import math
from pathlib import Path

import pytest

from openai_server import FakeOpenAI
from workbench.api import ApiConfig, ChatClient
from workbench.judge import judge_roles, judge_trait, parse_score, role_judge_prompt, role_pass_rates

CORPUS = [json.loads(line) for line in (Path(__file__).parents[1] / "data" / "judge_outputs.jsonl").read_text().splitlines()]


def _client(server):
    return ChatClient(ApiConfig(server.base_url, "judge", backoff_base_s=0.001, requests_per_second=1000))


@pytest.mark.parametrize("row", CORPUS, ids=[r["text"][:40] for r in CORPUS])
def test_parse_score_on_both_scales(row):
    assert parse_score(row["text"], 3) == row["role_score"]
    assert parse_score(row["text"], 100) == row["score_0_100"]


def test_corpus_covers_both_outcomes():
    assert sum(r["role_score"] is None for r in CORPUS) >= 15
    assert sum(r["role_score"] is not None for r in CORPUS) >= 10


def test_role_judge_replays_corpus_over_http_and_counts_unparseable():
    answers = {f"R{i:03d}": row["text"] for i, row in enumerate(CORPUS)}

    def answer(request):
        prompt = request["messages"][0]["content"]
        return next(text for key, text in answers.items() if key in prompt)

    items = [(role_judge_prompt("pirate"), "Who are you?", key) for key in answers]
    with FakeOpenAI(answer=answer) as server:
        scores = judge_roles(_client(server), items)
    assert [s.score for s in scores] == [row["role_score"] for row in CORPUS]
    unparseable = [s for s in scores if s.score is None]
    assert all(s.raw is not None and s.error is None for s in unparseable)
    rates = role_pass_rates({"pirate": [s.score for s in scores]})["pirate"]
    assert rates["judged"] == len(CORPUS) and rates["scored"] == len(CORPUS) - len(unparseable)


def test_trait_judge_logprob_path_ignores_digits_inside_words():
    """The first token of each corpus answer carries 90% of the mass: only a token that is a whole
    number 0–100 makes a score; "5e2de22e", "Here", "REFUSAL", "2.5" and "0-3" do not."""

    def first_token(request):
        answer = request["messages"][0]["content"].split("[ANSWER START]\n")[1].split("\n[ANSWER END]")[0]
        text = next(row["text"] for row in CORPUS if row["text"].startswith(answer))
        return {text.split()[0].strip("*."): math.log(0.9), "zzz": math.log(0.1)}

    items = [("q", row["text"]) for row in CORPUS]
    with FakeOpenAI(answer=lambda r: "x", logprobs=first_token) as server:
        scores = judge_trait(_client(server), "evil", items)
    for row, score in zip(CORPUS, scores):
        token = row["text"].split()[0].strip("*.")
        expected = int(token) if token.isdigit() and int(token) <= 100 else None
        assert score.score == (pytest.approx(expected) if expected is not None else None), row["text"]
    assert next(s for r, s in zip(CORPUS, scores) if r["text"] == "REFUSAL").refusal
