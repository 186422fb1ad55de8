"""Decomposition math on planted dictionaries: a planted feature is found and beats chance, a random
vector does not, the reconstruction curve is a least-squares share, and it is fast."""

import time

import pytest
import torch

from sae_analysis.decompose import (
    chance_baseline, decompose, decoder_cosines, reconstruction_curve, top_features,
)
from workbench.errors import ShapeError


@pytest.fixture(scope="module")
def dictionary():
    return torch.randn(8192, 256, generator=torch.Generator().manual_seed(1))


def test_planted_features_are_found_and_beat_chance(dictionary):
    unit = dictionary / dictionary.norm(dim=1, keepdim=True)
    v = 3 * unit[17] - 2 * unit[4000] + 0.05 * torch.randn(256, generator=torch.Generator().manual_seed(2))
    result = decompose(v, dictionary, k=5)
    assert result.top_positive[0].index == 17
    assert result.top_negative[0].index == 4000 and result.top_negative[0].score < 0
    assert result.beats_chance and result.n_above_chance() >= 2
    assert result.reconstruction[1] > 0.9  # two features explain nearly all of v


def test_random_vector_does_not_beat_chance(dictionary):
    beaten = 0
    for seed in range(5):
        v = torch.randn(256, generator=torch.Generator().manual_seed(100 + seed))
        beaten += decompose(v, dictionary, k=5, seed=seed).beats_chance
    assert beaten <= 1  # the 99th percentile: rarely exceeded by a random vector


def test_chance_baseline_matches_max_abs_cos_of_random_directions(dictionary):
    base = chance_baseline(dictionary, draws=100)
    assert base.draws == 100 and base.mean_max_abs_cos < base.p99_max_abs_cos < 1
    # max of 8192 |N(0, 1/256)| is about sqrt(2 ln 16384 / 256) ≈ 0.28
    assert 0.2 < base.mean_max_abs_cos < 0.35


def test_cosines_equal_the_definition(dictionary):
    v = torch.randn(256)
    expected = torch.nn.functional.cosine_similarity(dictionary, v[None], dim=1)
    assert torch.allclose(decoder_cosines(v, dictionary), expected, atol=1e-5)
    pos, neg = top_features(expected, 3)
    assert pos[0].index == int(expected.argmax()) and neg[0].index == int(expected.argmin())


def test_cached_row_norms_follow_a_new_dictionary_at_the_same_address():
    """A freed dictionary's memory is often reused by the next one of the same shape, with the same
    pointer, strides and version counter; the per-dictionary cache must not serve its stale norms.
    (``.data.copy_`` rewrites the contents without bumping the version: the same situation, forced.)"""
    W = torch.randn(4096, 128, generator=torch.Generator().manual_seed(2))
    v = torch.randn(128)
    decoder_cosines(v, W)
    W.data.copy_(3 * torch.randn(4096, 128, generator=torch.Generator().manual_seed(3)))
    expected = torch.nn.functional.cosine_similarity(W, v[None], dim=1)
    assert torch.allclose(decoder_cosines(v, W), expected, atol=1e-5)


def test_reconstruction_curve_is_least_squares_share(dictionary):
    v = torch.randn(256)
    order = [3, 9, 27, 81]
    curve = reconstruction_curve(v, dictionary, order)
    for k in range(1, 5):
        basis = dictionary[order[:k]].double().T
        fit = basis @ torch.linalg.lstsq(basis, v.double()[:, None]).solution
        assert curve[k - 1] == pytest.approx(float(fit.pow(2).sum() / v.double().pow(2).sum()), abs=1e-6)
    assert all(a <= b + 1e-12 for a, b in zip(curve, curve[1:]))


def test_shape_mismatch_is_named(dictionary):
    with pytest.raises(ShapeError, match="256"):
        decompose(torch.randn(100), dictionary)


def test_decomposition_is_fast_at_a_ci_size():
    """32768 × 1152 is 1/16 of GemmaScope 27B's 131072 × 4608 (measured in the card: see docs)."""
    W = torch.randn(32768, 1152)
    v = torch.randn(1152)
    started = time.perf_counter()
    decompose(v, W, k=20)
    assert time.perf_counter() - started < 5.0
