"""Robustness metrics against closed forms and direct sums; abelian tests on hand-made models."""

import math

import numpy as np
import pytest
import torch

from freqdyn.errors import CaseError
from freqdyn.grok.robustness import (
    information_metrics,
    matrix_mutual_information,
    matrix_renyi_entropy,
    normalized_gram,
    perturbation_sigma,
)


def test_sigma_schedule_follows_the_max_rule():
    assert perturbation_sigma(0.0, 0.5, 0.4) == 0.5
    assert perturbation_sigma(0.1, 0.5, 0.4) == pytest.approx(0.45)
    assert perturbation_sigma(0.5, 0.5, 0.4) == 0.4
    assert perturbation_sigma(1.0, 0.06, 0.03) == 0.03
    with pytest.raises(CaseError, match="train_accuracy"):
        perturbation_sigma(1.5, 0.5, 0.4)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
def test_identity_gram_has_entropy_log_n(alpha):
    assert matrix_renyi_entropy(torch.eye(7, dtype=torch.float64), alpha) \
        == pytest.approx(math.log(7), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_rank_one_gram_has_zero_entropy(alpha):
    features = torch.tensor([[1.0, 2.0, -1.0]]).repeat(5, 1) * torch.arange(1, 6)[:, None]
    gram = normalized_gram(features)
    np.testing.assert_allclose(gram.numpy(), 1.0, rtol=1e-14)
    assert abs(matrix_renyi_entropy(gram, alpha)) < 1e-12


def random_gram(seed, n=12, width=5):
    generator = torch.Generator().manual_seed(seed)
    return normalized_gram(torch.randn(n, width, generator=generator, dtype=torch.float64))


def test_renyi_order_two_is_the_frobenius_closed_form():
    gram = random_gram(0)
    n = gram.shape[0]
    expected = -math.log(float((gram**2).sum()) / n**2)
    assert matrix_renyi_entropy(gram, 2.0) == pytest.approx(expected, rel=1e-12)


def test_von_neumann_is_the_alpha_to_one_limit():
    gram = random_gram(1)
    von_neumann = matrix_renyi_entropy(gram, 1.0)
    # Direct: −tr(A log A) through scipy's matrix logarithm.
    from scipy.linalg import logm
    a = gram.numpy() / gram.shape[0]
    eigen = np.linalg.eigvalsh(a)
    kept = eigen > 1e-14
    direct = -np.sum(eigen[kept] * np.log(eigen[kept]))
    assert von_neumann == pytest.approx(direct, rel=1e-10)
    full_rank = random_gram(1, n=4, width=6).numpy() / 4
    assert matrix_renyi_entropy(torch.from_numpy(full_rank * 4), 1.0) \
        == pytest.approx(float(-np.trace(full_rank @ logm(full_rank)).real), rel=1e-8)
    for epsilon in (1e-3, -1e-3):
        near = matrix_renyi_entropy(gram, 1.0 + epsilon)
        assert near == pytest.approx(von_neumann, abs=5e-3 * abs(von_neumann) + 1e-6)
    # The error is first order in ε, with opposite signs on either side of 1.
    assert (matrix_renyi_entropy(gram, 1.001) - von_neumann) \
        * (matrix_renyi_entropy(gram, 0.999) - von_neumann) < 0


def test_mutual_information_closed_forms():
    n = 6
    identity = torch.eye(n, dtype=torch.float64)
    ones = torch.ones(n, n, dtype=torch.float64)
    gram = random_gram(2, n=n)
    # Hadamard with all-ones is R itself: I(R; 11ᵀ) = H(R) + 0 − H(R) = 0.
    assert abs(matrix_mutual_information(gram, ones)) < 1e-12
    # I(1; 1) = log n + log n − log n.
    assert matrix_mutual_information(identity, identity) == pytest.approx(math.log(n), rel=1e-12)
    # Symmetric in its arguments, for any α.
    other = random_gram(3, n=n)
    for alpha in (1.0, 2.0):
        assert matrix_mutual_information(gram, other, alpha) \
            == pytest.approx(matrix_mutual_information(other, gram, alpha), rel=1e-12)


def test_information_metrics_of_an_unperturbed_batch():
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    same = information_metrics(features, features)
    assert same["ed"] < 1e-12 and abs(same["mid"]) < 1e-12
    assert same["pe"] == pytest.approx(same["entropy"], rel=1e-12)
    noisy = features + 0.5 * torch.randn(10, 4, generator=generator, dtype=torch.float64)
    moved = information_metrics(features, noisy)
    gram, gram_noisy = normalized_gram(features), normalized_gram(noisy)
    assert moved["pe"] == pytest.approx(matrix_renyi_entropy(gram_noisy), rel=1e-12)
    assert moved["ed"] == pytest.approx(abs(matrix_renyi_entropy(gram_noisy)
                                            - matrix_renyi_entropy(gram)), rel=1e-12)
    assert moved["mid"] == pytest.approx(
        matrix_mutual_information(gram, gram) - matrix_mutual_information(gram, gram_noisy),
        rel=1e-12)


def test_entropy_rejects_bad_order():
    with pytest.raises(CaseError, match="renyi_alpha"):
        matrix_renyi_entropy(torch.eye(3), 0.0)
