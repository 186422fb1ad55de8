"""Replay a conversation under interventions and measure its drift per condition.

Replaying keeps the transcript's system prompt and user turns and lets the model write every
assistant turn itself, turn by turn, with the condition's interventions active (e.g. none, capping,
steering). Each turn is cached (JSONL), so an interrupted or repeated replay reuses what is done.

Drift is then read two ways per condition: ``reread`` — the plain model reads the replayed text (is
the *text* Assistant-like?), and ``as_generated`` — the projections with the condition's
interventions active, i.e. the states the model actually had while writing. With a judge, the share
of turns fully in the transcript's persona per condition (:func:`judge_in_role`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from tqdm.auto import tqdm

from workbench.api import ChatClient
from workbench.artifacts import LayerVectors, inputs_hash
from workbench.cache import JsonlCache, cache_key, run_cached
from workbench.chat import Message, format_conversation
from workbench.errors import InputFormatError
from workbench.generate import Sampling, generate_responses
from workbench.hooks import Intervention
from workbench.judge import judge_roles, role_judge_prompt
from vectors.drift.projection import ChatProjection, in_band_share, project_chat
from vectors.drift.transcripts import Transcript


@dataclass(frozen=True)
class Condition:
    """A named set of interventions; ``fingerprint`` identifies them in cache keys."""

    name: str
    interventions: tuple[Intervention, ...] = ()
    fingerprint: str = "none"


def replay(
    model,
    transcript: Transcript,
    condition: Condition,
    sampling: Sampling,
    cache: JsonlCache,
    max_turns: int | None = None,
    progress: bool = True,
) -> list[Message]:
    """The transcript with every assistant turn regenerated under ``condition``."""
    users = transcript.user_turns[:max_turns]
    if not users:
        raise InputFormatError(f"{transcript.source}: no user turns to replay")
    history: list[Message] = [{"role": "system", "content": transcript.system_prompt}] if transcript.system_prompt else []
    transcript_id = inputs_hash(history, users)
    for turn, user in enumerate(tqdm(users, desc=f"replay [{condition.name}]", disable=not progress, unit="turn")):
        history.append({"role": "user", "content": user})
        key = cache_key(kind="replay", model=model.cfg.model_name, transcript=transcript_id,
                        condition=condition.fingerprint, turn=turn, sampling=repr(sampling))
        record = cache.get(key)
        if record is None:
            reply = generate_responses(model, [history], sampling, condition.interventions, progress=False)[0]
            record = cache.put(key, condition=condition.name, turn=turn, response=reply)
        history.append({"role": "assistant", "content": record["response"]})
    return history


@dataclass(frozen=True)
class ReplayResult:
    """One condition's replayed conversation and its per-turn projections at one layer."""

    condition: str
    conversation: list[Message]
    reread: ChatProjection
    as_generated: ChatProjection
    layer: int

    def summary(self, band: tuple[float, float]) -> dict[str, Any]:
        reread, generated = self.reread.turn_means(self.layer), self.as_generated.turn_means(self.layer)
        return {
            "condition": self.condition,
            "turn_means_reread": reread,
            "turn_means_as_generated": generated,
            "in_band_share_reread": in_band_share(reread, band),
            "in_band_share_as_generated": in_band_share(generated, band),
            "responses": [m["content"] for m in self.conversation if m["role"] == "assistant"],
        }


def replay_and_measure(
    model,
    transcript: Transcript,
    conditions: Sequence[Condition],
    vectors: LayerVectors,
    layer: int,
    sampling: Sampling,
    cache: JsonlCache,
    max_turns: int | None = None,
    progress: bool = True,
) -> list[ReplayResult]:
    """Replay under each condition, then project each replay at ``layer`` (re-read and as generated)."""
    results = []
    for condition in conditions:
        conversation = replay(model, transcript, condition, sampling, cache, max_turns, progress)
        chat = format_conversation(model.tokenizer, conversation)
        reread = project_chat(model, chat, vectors, [layer])
        generated = project_chat(model, chat, vectors, [layer], condition.interventions) if condition.interventions else reread
        results.append(ReplayResult(condition.name, conversation, reread, generated, layer))
    return results


def judge_in_role(
    client: ChatClient,
    transcript: Transcript,
    conversations: dict[str, Sequence[Message]],
    cache: JsonlCache,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Per condition: the share of replayed assistant turns a role-play judge scores 3, i.e. fully in
    the transcript's ``persona`` (the drift target), over the turns it scored.

    ``conversations``: condition name → replayed conversation. Judgements are cached by content.
    """
    role = transcript.metadata.get("persona") or "a persona other than an AI assistant"
    template = role_judge_prompt(str(role))
    out = {}
    for condition, conversation in conversations.items():
        pairs = [(conversation[i - 1]["content"], m["content"]) for i, m in enumerate(conversation)
                 if m["role"] == "assistant" and i > 0 and conversation[i - 1]["role"] == "user"]

        def work(batch: list[tuple[str, str]]) -> list[dict[str, Any]]:
            return [s.to_record() for s in judge_roles(client, [(template, q, a) for q, a in batch])]

        items = [(cache_key(kind="judge_role", judge=client.config.model, role=role, question=q, answer=a), (q, a))
                 for q, a in pairs]
        scores = [r["score"] for r in run_cached(cache, items, work, 16, f"judge [{condition}]", progress)]
        scored = [s for s in scores if s is not None]
        out[condition] = {"scores": scores, "unscored": len(scores) - len(scored),
                          "in_role_rate": sum(s == 3 for s in scored) / len(scored) if scored else None}
    return out
