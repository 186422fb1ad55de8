"""Extraction over torchrun ranks (gloo, 2 CPU processes, the shipped model): the merged persona
vectors and held-out means equal the single-process run's, and a re-run after a rank lost its
unfinished shard recomputes that shard only."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vectors.axis.pipeline as axis_module
from workbench.distributed import ChunkStore, Shard, map_chunks
from workbench.errors import InputFormatError
from workbench.generate import Sampling

ARGS = ["--n-personas", "2", "--n-extraction", "2", "--n-heldout", "1", "--max-new-tokens", "8", "--chunk", "4"]
CONFIG = axis_module.AxisConfig(n_roles=2, n_extraction=2, n_heldout=1, chunk=4, progress=False,
                                sampling=Sampling(max_new_tokens=8, temperature=0.7, top_p=0.9, seed=0))
ARTIFACTS = ("persona_vectors", "heldout_means")


def test_shards_cover_every_chunk_once():
    for world in (1, 2, 3, 5):
        owned = [i for rank in range(world) for i in Shard(rank, world).chunks(11)]
        assert owned == list(range(11))


def test_single_process_store_resumes(tmp_path):
    store = ChunkStore(tmp_path, "k1")
    calls = []

    def compute(i):
        calls.append(i)
        return {"x": torch.full((2,), float(i))}

    results, run = map_chunks(3, compute, store)
    assert [float(r["x"][0]) for r in results] == [0.0, 1.0, 2.0] and run.computed == (0, 1, 2)
    (tmp_path / "chunk-00001.safetensors").unlink()
    results, run = map_chunks(3, compute, store)
    assert [float(r["x"][0]) for r in results] == [0.0, 1.0, 2.0] and run.computed == (1,) and run.reused == (0, 2)
    _, run = map_chunks(3, compute, ChunkStore(tmp_path, "other inputs"))
    assert run.computed == (0, 1, 2)


def test_distributed_without_torchrun_is_a_clear_error(monkeypatch):
    from workbench.distributed import start

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(InputFormatError, match="torchrun"):
        start("cpu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(*args: str) -> str:
    """``torchrun --nproc-per-node 2 ARGS`` on loopback (gloo); its stderr. PYTHONSAFEPATH: a script's
    folder is not put first on sys.path (tests/vectors would shadow the vectors package)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONSAFEPATH": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def _torchrun(out: Path) -> str:
    return _two_ranks("-m", "workbench", "axis", "--out", str(out), *ARGS, "--distributed")


def _values(out: Path, name: str) -> torch.Tensor:
    return load_file(str(out / "artifacts" / f"{name}.safetensors"))["values"]


def test_torchrun_two_ranks_equal_single_process_and_resume_one_shard(model, tmp_path):
    single = tmp_path / "single"
    axis_module.run_axis(model, CONFIG, single)
    dist = tmp_path / "dist"
    (dist / "cache").mkdir(parents=True)
    for cached in (single / "cache").glob("responses_*.jsonl"):  # the same responses: no generation here
        shutil.copy(cached, dist / "cache")
    log = _torchrun(dist)
    assert "rank 1/2 computed chunks [1, 2]" in log, log[-2000:]
    for name in ARTIFACTS:
        assert torch.allclose(_values(dist, name), _values(single, name), atol=1e-6, rtol=0)

    # Rank 1 "killed" before it finished: its chunks and the merged outputs are gone. Rank 0's stay.
    stores = [dist / "cache" / "chunks" / name for name in ARTIFACTS]
    for name in ARTIFACTS:
        (dist / "artifacts" / f"{name}.safetensors").unlink()
    kept, lost = {}, []
    for store in stores:
        chunks = sorted(store.glob("chunk-*.safetensors"))
        n = len(chunks)
        for i in Shard(1, 2).chunks(n):
            chunks[i].unlink()
            lost.append(chunks[i])
        kept.update({p: p.stat().st_mtime_ns for p in chunks if p.exists()})
    assert kept and lost
    log = _torchrun(dist)
    assert "rank 0/2 computed chunks [], reused [0]" in log, log[-2000:]
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items()), "rank 0 recomputed a finished chunk"
    assert all(p.exists() for p in lost)
    for name in ARTIFACTS:
        assert torch.allclose(_values(dist, name), _values(single, name), atol=1e-6, rtol=0)


def test_torchrun_drift_calibration_and_sae_corpus_pass_equal_single_process(model, tmp_path):
    """The drift projections (the band's calibration) and the SAE corpus pass, sharded over 2 ranks
    in chunks of 2 conversations (tests/shard_worker.py), equal the single-process run's."""
    from drift_helpers import quick_axis
    from shard_worker import CHUNK, LAYER, calibration_chats, corpus

    from sae_analysis.contexts import token_activations
    from vectors.drift.capping import calibrate

    axis = quick_axis(model).save(tmp_path / "axis.safetensors")
    log = _two_ranks(str(Path(__file__).parents[1] / "shard_worker.py"), str(tmp_path), str(axis))
    assert "calibrate: rank 1/2 computed chunks [1, 2]" in log, log[-2000:]
    merged = load_file(str(tmp_path / "merged.safetensors"))
    single = calibrate(model, quick_axis(model), calibration_chats(model), [LAYER], progress=False)
    assert torch.allclose(merged["thresholds"], single.thresholds, atol=1e-6, rtol=0)
    acts = token_activations(model, corpus(model), LAYER, chunk=CHUNK)
    assert len(acts) == 6 and not any(f"acts{len(acts)}" in k for k in merged)
    for i, a in enumerate(acts):
        assert torch.allclose(merged[f"acts{i}"], a, atol=1e-6, rtol=0)
