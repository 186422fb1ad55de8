import pickle

import pytest
import torch

from workbench.artifacts import LayerVectors, load_pt_tensors, load_vectors, provenance
from workbench.errors import InputFormatError, ShapeError


def test_round_trip_and_arithmetic(tmp_path):
    v = LayerVectors(torch.randn(30, 576), provenance(model="smollm2-135m-instruct", method="test"))
    path = v.save(tmp_path / "axis")
    loaded = load_vectors(path, n_layers=30, d_model=576)
    assert torch.equal(loaded.vectors, v.vectors)
    assert loaded.metadata["model"] == "smollm2-135m-instruct" and "created" in loaded.metadata
    assert torch.allclose((2 * v - v).vectors, v.vectors)


def test_wrong_shape_names_both(tmp_path):
    path = LayerVectors(torch.randn(46, 4608)).save(tmp_path / "gemma")
    with pytest.raises(ShapeError, match=r"d_model 4608 but the model has 576: .*\(46, 4608\).*\[30, 576\]"):
        load_vectors(path, n_layers=30, d_model=576)
    torch.save(torch.randn(27, 2560), tmp_path / "other.pt")
    with pytest.raises(ShapeError, match=r"d_model 2560 but the model has 576: .*\(27, 2560\).*\[30, 576\].*\[31, 576\]"):
        load_vectors(tmp_path / "other.pt", n_layers=30, d_model=576)


def test_pt_rows_follow_the_file_convention(tmp_path):
    """30 rows: the Assistant Axis release, row L = layer L; 31 rows: persona_vectors, row i =
    hidden_states[i], so row 0 (embeddings) goes and row 13 is our layer 12."""
    rows = torch.randn(31, 576, generator=torch.Generator().manual_seed(0))
    torch.save(rows[1:].clone(), tmp_path / "assistant_axis.pt")
    torch.save(rows, tmp_path / "evil_response_avg_diff.pt")
    axis = load_vectors(tmp_path / "assistant_axis.pt", 30, 576)
    persona = load_vectors(tmp_path / "evil_response_avg_diff.pt", 30, 576)
    assert torch.equal(axis.vectors, persona.vectors) and torch.equal(persona.at(12), rows[13])
    assert persona.metadata["method"] == "imported persona_vectors .pt" and "1..30 -> layers 0..29" in (
        persona.metadata["layer_convention"])
    assert axis.metadata["source"] == str(tmp_path / "assistant_axis.pt")
    assert load_vectors(tmp_path / "evil_response_avg_diff.pt").n_layers == 31  # without the model's shape: as stored
    assert torch.equal(LayerVectors.load(tmp_path / "assistant_axis.pt", 30, 576).vectors, axis.vectors)


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
