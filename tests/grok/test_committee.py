"""Committee machine: statistics, exact loss decomposition, GD step, twin, kernels, alignment."""

import numpy as np
import pytest
import torch
from torch.func import jvp

from freqdyn.errors import InputError
from freqdyn.grok.committee import (
    activation,
    k0_gram,
    kernel_alignment,
    kernel_descent_losses,
    kernel_regression_losses,
    loss_decomposition,
    ntk_gram,
    output_from_statistics,
    population_loss_from_weights,
    stack_tasks,
    sufficient_statistics,
    task_difficulty,
    teacher_task,
    train_committee,
)

D64 = torch.float64



def _committee_output(weights, x, alpha, eps):
    """f(W, x) = (α/N) Σ_i φ(w_i·x) neuron by neuron, the independent reference of the
    statistics form; W (..., N, D), x (..., P, D) → (..., P)."""
    alpha, eps = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (alpha, eps))
    h = x @ weights.transpose(-1, -2)
    return alpha[..., None] * activation(h, eps[..., None, None]).mean(-1)

def _setup(dim=6, n_train=30, n_test=40, width=8, seed=0, target_scale=0.5):
    gen = torch.Generator().manual_seed(seed)
    task = teacher_task(dim, n_train, n_test, gen, target_scale=target_scale)
    w0 = torch.randn(width, dim, generator=gen, dtype=D64)
    return task, w0, gen


def _centered_loss(weights, w0, x, y, alpha, eps):
    f = _committee_output(weights, x, alpha, eps) - _committee_output(w0, x, alpha, eps)
    return ((f - y) ** 2).mean()


