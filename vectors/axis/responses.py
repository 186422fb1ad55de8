"""Persona responses: plan (persona × prompt × question × sample), judge, filter.

Each :class:`ResponseItem` is one answer for the responses engine (:mod:`workbench.responses`),
which caches it under the key ``(persona, prompt index, question id, sample)``: a killed run re-run
generates only what is missing. The same keys index the judge's cache, so judging resumes too.

Generation runs locally (the hooked model) or on any OpenAI-compatible endpoint
(:func:`workbench.responses.generate_local` / :func:`~workbench.responses.generate_api`);
extraction always runs locally. Its responses cache is ``responses_<generator>_<sampling hash>``
(:func:`workbench.responses.response_cache` with prefix :data:`CACHE_PREFIX`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from workbench.api import ChatClient
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.chat import Message, messages
from workbench.judge import judge_roles, passing_personas, role_judge_prompt, role_pass_rates
from workbench.responses import usable

from vectors.axis.personas import Persona, PersonaSet, Question, fill_model_name

CACHE_PREFIX = "responses"


@dataclass(frozen=True)
class ResponseItem:
    """One response to generate: a persona's prompt variant, a question, a sample index."""

    persona: Persona
    prompt_index: int
    question: Question
    sample: int
    system: str

    @property
    def key(self) -> str:
        return cache_key(persona=self.persona.name, prompt=self.prompt_index, question=self.question.id, sample=self.sample)

    def messages(self) -> list[Message]:
        return messages(self.system, self.question.text)

    def record(self, response: str | None, error: str | None = None) -> dict[str, Any]:
        return {
            "persona": self.persona.name, "group": self.persona.group, "prompt_index": self.prompt_index,
            "question_id": self.question.id, "split": self.question.split, "sample": self.sample,
            "system": self.system, "question": self.question.text, "response": response, "error": error,
        }


def plan_items(
    personas: PersonaSet, questions: Sequence[Question], model_name: str, samples: int = 1,
    all_role_prompts: bool = False,
) -> list[ResponseItem]:
    """Every response the run needs.

    The default assistant answers each question under *every* default prompt. Roles answer under
    all their variants when ``all_role_prompts``; otherwise question ``j`` uses variant ``j mod n``,
    which covers the variants at a fraction of the cost.
    """
    items = []
    for persona in (personas.default, *personas.roles):
        for j, question in enumerate(questions):
            if persona.is_default or all_role_prompts:
                indices = range(len(persona.prompts))
            else:
                indices = [j % len(persona.prompts)]
            for index in indices:
                system = fill_model_name(persona.prompts[index], model_name)
                items += [ResponseItem(persona, index, question, s, system) for s in range(samples)]
    return items


def judge_role_responses(
    client: ChatClient, cache: JsonlCache, personas: PersonaSet, records: Sequence[dict[str, Any]],
    batch_size: int = 64, progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Role-play scores 0–3 of every usable role response, cached by the response's key.

    Returns ``{response key: judge record}`` (``score`` None with ``raw``/``error`` when unparseable).
    """
    by_name = {p.name: p for p in personas.roles}
    todo = [r for r in records if r["persona"] in by_name and usable(r)]

    def template(persona: Persona) -> str:
        return persona.eval_prompt or role_judge_prompt(f"{persona.name} ({persona.prompts[0]})")

    def work(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items = [(template(by_name[r["persona"]]), r["question"], r["response"]) for r in batch]
        return [{"persona": r["persona"], **score.to_record()} for r, score in zip(batch, judge_roles(client, items))]

    judged = run_cached(cache, [(r["key"], r) for r in todo], work, batch_size, "judge role play", progress)
    return {r["key"]: j for r, j in zip(todo, judged)}


@dataclass(frozen=True)
class RoleFilterResult:
    """Which responses the analysis keeps after judging, and why.

    ``pass_rates``: per role, over its extraction responses, :func:`workbench.judge.role_pass_rates`
    plus ``failed`` (requests that never got an answer) and ``unparseable`` (answers holding no score).
    """

    kept_keys: frozenset[str]
    kept_personas: tuple[str, ...]
    dropped_personas: tuple[str, ...]
    pass_rates: dict[str, dict[str, Any]]
    unparseable: int
    failed: int


def filter_by_judge(
    personas: PersonaSet, records: Sequence[dict[str, Any]], judgements: dict[str, dict[str, Any]], min_count: int
) -> RoleFilterResult:
    """Keep role responses scored 3, and roles with at least ``min_count`` of those among their
    extraction responses; default responses are always kept (the judge does not score them)."""
    scores: dict[str, list[int | None]] = {p.name: [] for p in personas.roles}
    failed: dict[str, int] = {p.name: 0 for p in personas.roles}
    for record in records:
        judgement = judgements.get(record["key"])
        if judgement is not None and record["split"] == "extraction":
            scores[record["persona"]].append(judgement["score"])
            failed[record["persona"]] += judgement["error"] is not None
    kept_personas = passing_personas(scores, min_count)
    pass_rates = role_pass_rates(scores)
    for persona, rates in pass_rates.items():  # a score of None is a failed request or an unparseable answer
        rates["failed"] = failed[persona]
        rates["unparseable"] = rates["judged"] - rates["scored"] - failed[persona]
    kept = {
        r["key"] for r in records
        if r["persona"] == personas.default.name
        or (r["persona"] in kept_personas and (judgements.get(r["key"]) or {}).get("score") == 3)
    }
    return RoleFilterResult(
        frozenset(kept), tuple(kept_personas), tuple(p for p in scores if p not in kept_personas),
        pass_rates,
        sum(1 for j in judgements.values() if j["score"] is None and j["error"] is None),
        sum(1 for j in judgements.values() if j["error"] is not None),
    )
