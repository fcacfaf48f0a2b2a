"""Landscape tools against dense Hessians, synthetic trajectories and direct evaluation."""

import numpy as np
import pytest
import torch

from freqdyn.errors import InputError
from freqdyn.grok.landscape import (
    hessian_extremes,
    trainable_parameters,
    trajectory_pca,
)


def tiny_problem(seed=0):
    """A 3-6-2 tanh MLP in float64 with a cross-entropy loss on 10 fixed points."""
    generator = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(),
                                torch.nn.Linear(6, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64))
    x = torch.randn(10, 3, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 2, (10,), generator=generator)

    def loss_fn():
        return torch.nn.functional.cross_entropy(model(x), y)

    return model, loss_fn, x, y


def test_lanczos_extremes_match_dense_hessian():
    model, loss_fn, x, y = tiny_problem()
    params = trainable_parameters(model)
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in params]
    theta = torch.cat([p.detach().reshape(-1) for p in params])

    def loss_of_flat(flat):
        pieces = torch.split(flat, sizes)
        named = {n: piece.reshape(p.shape)
                 for n, piece, p in zip(names, pieces, params, strict=True)}
        out = torch.func.functional_call(model, named, (x,))
        return torch.nn.functional.cross_entropy(out, y)

    dense = torch.autograd.functional.hessian(loss_of_flat, theta).numpy()
    eigenvalues = np.linalg.eigvalsh(dense)
    extremes = hessian_extremes(loss_fn, params, seed=1)
    assert extremes.lambda_max == pytest.approx(eigenvalues[-1], rel=1e-8)
    assert extremes.lambda_min == pytest.approx(eigenvalues[0], rel=1e-8)
    assert eigenvalues[0] < 0 < eigenvalues[-1]  # the tiny model is at a saddle-ish point
    assert extremes.inverted_condition == pytest.approx(eigenvalues[0] / eigenvalues[-1],
                                                        rel=1e-7)


def test_trajectory_pca_recovers_known_variance_shares():
    rng = np.random.default_rng(3)
    d, steps = 40, 201
    basis, _ = np.linalg.qr(rng.standard_normal((d, 3)))
    t = np.linspace(0.0, 1.0, steps)
    # Orthogonal zero-mean sequences over the first `steps - 1` rows (the last is θ_T).
    coefficients = np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t),
                             np.cos(6 * np.pi * t)], axis=1)[:-1]
    coefficients *= np.array([3.0, 2.0, 0.5])
    final = rng.standard_normal(d)
    snapshots = np.vstack([final + coefficients @ basis.T + 0.7 * basis[:, 0], final])
    centred = coefficients - coefficients.mean(axis=0)
    energy = (centred**2).sum(axis=0)
    expected = np.sort(energy / energy.sum())[::-1]
    pca = trajectory_pca(snapshots)
    np.testing.assert_allclose(pca.variance_share[:3], expected, rtol=1e-10)
    assert pca.variance_share[3:].sum() < 1e-20
    assert pca.top2_share == pytest.approx(expected[:2].sum(), rel=1e-10)
    # The leading direction is ±basis[:, 0] and the projections are (θ_t − θ_T)·v₁.
    assert abs(pca.components[0] @ basis[:, 0]) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(pca.projections[:, 0],
                               (snapshots[:-1] - final) @ pca.components[0], rtol=1e-12)


def test_trajectory_pca_rejects_short_input():
    with pytest.raises(InputError, match="snapshots"):
        trajectory_pca(np.zeros((2, 5)))


