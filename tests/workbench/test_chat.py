import pytest

from workbench.chat import format_conversation, format_prompt, messages, stop_token_ids, supports_system_role
from workbench.errors import InputFormatError


def test_response_span_decodes_to_reply(smollm2_hf):
    _, tokenizer = smollm2_hf
    conversation = messages("You are a ghost.", "Who are you?", "I am the wind in the old house.")
    conversation += [{"role": "user", "content": "Really?"}, {"role": "assistant", "content": "Boo! Yes, really."}]
    chat = format_conversation(tokenizer, conversation)
    replies = [tokenizer.decode(list(chat.ids[s:e])) for s, e in chat.assistant_spans]
    assert replies == ["I am the wind in the old house.", "Boo! Yes, really."]
    end = chat.assistant_spans[0][1]
    assert tokenizer.decode([chat.ids[end]]) == "<|im_end|>"  # end token excluded from the span
    assert chat.response_mask().sum() == sum(e - s for s, e in chat.assistant_spans)


def test_prompt_is_the_conversation_prefix(smollm2_hf):
    _, tokenizer = smollm2_hf
    prompt = format_prompt(tokenizer, messages("You are a ghost.", "Who are you?"))
    chat = format_conversation(tokenizer, messages("You are a ghost.", "Who are you?", "A ghost."))
    assert chat.ids[: len(prompt)] == prompt
    assert chat.assistant_spans[0][0] == len(prompt)
    assert supports_system_role(tokenizer)
    assert 2 in stop_token_ids(tokenizer)


@pytest.mark.parametrize(
    "bad, field",
    [
        ([], "non-empty"),
        ([{"role": "robot", "content": "x"}], "'role'"),
        ([{"role": "user", "content": 3}], "'content'"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "system"),
    ],
)
def test_bad_messages_are_named(smollm2_hf, bad, field):
    with pytest.raises(InputFormatError, match=field):
        format_conversation(smollm2_hf[1], bad)
