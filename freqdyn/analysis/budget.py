"""The error budget of a trained network against the PDE: what part is not finite width.

A network trained by gradient descent on N samples of the box differs from the PDE by

1. **finite width** (the empirical NTK's Monte-Carlo error, O(m^{-1/2}), and the motion
   of the kernel during training, O(1/m)): network vs infinite-width GD below;
2. **time discretisation** (GD steps of size Δτ = η/V instead of the flow): infinite-width
   GD vs infinite-width flow on the same samples;
3. **sampling and the box** (N samples of [−R, R]^d instead of ℝ^d, and the measurement
   over the box): infinite-width flow on the samples vs the PDE.

Parts 2 and 3 need no network: the infinite-width kernel matrix K = (α/N)Θ(x_i, x_j) on
the training samples (docs/theory.md §3, §8) evolves the error on the samples exactly,
u_k = (1 − ηK)^k u₀ (GD) or e^{−τVK}u₀ (flow), and the function between the samples follows
through K(x*, X) (:func:`freqdyn.predict.kernel_flow.kernel_descent`); û is then measured
on the network's measurement grid, exactly as a trained network is.  Dense in the samples,
so for 1D cases (N of a few thousand at most).
"""

from __future__ import annotations

import json

import numpy as np

from freqdyn.analysis import compare
from freqdyn.errors import InputError
from freqdyn.inputs.fourier import relative_l2, riemann_transform
from freqdyn.nets.measure import measurement_axis
from freqdyn.nets.settings import train_settings
from freqdyn.nets.setup import training_samples
from freqdyn.predict.kernel_flow import kernel_descent
from freqdyn.results import u_hat
from freqdyn.theory.ntk import FourierFeatureKernel

#: Largest number of training samples the dense budget takes.
MAX_SAMPLES = 4000


def infinite_width_dynamics(case, overrides: dict, lr: float, report_steps) -> dict:
    """û at the report steps of infinite-width GD and of the flow on the training samples.

    Returns ``{"gd": (T, *xi), "flow": (T, *xi), "times": (T,)}`` (complex).
    """
    settings = train_settings(case, overrides)
    if case.dim != 1:
        raise InputError("budget", "the dense error budget is computed for 1D cases only")
    x = training_samples(case, settings)
    n = x.shape[0]
    if n > MAX_SAMPLES:
        raise InputError("budget", f"{n} training samples: the dense budget takes at most "
                                   f"{MAX_SAMPLES}")
    volume = (2 * settings.R) ** case.dim
    kernel = FourierFeatureKernel.of_case(case, settings.train_w)
    alpha = case.loss_scale
    gram = (alpha / n) * kernel(x)
    axis = measurement_axis(case, settings.R, points=settings.measure_points)
    grid = axis[:, None]
    cross = (alpha / n) * kernel(grid, x)
    u0_samples = -case.target(x)
    u0_grid = -case.target(grid)
    steps = np.asarray(report_steps, dtype=float)
    momentum_free = settings.momentum == 0 and settings.optimizer in ("gd", "sgd")
    if not momentum_free:
        raise InputError("budget", "the budget is for plain gradient descent (no momentum)")
    out = {"times": steps * lr / volume}
    for name, step, clock in (("gd", lr, steps), ("flow", None, steps * lr)):
        _, delta, _ = kernel_descent(gram, u0_samples, clock, step=step, cross=cross)
        u_grid = u0_grid[None] + delta
        out[name] = riemann_transform(u_grid, [axis], case.xi_axes())
    return out


def error_budget(case, overrides: dict, prediction, measured: list) -> dict:
    """The three parts of the error (module text) per reported time, from a study's runs.

    ``prediction`` is the pde prediction (schema dataset) and ``measured`` the networks'
    datasets (one width); their η and report steps define the GD to compare with.
    """

    first = measured[0]
    lr = float(np.asarray(_json(first.attrs["stability"])["lr"]))
    steps = first["report_step"].values
    dyn = infinite_width_dynamics(case, overrides, lr, steps)
    pde = compare.on_grid(prediction, first).values
    axes = tuple(range(1, pde.ndim))
    nets = [u_hat(run).values for run in measured]
    seed_mean = np.mean(nets, axis=0)
    return {
        "times": dyn["times"],
        "rel_l2_infinite_flow_vs_pde": relative_l2(dyn["flow"], pde, axes=axes),
        "rel_l2_infinite_gd_vs_infinite_flow": relative_l2(dyn["gd"], dyn["flow"], axes=axes),
        "rel_l2_infinite_gd_vs_pde": relative_l2(dyn["gd"], pde, axes=axes),
        "rel_l2_net_vs_infinite_gd": np.mean([relative_l2(u, dyn["gd"], axes=axes)
                                              for u in nets], axis=0),
        "rel_l2_seed_mean_net_vs_infinite_gd": relative_l2(seed_mean, dyn["gd"], axes=axes),
    }


def _json(text):

    return json.loads(text) if isinstance(text, str) else text
