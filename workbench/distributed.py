"""Extraction across processes: deterministic shards of chunks, resumable per chunk, merged in order.

A paper-scale extraction (10^5 responses through a 27B model) is split over ``torchrun`` ranks.
The unit of work is a **chunk**: a fixed run of consecutive sequences (``chunk`` of them) whose
result is a small dict of tensors. The same chunks, run by the same code, are computed whether one
process or many run them, so the merged result equals a single-process run (same batches, same
sums in the same order) and any rank count can resume another's work.

- **Shard**: rank ``r`` of ``W`` owns the contiguous block of chunks ``[r·n/W, (r+1)·n/W)``.
- **Resume**: each finished chunk is saved as ``DIR/chunk-00012.safetensors`` tagged with the
  inputs hash; a re-run (any number of ranks) skips chunks already saved with the same hash, so a
  killed rank's re-run redoes only the chunks it had not finished.
- **Merge**: after a ``torch.distributed`` barrier, rank 0 reads the chunks in their original order
  (the chunk folder is the shared cache: single node, or a shared file system across nodes).
  Ranks other than 0 get ``None`` and stop after the run's barrier.

Transport is ``torch.distributed`` only (gloo on CPU, NCCL on GPUs), started from the environment
``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import Tensor
from tqdm.auto import tqdm

from workbench.artifacts import load_tensors, provenance, save_tensors
from workbench.errors import InputFormatError

DEFAULT_CHUNK = 256
# Rank 0 may generate for hours while the others wait at a barrier: a long collective timeout.
BARRIER_TIMEOUT = _dt.timedelta(hours=24)


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world_size`` ranks (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def chunks(self, n_chunks: int) -> range:
        """The contiguous block of chunk indices this rank computes."""
        return range(self.rank * n_chunks // self.world_size, (self.rank + 1) * n_chunks // self.world_size)

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. generation into a shared cache); the others run it after,
        when every cached result is there to read."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


SINGLE = Shard()


def start(device: str) -> tuple[Shard, str]:
    """Join the ``torchrun`` process group; returns this rank's shard and its device.

    ``device`` ``cuda`` becomes ``cuda:LOCAL_RANK`` with the NCCL backend; anything else uses gloo.
    Raises InputFormatError naming the variables when not started by ``torchrun``.
    """
    missing = [v for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise InputFormatError(
            f"--distributed needs the torchrun environment ({', '.join(missing)} not set): "
            "run as `torchrun --nproc-per-node N -m workbench ... --distributed`")
    shard = Shard(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if device.startswith("cuda"):
        device = f"cuda:{shard.local_rank}"
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend, timeout=BARRIER_TIMEOUT)
    return shard, device


def stop(shard: Shard) -> None:
    """Leave the process group (after a last barrier, so no rank exits while others still merge)."""
    if shard.distributed and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


@dataclass(frozen=True)
class ChunkStore:
    """Finished chunks of one computation, one safetensors file each, valid for one inputs hash."""

    folder: Path
    key: str

    def path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:05d}.safetensors"

    def load(self, index: int) -> dict[str, Tensor] | None:
        """The chunk's tensors when saved for the same inputs, else None."""
        path = self.path(index)
        if not path.is_file():
            return None
        tensors, meta = load_tensors(path)
        return tensors if meta.get("inputs_hash") == self.key else None

    def save(self, index: int, tensors: dict[str, Tensor]) -> None:
        save_tensors(self.path(index), tensors, provenance(inputs_hash=self.key, chunk=index))


@dataclass(frozen=True)
class ShardRun:
    """What this rank did: chunks computed now and chunks reused from the store."""

    rank: int
    computed: tuple[int, ...]
    reused: tuple[int, ...]


def map_chunks(
    n_chunks: int,
    compute: Callable[[int], dict[str, Tensor]],
    store: ChunkStore | None = None,
    shard: Shard = SINGLE,
    progress: bool = False,
    desc: str = "chunks",
) -> tuple[Iterator[dict[str, Tensor]] | None, ShardRun]:
    """Compute this rank's chunks (skipping saved ones), wait for all ranks, then on rank 0 return
    an iterator over every chunk's result in order (``None`` on other ranks) and what this rank did.

    Without a store (single process only) results stay in memory.
    """
    if shard.distributed and store is None:
        raise InputFormatError("a distributed run needs a chunk store that every rank can read")
    computed, reused, held = [], [], {}
    for index in tqdm(shard.chunks(n_chunks), desc=desc, disable=not progress, unit="chunk"):
        if store is not None and store.load(index) is not None:
            reused.append(index)
            continue
        result = compute(index)
        computed.append(index)
        if store is None:
            held[index] = result
        else:
            store.save(index, result)
    run = ShardRun(shard.rank, tuple(computed), tuple(reused))
    if shard.distributed:
        print(f"{desc}: rank {shard.rank}/{shard.world_size} computed chunks {list(computed)}, reused {list(reused)}",
              file=sys.stderr, flush=True)
    shard.barrier()
    if not shard.is_main:
        return None, run
    if store is None:
        return (held[i] for i in range(n_chunks)), run
    return (_must_load(store, i) for i in range(n_chunks)), run


def _must_load(store: ChunkStore, index: int) -> dict[str, Tensor]:
    tensors = store.load(index)
    if tensors is None:
        raise InputFormatError(f"{store.path(index)}: chunk missing or from other inputs after every rank finished")
    return tensors


def n_chunks(n_items: int, chunk: int) -> int:
    if chunk < 1:
        raise InputFormatError(f"chunk must be ≥ 1, got {chunk}")
    return (n_items + chunk - 1) // chunk


def map_rows(
    n_items: int,
    compute: Callable[[range], list[Tensor]],
    chunk: int = DEFAULT_CHUNK,
    store: ChunkStore | None = None,
    shard: Shard = SINGLE,
    progress: bool = False,
    desc: str = "chunks",
) -> list[Tensor] | None:
    """One tensor per item (shapes may differ: per-token activations, per-token projections),
    computed ``chunk`` items at a time by ``compute(range_of_items)`` through :func:`map_chunks`:
    on rank 0 the list in the items' order, ``None`` on the other ranks. A single process runs the
    same chunks, so its result equals a sharded run's exactly."""

    def run(index: int) -> dict[str, Tensor]:
        rows = compute(range(index * chunk, min(n_items, (index + 1) * chunk)))
        return {str(j): t.detach().cpu().clone() for j, t in enumerate(rows)}  # own storage: safetensors refuses shared

    results, _ = map_chunks(n_chunks(n_items, chunk), run, store, shard, progress, desc)
    if results is None:
        return None
    return [r[str(j)] for r in results for j in range(len(r))]
