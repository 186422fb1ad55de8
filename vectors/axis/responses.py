"""Persona responses: plan (persona × prompt × question × sample), generate, judge, filter.

Why a plan of keyed items: generation is the slow part of the Assistant Axis method, so every
response is cached in a JSONL file under the key ``(persona, prompt index, question id, sample)``
(:func:`workbench.cache.run_cached`); a killed run re-run generates only what is missing. The same
keys index the judge's cache, so judging resumes too.

Generation runs locally (the hooked model, :func:`workbench.generate.generate_responses`) or on any
OpenAI-compatible endpoint (:class:`workbench.api.ChatClient`); extraction always runs locally.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from workbench.api import ChatClient, ChatRequest
from workbench.artifacts import inputs_hash
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.chat import messages
from workbench.generate import Sampling, generate_responses
from workbench.judge import judge_roles, passing_personas, role_judge_prompt, role_pass_rates

from vectors.axis.personas import Persona, PersonaSet, Question, fill_model_name


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


def generation_cache(cache_dir: Path, generator: str, sampling: Sampling) -> JsonlCache:
    """The responses cache of one generator (model or API model) and one sampling setting."""
    slug = "".join(c if c.isalnum() else "-" for c in generator).strip("-")
    return JsonlCache(Path(cache_dir) / f"responses_{slug}_{inputs_hash(sampling.__dict__)}.jsonl")


def _batch_sampling(sampling: Sampling, batch: Sequence[ResponseItem]) -> Sampling:
    # A seed per batch derived from its first key: a resumed run draws the same way for that batch.
    seed = (sampling.seed + int(inputs_hash(batch[0].key), 16)) % 2**31
    return replace(sampling, seed=seed)


def generate_local(
    model, cache: JsonlCache, items: Sequence[ResponseItem], sampling: Sampling, batch_size: int = 16,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Generate the missing responses with the local hooked model; returns all records in order."""

    def work(batch: list[ResponseItem]) -> list[dict[str, Any]]:
        conversations = [messages(item.system, item.question.text) for item in batch]
        texts = generate_responses(model, conversations, _batch_sampling(sampling, batch), batch_size=batch_size, progress=False)
        return [item.record(text) for item, text in zip(batch, texts)]

    return run_cached(cache, [(item.key, item) for item in items], work, batch_size, "generate responses", progress)


def generate_api(
    client: ChatClient, cache: JsonlCache, items: Sequence[ResponseItem], sampling: Sampling, batch_size: int = 64,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Generate the missing responses on an OpenAI-compatible endpoint; a request that fails after
    the client's retries is recorded with its error and left out of the analysis."""

    def work(batch: list[ResponseItem]) -> list[dict[str, Any]]:
        requests = [
            ChatRequest(tuple(messages(item.system, item.question.text)), temperature=sampling.temperature,
                        top_p=sampling.top_p, max_tokens=sampling.max_new_tokens)
            for item in batch
        ]
        return [item.record(r.text.strip() if r.ok else None, r.error) for item, r in zip(batch, client.complete_many(requests))]

    return run_cached(cache, [(item.key, item) for item in items], work, batch_size, "generate responses (API)", progress)


def usable(record: dict[str, Any]) -> bool:
    """A response that exists and is not empty (empty replies have no tokens to average)."""
    return record.get("error") is None and bool((record.get("response") or "").strip())


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
class JudgeFilter:
    """Which responses the analysis keeps after judging, and why."""

    kept_keys: frozenset[str]
    kept_personas: tuple[str, ...]
    dropped_personas: tuple[str, ...]
    pass_rates: dict[str, dict[str, Any]]
    unparseable: int
    failed: int


def filter_by_judge(
    personas: PersonaSet, records: Sequence[dict[str, Any]], judgements: dict[str, dict[str, Any]], min_count: int
) -> JudgeFilter:
    """Keep role responses scored 3, and roles with at least ``min_count`` of those among their
    extraction responses; default responses are always kept (the judge does not score them)."""
    scores: dict[str, list[int | None]] = {p.name: [] for p in personas.roles}
    for record in records:
        judgement = judgements.get(record["key"])
        if judgement is not None and record["split"] == "extraction":
            scores[record["persona"]].append(judgement["score"])
    kept_personas = passing_personas(scores, min_count)
    kept = {
        r["key"] for r in records
        if r["persona"] == personas.default.name
        or (r["persona"] in kept_personas and (judgements.get(r["key"]) or {}).get("score") == 3)
    }
    return JudgeFilter(
        frozenset(kept), tuple(kept_personas), tuple(p for p in scores if p not in kept_personas),
        role_pass_rates(scores),
        sum(1 for j in judgements.values() if j["score"] is None and j["error"] is None),
        sum(1 for j in judgements.values() if j["error"] is not None),
    )
