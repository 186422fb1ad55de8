"""Persona-space geometry on synthetic vectors with known answers."""

import pytest
import torch

from workbench.errors import InputFormatError, ShapeError
from vectors.axis import space


def test_axis_is_difference_of_group_means():
    default = torch.tensor([[[1.0, 0.0]], [[3.0, 0.0]]])
    roles = torch.tensor([[[0.0, 1.0]], [[0.0, 3.0]], [[0.0, 2.0]]])
    assert torch.allclose(space.assistant_axis(default, roles), torch.tensor([[2.0, -2.0]]))
    with pytest.raises(ShapeError):
        space.assistant_axis(default, torch.zeros(2, 1, 3))


def test_centered_cosine_removes_shared_component():
    shared = torch.tensor([100.0, 0.0, 0.0])
    vectors = torch.stack([shared + torch.tensor([0, 1.0, 0]), shared - torch.tensor([0, 1.0, 0])])
    assert space.cosine_matrix(vectors)[0, 1] > 0.99
    assert space.cosine_matrix(vectors, centered=True)[0, 1] == pytest.approx(-1.0)


def test_pca_auc_and_projection_on_separable_data():
    torch.manual_seed(0)
    direction = torch.zeros(16)
    direction[0] = 1.0
    labels = [True] * 5 + [False] * 10
    points = torch.randn(15, 16) * 0.1 + torch.tensor([3.0 if l else -3.0 for l in labels])[:, None] * direction
    fit = space.pca(points)
    assert fit.explained_variance_ratio[0] > 0.9 and abs(float(fit.components[0] @ direction)) > 0.99
    for sign in (1.0, -1.0):
        oriented = space.pca(points, orient_to=sign * direction)
        assert float(oriented.components[0] @ direction) * sign > 0.99
        assert torch.allclose(oriented.coordinates[:, 0] * sign, fit.coordinates[:, 0] * torch.sign(fit.components[0, 0]))
    assert space.separation_auc(space.project(points, direction), labels) == 1.0
    assert space.separation_auc(space.project(points, -direction), labels) == 0.0
    per_layer = space.heldout_auc_per_layer(torch.stack([points, -points], 1), labels, torch.stack([direction, direction]))
    assert per_layer == [1.0, 0.0]
    groups = ["default"] * 5 + ["role"] * 10
    mixed = ["default"] * 5 + ["near"] * 5 + ["far"] * 5
    shifted = points.clone()
    shifted[5:10] = points[:5] + 0.01  # the "near" group sits on the default responses
    by_group = space.heldout_auc_by_group(shifted[:, None], mixed, direction[None])
    assert by_group["far"] == [1.0] and 0.2 < by_group["near"][0] < 0.8
    means = space.mean_by_group(space.project(points, direction), groups)
    assert means["default"] > 2.5 and means["role"] < -2.5
    assert space.axis_cosines(points, direction)[:5].min() > 0.9
    with pytest.raises(InputFormatError, match="both default and role"):
        space.separation_auc([1.0, 2.0], [True, True])
    with pytest.raises(InputFormatError, match="at least 3"):
        space.pca(points[:2])
