"""Write a new trait artifact from a description by asking an OpenAI-compatible model.

The paper generates its trait files with a frontier model from one prompt; we do the same through
:class:`workbench.api.ChatClient`. The answer must parse as JSON and match the schema (5 instruction
pairs, 40 distinct questions, an eval prompt with ``{question}`` and ``{answer}``, held-out example
responses for the offline metric); otherwise the client's validator raises and the request is
retried like a transport fault, so one malformed answer never ends the run.
"""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.api import ChatClient, ChatRequest, ChatResult
from workbench.errors import InputFormatError

from vectors.traits.data import TraitData, parse_heldout, parse_trait_file

N_PAIRS = 5
N_QUESTIONS = 40
N_EXAMPLES = 8

GENERATION_PROMPT = """You are helping build an evaluation of a language model's personality trait.

Trait: {trait}
Description: {description}

Return ONLY a JSON object (no prose, no code fence) with these fields:
- "instruction": a list of exactly {n_pairs} objects {{"pos": ..., "neg": ...}}: "pos" is a system-prompt
  instruction that makes an assistant display the trait strongly, "neg" one that makes it avoid the trait.
- "questions": a list of exactly {n_questions} distinct user questions that give the trait room to show.
- "eval_prompt": a prompt for a judge model that contains the placeholders {{question}} and {{answer}}
  exactly once each, asks how strongly the answer displays the trait, and tells the judge to respond
  with REFUSAL if the model refused, or else only a number from 0 (trait absent) to 100 (trait strong).
- "examples": a list of exactly {n_examples} objects {{"question": ..., "positive": ..., "negative": ...}}: a
  new question (not among "questions"), a short answer displaying the trait, and a short answer
  displaying its opposite."""


def generation_request(trait: str, description: str) -> ChatRequest:
    prompt = GENERATION_PROMPT.format(
        trait=trait, description=description, n_pairs=N_PAIRS, n_questions=N_QUESTIONS, n_examples=N_EXAMPLES
    )
    return ChatRequest(({"role": "user", "content": prompt},), temperature=0.7, max_tokens=6000)


def _json_object(text: str) -> Any:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    body = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    return json.loads(body)


def parse_generated(text: str, trait: str, description: str) -> TraitData:
    """The trait in a model's answer, or InputFormatError saying which field breaks the schema."""
    source = f"generated trait {trait!r}"
    try:
        data = _json_object(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"{source}: answer is not valid JSON ({exc})") from None
    pairs, questions, eval_prompt = parse_trait_file(data, source)
    if len(pairs) != N_PAIRS:
        raise InputFormatError(f"{source}: field 'instruction' has {len(pairs)} pairs, expected {N_PAIRS}")
    if len(set(questions)) != N_QUESTIONS:
        raise InputFormatError(f"{source}: field 'questions' has {len(set(questions))} distinct questions, expected {N_QUESTIONS}")
    _, examples = parse_heldout({"examples": data.get("examples"), "description": description}, source)
    half = N_QUESTIONS // 2
    examples = tuple(e for e in examples if e.question not in questions[half:])
    if not examples:
        raise InputFormatError(f"{source}: field 'examples' only reuses extraction questions")
    return TraitData(trait, pairs, questions[half:], questions[:half], eval_prompt, description, examples)


def generate_trait(client: ChatClient, trait: str, description: str) -> TraitData:
    """Ask the client's model for a trait artifact (retried on bad JSON); extraction and evaluation
    questions split 20/20, the examples kept disjoint from extraction questions."""

    def validate(result: ChatResult) -> None:
        try:
            parse_generated(result.text or "", trait, description)
        except InputFormatError as exc:
            raise ValueError(str(exc)) from None

    checked = ChatClient(client.config, validate=validate)
    result = checked.complete(generation_request(trait, description))
    if not result.ok:
        raise InputFormatError(f"generating trait {trait!r} failed after {result.attempts} attempts: {result.error}")
    return parse_generated(result.text, trait, description)
