"""Fixed benchmark inputs, built deterministically from text (no generation, no randomness).

Persona conversations whose assistant replies are cut to an exact token count, so every run and
every compared variant sees the same padded batches; generation prompts; one long multi-turn
conversation for the per-token projection figure.
"""

from __future__ import annotations

from workbench.chat import ChatTokens, format_conversation, format_prompt, messages

PERSONAS = (
    "You are a pirate captain. Speak like one.",
    "You are a helpful assistant.",
    "You are a ghost haunting an old lighthouse.",
    "You are a medieval bard who answers in verse.",
    "You are an ancient oracle who speaks in riddles.",
    "You are a cautious financial analyst.",
    "You are a jester at the royal court.",
    "You are a tired night-shift nurse.",
)

QUESTIONS = (
    "What do you think about the ocean?",
    "How should I spend a rainy afternoon?",
    "What is the best way to learn a new language?",
    "Tell me about the last storm you remember.",
    "Why do people keep diaries?",
    "What makes a good friend?",
    "How do you decide what to eat for dinner?",
    "What would you change about cities?",
)

PASSAGE = (
    "The harbour was quiet before dawn, and the lanterns along the quay still burned low. Fishermen "
    "checked their nets, gulls argued over scraps, and the tide pulled slowly at the hulls. I have "
    "always believed that patience is the first lesson of the sea: you cannot hurry the wind, and you "
    "cannot argue with a wave. People ask me whether the work is lonely. Sometimes it is, but the "
    "silence teaches you to listen, to the creak of timber, to the change in the air before rain, to "
    "your own thoughts when nobody else is speaking. A good plan starts small. Write down what you "
    "want, break it into steps you can finish in a day, and keep a record of what worked. When a step "
    "fails, that is information, not a verdict. Friends matter more than plans, though. Share a meal, "
    "tell the truth kindly, and show up when it is inconvenient. Cities could learn from villages: "
    "more trees, slower streets, places to sit without paying, and markets where people know your name."
)


def response_text(tokenizer, index: int, n_tokens: int) -> str:
    """A reply of exactly ``n_tokens`` tokens: the passage rotated by ``index`` words, then cut."""
    words = PASSAGE.split()
    start = (index * 11) % len(words)
    text = " ".join(words[start:] + words[:start])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    return tokenizer.decode(ids).strip()


def persona_chats(tokenizer, n: int, response_tokens: int) -> list[ChatTokens]:
    """``n`` formatted persona conversations (system, user, assistant reply of the given length)."""
    return [
        format_conversation(
            tokenizer,
            messages(
                PERSONAS[i % len(PERSONAS)],
                QUESTIONS[(i // len(PERSONAS)) % len(QUESTIONS)],
                response_text(tokenizer, i, response_tokens),
            ),
        )
        for i in range(n)
    ]


def generation_prompts(tokenizer, n: int) -> list[tuple[int, ...]]:
    """``n`` chat prompts ending in the assistant header, one persona and question each."""
    return [
        format_prompt(tokenizer, messages(PERSONAS[i % len(PERSONAS)], QUESTIONS[i % len(QUESTIONS)]))
        for i in range(n)
    ]


def long_conversation(tokenizer, n_tokens: int, reply_tokens: int = 120) -> ChatTokens:
    """A multi-turn persona conversation of about ``n_tokens`` tokens (at most one reply over)."""
    conversation = [{"role": "system", "content": PERSONAS[0]}]
    length, turn = 0, 0
    while length < n_tokens:
        reply = response_text(tokenizer, turn, reply_tokens)
        conversation += [
            {"role": "user", "content": QUESTIONS[turn % len(QUESTIONS)]},
            {"role": "assistant", "content": reply},
        ]
        length += reply_tokens + 20  # question plus the template's turn markers, roughly
        turn += 1
    return format_conversation(tokenizer, conversation)
