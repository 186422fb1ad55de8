"""Conversations → token ids plus the exact token span of every assistant turn.

Every pipeline (persona extraction, trait vectors, drift views, screening) reads activations over
"the response tokens", so this module is the one place that decides which tokens those are:
the tokens of the assistant message's text, **excluding** the template's turn header
(``<|im_start|>assistant\\n``, ``<start_of_turn>model\\n``) and end tokens (``<|im_end|>``,
``<end_of_turn>``). Templates that trim whitespace (Gemma) are handled: the span covers the
message text as the template rendered it.

Gemma 2 has no system role: its template raises on one. We detect that by rendering a probe
conversation and merge the system text into the first user message (``system + "\\n\\n" + user``),
the convention of the assistant-axis code.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from jaxtyping import Bool
from torch import Tensor

from workbench.errors import InputFormatError

Role = Literal["system", "user", "assistant"]
Message = dict[str, str]


@dataclass(frozen=True)
class ChatTokens:
    """Token ids of a chat-formatted conversation and where each assistant turn's text lies.

    ``assistant_spans[i] = (start, end)``: token positions ``start:end`` of the i-th assistant
    message's text (end exclusive).
    """

    ids: tuple[int, ...]
    assistant_spans: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.ids)

    def response_mask(self) -> Bool[Tensor, " pos"]:
        """True at every token of every assistant turn."""
        mask = torch.zeros(len(self.ids), dtype=torch.bool)
        for start, end in self.assistant_spans:
            mask[start:end] = True
        return mask

    def prompt_mask(self) -> Bool[Tensor, " pos"]:
        """True at every token before the first assistant turn's text (system, user, header)."""
        mask = torch.zeros(len(self.ids), dtype=torch.bool)
        first = self.assistant_spans[0][0] if self.assistant_spans else len(self.ids)
        mask[:first] = True
        return mask


def messages(system: str | None, user: str, assistant: str | None = None) -> list[Message]:
    """Build a single-exchange conversation; an empty or None system prompt is left out."""
    out: list[Message] = []
    if system:
        out.append({"role": "system", "content": system})
    out.append({"role": "user", "content": user})
    if assistant is not None:
        out.append({"role": "assistant", "content": assistant})
    return out


_SYSTEM_ROLE_SUPPORT: "weakref.WeakKeyDictionary[object, bool]" = weakref.WeakKeyDictionary()


def supports_system_role(tokenizer) -> bool:
    """Whether the tokenizer's chat template accepts a system message (probed once per tokenizer)."""
    if tokenizer not in _SYSTEM_ROLE_SUPPORT:
        probe = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
        try:
            supported = "S" in tokenizer.apply_chat_template(probe, tokenize=False)
        except Exception:  # the template's raise_exception: no system role
            supported = False
        _SYSTEM_ROLE_SUPPORT[tokenizer] = supported
    return _SYSTEM_ROLE_SUPPORT[tokenizer]


# Gemma 3's chat template as published with google/gemma-3-270m-it and gemma-3-27b-it
# (tokenizer_config.json). Written here because GGUF files of Gemma 3 (the packaged 270M among
# them) may carry no template, and nothing is downloaded at run time. The template itself merges
# a system message into the first user turn (``system + "\\n\\n" + user``), the same convention
# as :func:`normalize_messages` applies to Gemma 2.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n"
)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def validate_messages(conversation: Sequence[Message], source: str = "conversation") -> None:
    """Raise InputFormatError naming the message and field unless roles and contents are sane."""
    if not isinstance(conversation, (list, tuple)) or not conversation:
        raise InputFormatError(f"{source}: expected a non-empty list of messages")
    for i, message in enumerate(conversation):
        if not isinstance(message, dict):
            raise InputFormatError(f"{source}: message {i} must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant"):
            raise InputFormatError(
                f"{source}: message {i} field 'role' is {role!r}; expected system, user or assistant"
            )
        if not isinstance(content, str):
            raise InputFormatError(
                f"{source}: message {i} field 'content' must be a string, got {type(content).__name__}"
            )
        surrogate = _LONE_SURROGATE.search(content)
        if surrogate:  # valid as a JSON escape, but tokenizers cannot encode it (a TypeError deep inside)
            raise InputFormatError(
                f"{source}: message {i} field 'content' has an unpaired surrogate {surrogate.group()!r} at "
                f"character {surrogate.start()}; expected valid Unicode text"
            )
        if role == "system" and i != 0:
            raise InputFormatError(f"{source}: message {i} is a system message; only the first may be")


def normalize_messages(tokenizer, conversation: Sequence[Message]) -> list[Message]:
    """Merge a leading system message into the first user turn where the template has no system role."""
    conversation = [dict(m) for m in conversation]
    if conversation and conversation[0]["role"] == "system" and not supports_system_role(tokenizer):
        system = conversation.pop(0)["content"]
        if conversation and conversation[0]["role"] == "user":
            conversation[0]["content"] = f"{system}\n\n{conversation[0]['content']}"
        else:
            conversation.insert(0, {"role": "user", "content": system})
    return conversation


def _render(tokenizer, conversation: list[Message], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def format_conversation(tokenizer, conversation: Sequence[Message]) -> ChatTokens:
    """Token ids of a whole conversation and the token span of each assistant message's text."""
    validate_messages(conversation)
    conversation = normalize_messages(tokenizer, conversation)
    text = _render(tokenizer, conversation, add_generation_prompt=False)
    char_spans = []
    for i, message in enumerate(conversation):
        if message["role"] != "assistant":
            continue
        prefix = _render(tokenizer, conversation[:i], add_generation_prompt=True)
        cursor = len(prefix) if text.startswith(prefix) else (char_spans[-1][1] if char_spans else 0)
        content = message["content"].strip()
        start = text.find(content, cursor)
        if start < 0:
            raise InputFormatError(
                f"assistant message {i}: its text was not found in the chat template's rendering"
            )
        char_spans.append((start, start + len(content)))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoding["offset_mapping"]
    token_spans = []
    for char_start, char_end in char_spans:
        inside = [t for t, (s, e) in enumerate(offsets) if e > s and s < char_end and e > char_start]
        token_spans.append((inside[0], inside[-1] + 1) if inside else (0, 0))
    return ChatTokens(tuple(encoding["input_ids"]), tuple(token_spans))


def format_prompt(tokenizer, conversation: Sequence[Message]) -> tuple[int, ...]:
    """Token ids of a conversation ending in the assistant header, ready for generation."""
    validate_messages(conversation)
    conversation = normalize_messages(tokenizer, conversation)
    text = _render(tokenizer, conversation, add_generation_prompt=True)
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def stop_token_ids(tokenizer) -> tuple[int, ...]:
    """Ids that end an assistant turn: EOS plus the template's end-of-turn tokens."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for token in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return tuple(sorted(ids))
