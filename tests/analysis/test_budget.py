"""The error budget: infinite-width GD and flow on the training samples."""

import numpy as np
import pytest

from freqdyn.analysis.budget import infinite_width_dynamics
from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2, riemann_transform
from freqdyn.nets.measure import measurement_axis
from freqdyn.nets.settings import train_settings
from freqdyn.nets.setup import training_samples
from freqdyn.predict.exact import pure_damping
from freqdyn.theory.ntk import FourierFeatureKernel

TEXT = open("pde/gaussian-1d.toml").read().replace("times = [0.0, 0.5, 1.0, 2.0, 5.0]",
                                                   "times = [0.0, 0.5, 1.0]")


def test_infinite_width_gd_is_the_explicit_iteration_on_the_samples():
    """u_{k+1}(x) = u_k(x) − η(α/N)Σ_i Θ(x, x_i)u_k(x_i), iterated by hand, on the samples
    and between them (the measurement grid), against the closed form."""
    case = load_case("g", text=TEXT)
    overrides = {"width": 2, "samples": 60, "R": 6.0}
    settings = train_settings(case, overrides)
    x = training_samples(case, settings)
    kernel = FourierFeatureKernel.of_case(case)
    gram = kernel(x) / x.shape[0]
    axis = measurement_axis(case, settings.R, points=801)
    cross = kernel(axis[:, None], x) / x.shape[0]
    lr, steps = 0.5 / np.linalg.eigvalsh(gram).max(), [0, 7, 30]
    u, u_grid, by_hand = -case.target(x), -case.target(axis[:, None]), []
    for k in range(31):
        if k in steps:
            by_hand.append(riemann_transform(u_grid, [axis], case.xi_axes()))
        u_grid = u_grid - lr * cross @ u
        u = u - lr * gram @ u
    dyn = infinite_width_dynamics(case, dict(overrides, measure_points=801), lr, steps)
    np.testing.assert_allclose(dyn["gd"], np.array(by_hand), rtol=1e-10,
                               atol=1e-10 * np.abs(by_hand[0]).max())
    assert dyn["times"] == pytest.approx(np.array(steps) * lr / (2 * settings.R))


def test_infinite_width_flow_on_the_samples_is_the_pde_without_diffusion():
    """σ_a = 0: the PDE is pure damping, exact; the flow on 400 samples of [−10, 10] matches
    it to 1e-4 (sampling and box), and GD at a small step tracks the flow."""
    case = load_case("g", text=TEXT.replace("sigma_a = 0.7", "sigma_a = 0.0")
                     .replace("sigma_a = 0.5", "sigma_a = 0.0"))
    assert case.sigma_a == 0.0
    settings = train_settings(case, {"width": 2})
    steps = [0, 200, 400]
    lr = 0.5 / settings.R  # Δτ = η/V = 1/(4R²)... any small step
    dyn = infinite_width_dynamics(case, {"width": 2}, lr, steps)
    exact = pure_damping(case, dyn["times"])
    assert relative_l2(dyn["flow"], exact, axes=1).max() < 1e-4
    assert relative_l2(dyn["gd"], dyn["flow"], axes=1).max() < 1e-2
