import json

import pytest

from workbench.errors import InputFormatError
from vectors.drift.transcripts import load_transcript, load_transcripts, shipped_transcript_path

MESSAGES = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "An assistant."}]


def _write(tmp_path, name, value):
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def test_shipped_drift_transcript_is_assistant_axis_format():
    transcript = load_transcript(shipped_transcript_path())
    assert len(transcript.user_turns) >= 8 and len(transcript.assistant_turns) == len(transcript.user_turns)
    assert transcript.metadata["persona"] == "mystic oracle" and transcript.metadata["turns_declared"] == 18
    assert transcript.to_json()["conversation"] == [dict(m) for m in transcript.messages]


def test_turns_may_disagree_with_messages_and_optional_fields_are_kept(tmp_path):
    obj = {"model": "m", "turns": 10, "conversation": MESSAGES, "auditor_model": "a",
           "steering_config": {"experiment_id": "layers_56:72-p0.25", "num_interventions": 16, "layers": [56, 57]},
           "domain": "d", "persona": "p", "topic": "t", "persona_id": 3, "system_prompt": "You are a pirate."}
    transcript = load_transcript(_write(tmp_path, "t.json", obj))
    assert len(transcript.messages) == 5 and transcript.system_prompt == "You are a pirate."
    assert transcript.metadata["turns_declared"] == 10
    assert transcript.metadata["steering_config"]["layers"] == [56, 57] and transcript.metadata["persona_id"] == 3


def test_plain_list_and_jsonl(tmp_path):
    assert load_transcript(_write(tmp_path, "list.json", MESSAGES)).assistant_turns == ["Hello!", "An assistant."]
    lines = json.dumps({"conversation": MESSAGES[:2]}) + "\n\n" + json.dumps(MESSAGES) + "\n"
    both = load_transcripts(_write(tmp_path, "c.jsonl", lines))
    assert [len(t.messages) for t in both] == [2, 4]
    assert both[1].source.endswith("line 3")


@pytest.mark.parametrize("content, match", [
    ({"model": "m", "turns": 2}, r"bad\.json: missing field 'conversation'"),
    ({"conversation": [{"role": "wizard", "content": "x"}]}, r"bad\.json: field 'conversation': message 0 field 'role'"),
    ({"conversation": [{"role": "user", "content": 3}]}, r"message 0 field 'content'"),
    ({"conversation": MESSAGES, "turns": "ten"}, r"field 'turns' must be an integer"),
    ({"conversation": MESSAGES, "steering_config": {"layers": ["a"]}}, r"field 'steering_config.layers'"),
    ({"conversation": MESSAGES, "persona": ["x"]}, r"field 'persona' must be a string"),
    (42, r"bad\.json: expected an object with a 'conversation' field"),
    ("", r"bad\.json: empty file"),
    ("{not json", r"bad\.json: invalid JSON"),
])
def test_bad_inputs_name_file_and_field(tmp_path, content, match):
    with pytest.raises(InputFormatError, match=match):
        load_transcripts(_write(tmp_path, "bad.json", content))


def test_jsonl_error_names_the_line(tmp_path):
    text = json.dumps(MESSAGES) + "\n" + json.dumps({"conversation": "nope"}) + "\n"
    with pytest.raises(InputFormatError, match=r"bad\.jsonl: line 2: field 'conversation'"):
        load_transcripts(_write(tmp_path, "bad.jsonl", text))
    with pytest.raises(InputFormatError, match="index 5 is out of range"):
        load_transcript(_write(tmp_path, "ok.jsonl", json.dumps(MESSAGES) + "\n" + json.dumps(MESSAGES)), 5)