def test_statistics_reproduce_neuron_sum():
    task, w0, _ = _setup()
    w_bar, second = sufficient_statistics(w0)
    direct = _committee_output(w0, task.x_test, 1.7, 0.3)
    assert torch.allclose(output_from_statistics(w_bar, second, task.x_test, 1.7, 0.3),
                          direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target_scale", [0.5, 1.0])
def test_decomposition_equals_neuron_level_gaussian_moments(target_scale):
    task, w0, gen = _setup(target_scale=target_scale)
    w = w0 + 0.7 * torch.randn(w0.shape, generator=gen, dtype=D64)
    alpha, eps = torch.tensor(1.3, dtype=D64), torch.tensor(0.4, dtype=D64)
    for ref in (None, w0):
        w_bar, second = sufficient_statistics(w)
        if ref is not None:
            w_bar = w_bar - ref.mean(0)
            second = second - sufficient_statistics(ref)[1]
        parts = loss_decomposition(w_bar, second, task.beta, alpha, eps, target_scale)
        exact = population_loss_from_weights(w, task.beta, alpha, eps, target_scale, ref)
        assert abs(parts.total - exact) < 1e-12 * exact


def test_decomposition_matches_monte_carlo_and_its_minimiser():
    task, w0, gen = _setup(dim=5)
    alpha, eps = torch.tensor(0.8, dtype=D64), torch.tensor(0.5, dtype=D64)
    w = w0 + 0.5 * torch.randn(w0.shape, generator=gen, dtype=D64)
    w_bar, second = sufficient_statistics(w)
    exact = loss_decomposition(w_bar, second, task.beta, alpha, eps, 0.5).total
    x = torch.randn(400_000, 5, generator=gen, dtype=D64) / 5**0.5
    sq = (output_from_statistics(w_bar, second, x, alpha, eps)
          - 0.5 * (x @ task.beta) ** 2) ** 2
    assert abs(sq.mean() - exact) < 4 * sq.std() / sq.numel() ** 0.5
    # the minimiser M = ββᵀ/(αε), w̄ = 0 has zero loss; each term is zero there
    best = loss_decomposition(torch.zeros(5, dtype=D64), torch.outer(task.beta, task.beta)
                              / (alpha * eps), task.beta, alpha, eps, 0.5)
    for term in (best.variance, best.misalignment, best.linear):
        assert abs(term) < 1e-20


def test_one_step_is_the_autograd_gradient_step():
    task, w0, _ = _setup()
    alpha, eps, eta0 = 1.5, 0.3, 0.2
    run = train_committee(task, w0, alpha=alpha, eps=eps, eta0=eta0, steps=2, log_steps=[0],
                          twin=False, alignment=False)
    w = w0.clone()
    lr = eta0 * w0.shape[0] / alpha**2
    for _ in range(2):
        w = w.detach().requires_grad_(True)
        loss = _centered_loss(w, w0, task.x_train, task.y_train, alpha, eps)
        (grad,) = torch.autograd.grad(loss, w)
        w = w - lr * grad
    assert torch.allclose(run.weights, w.detach(), rtol=1e-12, atol=1e-12)


def test_twin_is_the_trained_first_order_taylor_model():
    task, w0, _ = _setup()
    alpha, eps, eta0, steps = 2.0, 0.4, 0.3, 4
    run = train_committee(task, w0, alpha=alpha, eps=eps, eta0=eta0, steps=steps,
                          log_steps=range(steps + 1), alignment=False)
    lr = eta0 * w0.shape[0] / alpha**2

    def f_lin(w, x):
        f0, df = jvp(lambda v: _committee_output(v, x, alpha, eps), (w0,), (w - w0,))
        return df   # centered: f_lin − f(W₀)

    w, train, test = w0.clone(), [], []
    for _ in range(steps + 1):
        w = w.detach().requires_grad_(True)
        loss = ((f_lin(w, task.x_train) - task.y_train) ** 2).mean()
        train.append(loss.item())
        test.append(((f_lin(w, task.x_test) - task.y_test) ** 2).mean().item())
        (grad,) = torch.autograd.grad(loss, w)
        w = w - lr * grad
    np.testing.assert_allclose(run.curves["twin_train_loss"], train, rtol=1e-11)
    np.testing.assert_allclose(run.curves["twin_test_loss"], test, rtol=1e-11)


def test_ntk_gram_is_the_jacobian_product_over_alpha_squared_by_n():
    task, w0, _ = _setup(n_test=7)
    alpha, eps = 1.4, 0.35
    x = task.x_test
    jac = torch.autograd.functional.jacobian(lambda w: _committee_output(w, x, alpha, eps), w0)
    flat = jac.reshape(x.shape[0], -1)
    emp = flat @ flat.T / (alpha**2 / w0.shape[0])
    assert torch.allclose(ntk_gram(x, x, *sufficient_statistics(w0), eps), emp,
                          rtol=1e-12, atol=1e-14)
    # infinite width: w̄ = 0, M = I gives K₀
    dim = w0.shape[1]
    assert torch.allclose(ntk_gram(x, x, torch.zeros(dim, dtype=D64), torch.eye(dim, dtype=D64),
                                   torch.tensor(eps)), k0_gram(x, x, torch.tensor(eps)))


def test_alignment_code_variant_against_explicit_centering():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(9, 4))
    gram = z @ z.T + 0.3
    y = rng.normal(size=9) + 2.0
    h = np.eye(9) - np.ones((9, 9)) / 9
    kc, yc = h @ gram, h @ y          # column means removed; centered labels
    expected = yc @ kc @ yc / (np.linalg.norm(kc) * (yc @ yc))
    got = kernel_alignment(torch.tensor(gram), torch.tensor(y)).item()
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(yc @ gram @ yc / (np.linalg.norm(kc) * (yc @ yc)), rel=1e-12)
    assert kernel_alignment(torch.tensor(5 * gram), torch.tensor(y)).item() == pytest.approx(got)


