"""Regenerate the binary files of the bad-inputs corpus (``python tests/bad_inputs/make_corpus.py``).

The text files (JSON, JSONL: caches, trait, persona, question and transcript files) are written by
hand and kept as they are; the binary ones come from here so their content is reproducible and reviewable. Vectors are sized for the shipped model
(30 layers, d_model 576). The two ``exploit_*.pt`` files are *live*: unpickled without
``weights_only`` they run ``exec`` and create the file named by ``$WORKBENCH_PWNED_MARKER``; the
tests prove that and then check the workbench never runs them.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch
from safetensors.torch import save

HERE = Path(__file__).parent
N_LAYERS, D_MODEL = 30, 576
PAYLOAD = "import os; open(os.environ['WORKBENCH_PWNED_MARKER'], 'w').write('pwned')"


class Exploit:
    """Unpickling this calls ``exec(PAYLOAD)``."""

    def __reduce__(self):
        return exec, (PAYLOAD,)


def vectors_file(name: str, tensors: dict[str, torch.Tensor]) -> None:
    (HERE / name).write_bytes(save({k: v.contiguous() for k, v in tensors.items()}))


def main() -> None:
    torch.manual_seed(0)
    good = torch.randn(N_LAYERS, D_MODEL)
    vectors_file("vectors_wrong_d_model.safetensors", {"vectors": torch.randn(N_LAYERS, 512)})
    vectors_file("vectors_wrong_layer_count.safetensors", {"vectors": torch.randn(N_LAYERS + 1, D_MODEL)})
    vectors_file("vectors_one_dimensional.safetensors", {"vectors": torch.randn(D_MODEL)})
    nan = good.clone()
    nan[7, 3] = float("nan")
    vectors_file("vectors_nan.safetensors", {"vectors": nan})
    inf = good.clone()
    inf[0, 0] = float("inf")
    vectors_file("vectors_inf.safetensors", {"vectors": inf})
    vectors_file("vectors_zero_norm.safetensors", {"vectors": torch.zeros(N_LAYERS, D_MODEL)})
    zero_layer = good.clone()
    zero_layer[12] = 0
    vectors_file("vectors_zero_layer.safetensors", {"vectors": zero_layer})
    vectors_file("vectors_integer_dtype.safetensors", {"vectors": torch.ones(N_LAYERS, D_MODEL, dtype=torch.int32)})
    vectors_file("vectors_wrong_tensor_name.safetensors", {"axis": good})
    whole = save({"vectors": good})
    (HERE / "vectors_truncated.safetensors").write_bytes(whole[: len(whole) // 2])
    (HERE / "vectors_not_safetensors.safetensors").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    for stem in ("vectors_sidecar_invalid_json", "vectors_sidecar_not_object", "vectors_sidecar_not_utf8"):
        vectors_file(f"{stem}.safetensors", {"vectors": good})
    (HERE / "vectors_sidecar_invalid_json.json").write_text('{"model": "smollm2-135m-instruct",')
    (HERE / "vectors_sidecar_not_object.json").write_text('["model", "smollm2-135m-instruct"]')
    (HERE / "vectors_sidecar_not_utf8.json").write_bytes(b'{"model": "\xff\xfe"}')
    vectors_file("vectors_layer_fixture.safetensors", {"vectors": good})

    (HERE / "exploit_pickle.pt").write_bytes(pickle.dumps(Exploit(), protocol=2))
    buffer = io.BytesIO()
    torch.save({"vectors": good[:2], "hook": Exploit()}, buffer)
    (HERE / "exploit_torch_zip.pt").write_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    torch.save({"vectors": good}, buffer)
    (HERE / "pt_truncated.pt").write_bytes(buffer.getvalue()[:1000])
    (HERE / "pt_not_a_pickle.pt").write_bytes(b"PK\x03\x04 this is not a torch file" * 8)
    capping = {"directions": good[:2].contiguous(), "thresholds": torch.zeros(2, 2)}
    vectors_file("capping_layers_not_integers.safetensors", capping)
    (HERE / "capping_layers_not_integers.json").write_text('{"layers": ["10", 11.5], "percentiles": [0.25, 0.75]}')
    vectors_file("capping_shape_mismatch.safetensors", capping)
    (HERE / "capping_shape_mismatch.json").write_text('{"layers": [10, 11, 12], "percentiles": [0.25, 0.75]}')
    # A .pt vector is [n_layers, d_model] or persona_vectors' [n_layers + 1, d_model]: 32 rows is neither,
    # and 31 rows of d_model 512 is a persona_vectors file of another model.
    torch.save(torch.cat([good, good[:2]]), HERE / "pt_wrong_layer_count.pt")
    torch.save(torch.cat([good[:1], good])[:, :512].contiguous(), HERE / "pt_wrong_d_model.pt")
    torch.save({"axis": good}, HERE / "released_vectors_not_a_tensor.pt")


if __name__ == "__main__":
    main()
