"""Run under ``torchrun`` by tests/workbench/test_distributed.py: the drift calibration projections
and the SAE corpus pass, sharded over the ranks (gloo, the shipped model), rank 0 writing the merged
results to ``OUT/merged.safetensors``. Usage (PYTHONSAFEPATH=1, so tests/vectors does not shadow
the vectors package): ``torchrun ... tests/shard_worker.py OUT AXIS``. The test imports the inputs
from here for its single-process run."""

import sys
from pathlib import Path

from safetensors.torch import save_file

from workbench.artifacts import load_vectors
from workbench.chat import format_conversation, messages
from workbench.distributed import ChunkStore, start, stop
from workbench.models import load_model

LAYER = 12
CHUNK = 2  # 6 conversations, 3 chunks: rank 0 takes chunk 0, rank 1 chunks 1 and 2
ANSWERS = ("The sea covers most of the planet and stores heat.", "Tides follow the Moon.",
           "Arr, the sea be me mistress!", "The sea whispers the names of the dead, child.",
           "Sure! Fisheries and shipping depend on it.", "O rolling sea, I sing of thy deep!")


def calibration_chats(model):
    return [format_conversation(model.tokenizer, messages(None, "Tell me about the sea.", a)) for a in ANSWERS]


def corpus(model):
    from sae_analysis.pipeline import corpus_rows

    return corpus_rows(model, limit=6)


def main(out: Path, axis_path: Path) -> None:
    from sae_analysis.contexts import token_activations
    from vectors.drift.capping import calibrate

    shard, device = start("cpu")
    model = load_model(None, device=device)
    axis = load_vectors(axis_path, model.cfg.n_layers, model.cfg.d_model)
    config = calibrate(model, axis, calibration_chats(model), [LAYER], progress=False, shard=shard,
                       chunk_dir=out / "chunks" / "calibrate", chunk=CHUNK)
    acts = token_activations(model, corpus(model), LAYER, shard=shard, store=ChunkStore(out / "chunks" / "corpus", "k"),
                             chunk=CHUNK)
    if shard.is_main:
        save_file({"thresholds": config.thresholds.contiguous(), **{f"acts{i}": a for i, a in enumerate(acts)}},
                  str(out / "merged.safetensors"))
    stop(shard)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
