"""Replay many conversations N times each under one condition, turn by turn, batched and cached.

:func:`vectors.drift.replay.replay` replays one conversation once. A study needs every conversation
× N seeded temperature samples per condition: here turn t of every (conversation, sample) is one
item of the responses engine (:func:`workbench.responses.generate_local`), so all runs advance a turn
together in batches, each turn is cached under its key (conversation, sample, condition, turn,
sampling), and a killed study resumes where it stopped. Seeds are the engine's (derived from each
batch's first key): a re-run draws the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from tqdm.auto import tqdm

from workbench.artifacts import inputs_hash
from workbench.cache import JsonlCache, cache_key
from workbench.chat import Message
from workbench.errors import InputFormatError
from workbench.generate import Sampling
from workbench.responses import generate_local
from vectors.drift.replay import Condition
from vectors.drift.transcripts import Transcript


@dataclass(frozen=True)
class ReplayTurn:
    """One message to write under a cache key: the conversation it answers (for a replay, the
    history ending with the user's turn; for the simulated user, its role-swapped view)."""

    key: str
    history: tuple[Message, ...]

    def messages(self) -> list[Message]:
        return [dict(m) for m in self.history]

    def record(self, response: str | None, error: str | None = None) -> dict[str, Any]:
        return {"response": response, "error": error}


def transcript_id(transcript: Transcript, max_turns: int | None) -> str:
    """Hash of what a replay depends on: the system prompt and the user turns replayed."""
    return inputs_hash(transcript.system_prompt, transcript.user_turns[:max_turns])


def replay_samples(
    model,
    transcripts: Sequence[Transcript],
    condition: Condition,
    sampling: Sampling,
    n_samples: int,
    cache: JsonlCache,
    max_turns: int | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> list[list[list[Message]]]:
    """``out[c][s]``: conversation c replayed as sample s under ``condition`` (system prompt, then
    each user turn followed by the model's reply). ``sampling.temperature`` must be > 0 when
    ``n_samples`` > 1, or every sample would be the same text."""
    if n_samples < 1:
        raise InputFormatError(f"need at least one sample per conversation, got {n_samples}")
    if n_samples > 1 and sampling.temperature == 0:
        raise InputFormatError("several samples need temperature sampling (temperature > 0); greedy draws one text")
    users = [t.user_turns[:max_turns] for t in transcripts]
    for transcript, turns in zip(transcripts, users):
        if not turns:
            raise InputFormatError(f"{transcript.source}: no user turns to replay")
    histories = [[[{"role": "system", "content": t.system_prompt}] if t.system_prompt else [] for _ in range(n_samples)]
                 for t in transcripts]
    ids = [transcript_id(t, max_turns) for t in transcripts]
    for turn in tqdm(range(max(len(u) for u in users)), desc=f"replay [{condition.name}]", disable=not progress, unit="turn"):
        runs = [(c, s) for c in range(len(transcripts)) if turn < len(users[c]) for s in range(n_samples)]
        items = []
        for c, s in runs:
            histories[c][s].append({"role": "user", "content": users[c][turn]})
            key = cache_key(kind="study_replay", model=model.cfg.model_name, transcript=ids[c], sample=s, turn=turn,
                            condition=condition.fingerprint, sampling=repr(sampling))
            items.append(ReplayTurn(key, tuple(histories[c][s])))
        records = generate_local(model, cache, items, sampling, batch_size, progress=False,
                                 interventions=condition.interventions)
        for (c, s), record in zip(runs, records):
            histories[c][s].append({"role": "assistant", "content": record["response"] or ""})
    return histories
