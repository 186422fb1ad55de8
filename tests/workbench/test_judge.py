import math

import pytest

from openai_server import FakeOpenAI, Faults
from workbench.api import ApiConfig, ChatClient
from workbench.errors import InputFormatError
from workbench.judge import (
    COHERENCE_JUDGE_PROMPT, judge_coherence, judge_roles, judge_trait, parse_role_score, passing_personas,
    role_judge_prompt, role_pass_rates, score_from_logprobs, trait_judge_prompt,
)


def _client(server, **overrides):
    config = ApiConfig(server.base_url, "judge", backoff_base_s=0.001, requests_per_second=1000, **overrides)
    return ChatClient(config)


def test_weighted_score_pools_whitespace_and_ignores_non_numbers():
    lp = {"80": math.log(0.3), " 80": math.log(0.1), "90": math.log(0.4), "Hello": math.log(0.2)}
    result = score_from_logprobs(lp)
    assert result.numeric_mass == pytest.approx(0.8)
    assert result.score == pytest.approx((80 * 0.4 + 90 * 0.4) / 0.8)
    assert not result.refusal and result.top_token == "90"


def test_low_numeric_mass_is_none_and_refusal_flagged():
    result = score_from_logprobs({"REF": math.log(0.7), "50": math.log(0.2), "101": math.log(0.1)})
    assert result.score is None and result.refusal
    assert result.numeric_mass == pytest.approx(0.2)  # 101 is outside 0..100
    assert score_from_logprobs({"REFUSAL": 0.0}).refusal
    assert score_from_logprobs({}).score is None


def test_parse_role_score():
    assert parse_role_score("3") == 3
    assert parse_role_score("Score: 2.") == 2
    assert parse_role_score("I'd give it a 1 out of 3") == 1
    assert parse_role_score("10") is None and parse_role_score("2.5") is None
    assert parse_role_score("fully in role") is None


def test_templates_checked_and_braces_in_names_survive():
    prompt = role_judge_prompt("a {weird} role")
    assert "{weird}" in prompt.format(question="q", answer="a")
    assert "{x}" in trait_judge_prompt("t", "has {x}").format(question="q", answer="a")
    with pytest.raises(InputFormatError, match="placeholders"):
        judge_trait(None, "evil", [("q", "a")], template="Rate {answer} only")
    with pytest.raises(InputFormatError, match="format string"):
        judge_trait(None, "evil", [("q", "a")], template="Rate {question {answer}")


def test_role_judge_over_http_keeps_unparseable_and_failures():
    answers = {"A1": "3", "A2": "I think 2", "A3": "cannot say", "A4": "0"}

    def answer(request):
        text = request["messages"][0]["content"]
        return next(v for k, v in answers.items() if k in text)

    items = [(role_judge_prompt("pirate"), "Who are you?", a) for a in answers]
    with FakeOpenAI(answer=answer) as server:
        scores = judge_roles(_client(server), items)
        assert "pirate" in server.requests[0]["body"]["messages"][0]["content"]
    assert [s.score for s in scores] == [3, 2, None, 0]
    assert scores[2].raw == "cannot say" and scores[2].error is None
    with FakeOpenAI(answer=lambda r: "3", faults=Faults(rate_500=1.0)) as server:
        failed = judge_roles(_client(server, max_retries=1), items[:1])
    assert failed[0].score is None and "500" in failed[0].error


def test_pass_rates_and_min_count():
    scores = {"pirate": [3, 3, 2, None], "analyst": [1, 3, 0, 0]}
    rates = role_pass_rates(scores)
    assert rates["pirate"]["pass_rate"] == pytest.approx(2 / 3) and rates["pirate"]["scored"] == 3
    assert rates["analyst"]["counts"] == {"0": 2, "1": 1, "2": 0, "3": 1}
    assert passing_personas(scores, min_count=2) == ["pirate"]


def test_trait_and_coherence_judges_read_logprobs_over_http():
    def logprobs(request):
        text = request["messages"][0]["content"]
        if "coherent" in text:
            return {"100": math.log(0.9), "50": math.log(0.1)}
        if "kitten" in text:
            return {"REFUSAL": math.log(0.9), "0": math.log(0.1)}
        return {"70": math.log(0.5), "90": math.log(0.5)}

    with FakeOpenAI(answer=lambda r: "x", logprobs=logprobs) as server:
        client = _client(server)
        traits = judge_trait(client, "evil", [("q", "I will rule."), ("q", "kitten")], "Wants to harm.")
        coherence = judge_coherence(client, [("q", "fine")])
        body = server.requests[0]["body"]
    assert body["max_tokens"] == 1 and body["top_logprobs"] == 20 and body["logprobs"] is True
    assert traits[0].score == pytest.approx(80) and traits[1].score is None and traits[1].refusal
    assert coherence[0].score == pytest.approx(95)
    assert "coherent" in COHERENCE_JUDGE_PROMPT
