"""Replay a conversation under interventions and measure its drift per condition.

Replaying keeps the transcript's system prompt and user turns and lets the model write every
assistant turn itself, turn by turn, with the condition's interventions active (e.g. none, capping,
steering). Each turn is cached (JSONL), so an interrupted or repeated replay reuses what is done.

Drift is then read two ways per condition: ``reread`` — the plain model reads the replayed text (is
the *text* Assistant-like?), and ``as_generated`` — the projections with the condition's
interventions active, i.e. the states the model actually had while writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from tqdm.auto import tqdm

from workbench.artifacts import LayerVectors, inputs_hash
from workbench.cache import JsonlCache, cache_key
from workbench.chat import Message, format_conversation
from workbench.errors import InputFormatError
from workbench.generate import Sampling, generate_responses
from workbench.hooks import Intervention
from vectors.projection import ChatProjection, in_band_share, project_chat
from vectors.transcripts import Transcript


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
