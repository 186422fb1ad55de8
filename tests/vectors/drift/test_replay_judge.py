from openai_server import FakeOpenAI

from workbench.api import ApiConfig, ChatClient
from workbench.cache import JsonlCache
from vectors.drift.replay import judge_in_role
from vectors.drift.transcripts import load_transcript, shipped_transcript_path


def _judge(request):
    prompt = request["messages"][-1]["content"]
    answer = prompt.split("[ANSWER START]")[1]
    return "3" if "stars" in answer else ("no score here" if "???" in answer else "1")


def test_in_role_rate_per_condition_through_a_real_http_judge(tmp_path):
    transcript = load_transcript(shipped_transcript_path())
    users = transcript.user_turns[:3]
    conversations = {
        "no intervention": [m for u, a in zip(users, ["The stars know.", "The stars whisper.", "Sure, here is how."])
                            for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})],
        "capped": [m for u, a in zip(users, ["Sure, meditation helps.", "???", "The stars sing."])
                   for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})],
    }
    cache = JsonlCache(tmp_path / "judge.jsonl")
    with FakeOpenAI(answer=_judge) as server:
        client = ChatClient(ApiConfig.from_env("judge-model", server.base_url))
        rates = judge_in_role(client, transcript, conversations, cache, progress=False)
        assert rates["no intervention"] == {"scores": [3, 3, 1], "unscored": 0, "in_role_rate": 2 / 3}
        assert rates["capped"] == {"scores": [1, None, 3], "unscored": 1, "in_role_rate": 0.5}
        assert "mystic oracle" in server.requests[0]["body"]["messages"][-1]["content"]
        sent = len(server.requests)
        assert judge_in_role(client, transcript, conversations, cache, progress=False) == rates
        assert len(server.requests) == sent  # cached by content
