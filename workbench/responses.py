"""The responses engine: keyed items → model answers (local hooked model or any OpenAI-compatible
server) → one cached record per item.

Why one engine: every method here starts by generating many answers (persona responses for the
Assistant Axis, contrastive trait responses, and later fine-tuning data, transcript replays,
simulated users). Generation is the slow part, so each answer is cached in a JSONL file under its
item's key (:func:`workbench.cache.run_cached`) and a killed run regenerates only what is missing.
A caller defines an item type (:class:`GenerationItem`: a key, the messages to answer, the record to
store) and gets caching, batching, per-batch seeding and the API fallback from here.

Seeds are per batch and derived from the batch's first key (:func:`batch_sampling`), so a resumed
run samples each batch exactly as an uninterrupted one does.
"""

from __future__ import annotations

import json

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, Sequence, TypeVar

from workbench.api import ChatClient, ChatRequest
from workbench.artifacts import inputs_hash
from workbench.cache import JsonlCache, run_cached
from workbench.chat import ChatTokens, Message, format_conversation, messages
from workbench.generate import Sampling, generate_responses
from workbench.hooks import Intervention


class GenerationItem(Protocol):
    """One answer to generate.

    ``key`` names the item in the cache (a :func:`workbench.cache.cache_key` string: the same item
    always has the same key, different items never share one). ``messages()`` is the conversation
    the model answers: a system prompt if any, then turns ending with the user's. ``record`` is
    what the cache stores for the answer (``response`` None and ``error`` set when the API failed).
    """

    @property
    def key(self) -> str: ...

    def messages(self) -> list[Message]: ...

    def record(self, response: str | None, error: str | None = None) -> dict[str, Any]: ...


Item = TypeVar("Item", bound=GenerationItem)


def response_cache(cache_dir: str | Path, prefix: str, generator: str, sampling: Sampling, *settings: Any) -> JsonlCache:
    """The cache of one kind of response (``prefix``), one generator (model or API model name), one
    sampling setting and any other dataclass ``settings`` that shape the answers (prompt templates).

    The file is ``{prefix}_{generator slug}_{hash of the settings}.jsonl``: changing a setting
    starts a new cache instead of mixing answers drawn under different settings.
    """
    slug = "".join(c if c.isalnum() else "-" for c in generator).strip("-")
    tag = inputs_hash(sampling.__dict__, *(vars(s) for s in settings))
    return JsonlCache(Path(cache_dir) / f"{prefix}_{slug}_{tag}.jsonl")


def batch_sampling(sampling: Sampling, batch: Sequence[GenerationItem]) -> Sampling:
    """``sampling`` with a seed derived from the batch's first key, so a resumed run draws each
    batch the same way; every other setting (``stop_at_eos`` included) is kept."""
    seed = (sampling.seed + int(inputs_hash(batch[0].key), 16)) % 2**31
    return replace(sampling, seed=seed)


def generate_local(
    model, cache: JsonlCache, items: Sequence[Item], sampling: Sampling, batch_size: int = 8, progress: bool = True,
    description: str = "generate responses", interventions: Sequence[Intervention] = (),
) -> list[dict[str, Any]]:
    """Generate the missing answers with the local hooked model, ``batch_size`` items per batch,
    ``interventions`` active (their identity belongs in the items' keys); returns the records of all
    ``items`` (cached and new) in their order."""

    def work(batch: list[Item]) -> list[dict[str, Any]]:
        conversations = [item.messages() for item in batch]
        texts = generate_responses(model, conversations, batch_sampling(sampling, batch),
                                   interventions=interventions, batch_size=batch_size, progress=False)
        return [item.record(text) for item, text in zip(batch, texts)]

    return run_cached(cache, [(item.key, item) for item in items], work, batch_size, description, progress)


def generate_api(
    client: ChatClient, cache: JsonlCache, items: Sequence[Item], sampling: Sampling, batch_size: int = 64,
    progress: bool = True, description: str = "generate responses (API)",
) -> list[dict[str, Any]]:
    """Generate the missing answers on an OpenAI-compatible endpoint, ``batch_size`` items per
    batch; a request that fails after the client's retries is recorded with its error (and left out
    by :func:`usable`), not raised. Returns all records in the order of ``items``.

    Items of a batch with the same messages (samples of one prompt) go out as one request for ``n``
    samples (vLLM batches them and shares the prompt's prefill); what a server does not serve that
    way (it ignores ``n``, or fails the request) is asked again one sample per request."""

    def request(item: Item, n: int = 1) -> ChatRequest:
        return ChatRequest(tuple(item.messages()), temperature=sampling.temperature, top_p=sampling.top_p,
                           max_tokens=sampling.max_new_tokens, n=n)

    def work(batch: list[Item]) -> list[dict[str, Any]]:
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(batch):
            groups.setdefault(json.dumps(item.messages()), []).append(i)
        grouped = list(groups.values())
        results = client.complete_many([request(batch[g[0]], len(g)) for g in grouped])
        answers: dict[int, tuple[str | None, str | None]] = {}
        for positions, result in zip(grouped, results):
            if len(positions) == 1:  # a single sample's failure is final (the client has retried it)
                answers[positions[0]] = (result.text if result.ok else None, result.error)
            elif result.ok:
                answers.update((position, (text, None)) for position, text in zip(positions, result.texts))
        missing = [i for i in range(len(batch)) if i not in answers]
        for i, result in zip(missing, client.complete_many([request(batch[i]) for i in missing])):
            answers[i] = (result.text if result.ok else None, result.error)
        return [item.record(text.strip() if text is not None else None, error)
                for item, (text, error) in ((item, answers[i]) for i, item in enumerate(batch))]

    return run_cached(cache, [(item.key, item) for item in items], work, batch_size, description, progress)


def usable(record: dict[str, Any]) -> bool:
    """A response that exists and is not empty (empty replies have no tokens to average)."""
    return record.get("error") is None and bool((record.get("response") or "").strip())


def record_chats(model, records: Sequence[dict[str, Any]]) -> list[ChatTokens]:
    """Chat tokens of answered records (their ``system``, ``question`` and ``response``), ready to
    read activations over the response."""
    return [format_conversation(model.tokenizer, messages(r["system"], r["question"], r["response"])) for r in records]
