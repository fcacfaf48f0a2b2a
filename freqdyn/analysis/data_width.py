"""Finite width on a data case: the expected train and test MSE of width-m networks.

A width-m network trained by gradient flow on the loss (α/2) Σ_i h (f(x_i) − y_i)²
(docs/theory.md §13) is, to first order in its parameters' motion, its linearised twin:
the flow of its own empirical NTK J₀J₀ᵀ, frozen at the initialisation θ₀,

    train error  r(t) = e^{−A_m t} r₀,   A_m = α h J₀(X) J₀(X)ᵀ,   r₀ = f₀(X) − y,
    every sample f_t(x) = f₀(x) − α h J₀(x) J₀(X)ᵀ ∫₀ᵗ r(s) ds,

with f₀ the initial output (0 for the doubled and the centred initialisations).  A_m is a
Monte-Carlo average over the m units of the infinite-width operator A, so the MSEs are
random with a mean that differs from the infinite-width MSE by O(1/m) and a spread
O(m^{−1/2}).  Here they are estimated by ``draws`` independent draws of θ₀ (seeds far
from the networks' own), each solved exactly: a Lanczos exponential and its time integral
(:func:`~freqdyn.nets.twin.exact_linear_flow`), each product two fast transforms, no N×N
matrix.  The motion of the kernel
during training (beyond linear, O(1/m)) and gradient descent's steps are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from freqdyn.analysis.stats import mean_std
from freqdyn.errors import InputError
from freqdyn.nets import transforms as tf
from freqdyn.nets.data_training import all_samples_layout, data_samples
from freqdyn.nets.settings import train_settings
from freqdyn.nets.setup import build_model
from freqdyn.nets.twin import exact_linear_flow

#: Seed of the first draw: far from the seeds networks are trained with.
DRAW_SEED = 10_000
#: Draws of θ₀ by default.
DEFAULT_DRAWS = 8
#: Relative accuracy of each draw's Lanczos exponential.
DRAW_RTOL = 1e-8
#: Transform tolerance of the draws (float64).
TRANSFORM_TOL = 1e-12


@dataclass(frozen=True)
class WidthPrediction:
    """Train and test MSE of the linearised width-m network, per draw and time."""

    times: np.ndarray
    width: int
    train_mse: np.ndarray  # (draws, times)
    test_mse: np.ndarray  # (draws, times)
    lanczos_iterations: tuple

    @property
    def draws(self) -> int:
        return self.train_mse.shape[0]

    def statistics(self) -> dict:
        """Mean and standard deviation over draws (:func:`mean_std`) of both MSEs."""
        train_mean, train_std = mean_std(self.train_mse)
        test_mean, test_std = mean_std(self.test_mse)
        return {"train_mse_mean": train_mean, "train_mse_std": train_std,
                "test_mse_mean": test_mean, "test_mse_std": test_std}


def _draw(case, settings, x_layout, all_layout, y_train, y_all, weight, times):
    """One θ₀: (train MSE, test MSE) per time and the Lanczos iterations."""
    model = build_model(case, settings)
    on_train = tf.FourierTransforms(x_layout, torch.float64, TRANSFORM_TOL)
    on_all = tf.FourierTransforms(all_layout, torch.float64, TRANSFORM_TOL)
    residual, f_all, iterations = exact_linear_flow(model, on_train, on_all, y_train, weight,
                                                    times, settings.f0 == "random", DRAW_RTOL)
    test = case.target.test.ravel()
    error_test = f_all[:, test] - y_all[test]
    test_mse = (np.mean(error_test**2, axis=1) if test.any()
                else np.full(len(times), np.nan))
    return np.mean(residual**2, axis=1), test_mse, iterations


def width_prediction(case, overrides: dict | None = None, times=None,
                     draws: int = DEFAULT_DRAWS, seed: int = DRAW_SEED) -> WidthPrediction:
    """The linearised width-m network's train and test MSE over ``draws`` draws of θ₀
    (module text); ``overrides``: ``[train]`` keys (``width``, ``f0``, ``train_w``…)."""
    if not case.is_data:
        raise InputError("target.data", "the finite-width MSE is for data cases")
    s = train_settings(case, dict(overrides or {}, dtype="float64", twin=False))
    if s.model != "fourier":
        raise InputError("train.model", "the finite-width MSE is for the 2-layer model")
    if draws < 2:
        raise InputError("draws", f"needs at least 2 draws for a spread, got {draws}")
    times = case.times if times is None else np.asarray(times, dtype=float)
    _, y_train, _, layout = data_samples(case)
    y_all = case.target.values.ravel()
    weight = case.loss_scale * case.target.cell_volume  # α h
    all_layout = all_samples_layout(case.target)
    out = [_draw(case, replace(s, seed=seed + k), layout, all_layout, y_train, y_all,
                 weight, times) for k in range(draws)]
    return WidthPrediction(times=times, width=s.width,
                           train_mse=np.array([o[0] for o in out]),
                           test_mse=np.array([o[1] for o in out]),
                           lanczos_iterations=tuple(o[2] for o in out))
