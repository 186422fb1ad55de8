"""Append-only JSONL caches that make long generation and judging runs resumable.

Each line is one finished item ``{"key": ..., ...}``. Lines are appended and flushed one at a time,
so a run killed at any point loses at most the item being written; a torn last line (the process
died mid-write) is detected on load, reported, and cut off before the next append. Re-running a job
skips every key already present.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from tqdm.auto import tqdm

from workbench.errors import InputFormatError

T = TypeVar("T")


def cache_key(**fields: Any) -> str:
    """Canonical string key of an item, e.g. ``cache_key(persona=..., prompt=0, question=3, sample=0)``."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


class JsonlCache:
    """A resumable key → record store backed by one append-only JSONL file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self.torn_lines = 0
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise InputFormatError(f"{self.path}: cannot read the cache ({exc.strerror})") from None
        good_end = 0
        for number, line_end in enumerate(_line_ends(raw), start=1):
            line = raw[good_end:line_end].strip()
            if line:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # JSON and UTF-8 errors; absurdly deep nesting
                    record = None
                if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                    raise InputFormatError(
                        f"{self.path}: line {number} (ending at byte {line_end}) is not a cache record; "
                        'expected a JSON object with a string field "key" (the file is not a '
                        "workbench cache or was edited by hand)"
                    )
                self.records[record["key"]] = record
            good_end = line_end + 1
        if good_end < len(raw):  # a torn last line from a killed run: drop it
            self.torn_lines = 1
            print(f"{self.path}: skipped a torn last line ({len(raw) - good_end} bytes)", file=sys.stderr)
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def put(self, key: str, **record: Any) -> dict[str, Any]:
        """Append one finished item and flush it to disk before returning."""
        entry = {"key": key, **record}
        try:
            line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from a broken API answer): \u escapes round-trip it
            line = (json.dumps(entry) + "\n").encode("ascii")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records[key] = entry
        return entry


def _line_ends(raw: bytes) -> Iterable[int]:
    start = 0
    while (end := raw.find(b"\n", start)) >= 0:
        yield end
        start = end + 1


def run_cached(
    cache: JsonlCache,
    items: Sequence[tuple[str, T]],
    work: Callable[[list[T]], list[dict[str, Any]]],
    batch_size: int,
    desc: str,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run ``work`` over the items whose key is not cached yet, in batches, caching each result.

    ``work`` maps a batch of item payloads to one record (a dict) per payload. Returns the records
    of all items, cached and new, in the order of ``items``.
    """
    todo = [(key, payload) for key, payload in items if key not in cache]
    with tqdm(total=len(items), initial=len(items) - len(todo), desc=desc, disable=not progress, unit="item") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            for (key, _), record in zip(batch, work([payload for _, payload in batch])):
                cache.put(key, **record)
            bar.update(len(batch))
    return [cache.records[key] for key, _ in items]