@pytest.mark.parametrize("stability", [0.9, 1.8])     # s·λ_max; above 1 residuals alternate
def test_kernel_descent_closed_form_against_iteration_and_regression(stability):
    task, _, _ = _setup(n_train=12, n_test=15)
    eps = torch.tensor(0.6, dtype=D64)
    k_tr = k0_gram(task.x_train, task.x_train, eps)
    k_te = k0_gram(task.x_test, task.x_train, eps)
    step = stability / torch.linalg.eigvalsh(k_tr)[-1].item()
    steps = [0, 1, 5, 37]
    train, test = kernel_descent_losses(k_tr, k_te, task.y_train, task.y_test, step, steps)
    coef = torch.zeros(12, dtype=D64)          # f = K coef on every point
    for t in range(38):
        if t in steps:
            j = steps.index(t)
            assert train[j] == pytest.approx(((k_tr @ coef - task.y_train) ** 2).mean().item(),
                                             rel=1e-10)
            assert test[j] == pytest.approx(((k_te @ coef - task.y_test) ** 2).mean().item(),
                                            rel=1e-10)
        coef = coef - step * (k_tr @ coef - task.y_train)
    long_train, long_test = kernel_descent_losses(k_tr, k_te, task.y_train, task.y_test, step,
                                                  [10**7])
    reg_train, reg_test = kernel_regression_losses(k_tr, k_te, task.y_train, task.y_test)
    assert reg_train < 1e-20 and long_train[0] < 1e-12
    assert long_test[0] == pytest.approx(reg_test.item(), rel=1e-6)
    lam, vec = np.linalg.eigh(k_tr.numpy())
    assert task_difficulty(k_tr, task.y_train).item() == pytest.approx(
        np.sum((vec.T @ task.y_train.numpy()) ** 2 / lam), rel=1e-8)


def test_training_decomposition_equals_exact_loss_at_every_logged_step():
    tasks, weights = [], []
    for seed in range(2):
        task, w0, _ = _setup(dim=12, n_train=60, n_test=300, width=30, seed=seed)
        tasks.append(task)
        weights.append(w0)
    task, w0 = stack_tasks(tasks), torch.stack(weights)
    run = train_committee(task, w0, alpha=torch.tensor([1.0, 2.0]), eps=0.3, eta0=0.5,
                          steps=300, log_steps=range(0, 301, 10), check=True)
    total = (run.curves["variance_term"] + run.curves["misalignment_term"]
             + run.curves["linear_term"])
    rel = np.abs(total - run.curves["population_check"]) / run.curves["population_check"]
    assert rel.max() < 1e-6
    assert run.curves["train_loss"][:, -1].max() < 0.5 * run.curves["train_loss"][:, 0].min()
    # test-set MSE is a Monte-Carlo estimate of the population loss (300 points)
    mc = np.abs(run.curves["test_loss"] - total) / total
    assert np.median(mc) < 0.3


def test_lazy_network_tracks_its_twin_and_k0_descent():
    task, w0, _ = _setup(dim=10, n_train=50, n_test=200, width=4000)
    steps = [0, 20, 200]
    gap = {}
    for alpha in (300.0, 3000.0):
        run = train_committee(task, w0, alpha=alpha, eps=0.5, eta0=1.0, steps=200,
                              log_steps=steps, alignment=False)
        gap[alpha] = np.abs(run.curves["test_loss"] / run.curves["twin_test_loss"] - 1).max()
    assert gap[3000.0] < 2e-3 and gap[3000.0] < gap[300.0] / 5     # O(1/α) approach
    eps = torch.tensor(0.5, dtype=D64)
    _, k0_test = kernel_descent_losses(k0_gram(task.x_train, task.x_train, eps),
                                       k0_gram(task.x_test, task.x_train, eps),
                                       task.y_train, task.y_test, 2.0 / 50, steps)
    # finite width: the empirical kernel differs from K₀ by O(N^-1/2)
    np.testing.assert_allclose(run.curves["twin_test_loss"], k0_test.numpy(), rtol=0.05)


def test_bad_input_names_the_field():
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(InputError, match="settings.n_train"):
        teacher_task(5, 0, 10, gen)
    task, w0, _ = _setup()
    with pytest.raises(InputError, match="settings.log_steps"):
        train_committee(task, w0, alpha=1, eps=0.1, eta0=1, steps=3, log_steps=[5])
    with pytest.raises(InputError, match="settings.eta0"):
        train_committee(task, w0, alpha=0.05, eps=0.5, eta0=50, steps=200, log_steps=[200],
                        alignment=False, twin=False)
