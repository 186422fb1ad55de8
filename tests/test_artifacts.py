import pickle

import pytest
import torch

from workbench.artifacts import LayerVectors, load_pt_tensors, provenance
from workbench.errors import InputFormatError, ShapeError


def test_round_trip_and_arithmetic(tmp_path):
    v = LayerVectors(torch.randn(30, 576), provenance(model="smollm2-135m-instruct", method="test"))
    path = v.save(tmp_path / "axis")
    loaded = LayerVectors.load(path, n_layers=30, d_model=576)
    assert torch.equal(loaded.vectors, v.vectors)
    assert loaded.metadata["model"] == "smollm2-135m-instruct" and "created" in loaded.metadata
    assert torch.allclose((2 * v - v).vectors, v.vectors)


def test_wrong_shape_names_both(tmp_path):
    path = LayerVectors(torch.randn(46, 4608)).save(tmp_path / "gemma")
    with pytest.raises(ShapeError, match=r"\(46, 4608\).*\[30, 576\]"):
        LayerVectors.load(path, n_layers=30, d_model=576)


def test_pickled_object_is_refused_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(InputFormatError, match="refused"):
        load_pt_tensors(path)
    assert not marker.exists()
