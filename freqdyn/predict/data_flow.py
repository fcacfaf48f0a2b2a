"""Kernel flow on a data case: the exact infinite-width prediction on the user's samples.

Gradient flow on the training loss (α/2) Σ_i h (f(x_i) − y_i)² (docs/theory.md §13) moves
the infinite-width mean network (f₀ = 0) by

    train error  u(t) = e^{−At} u₀,   u₀ = −y,   A = α h Θ(X, X),
    elsewhere    f_t(x*) = −α h Θ(x*, X) ∫₀ᵗ u(s) ds = α h Θ(x*, X) A⁻¹(I − e^{−At}) y,

with Θ = κ²(1 + 4π²σ_a² x·x') k(x − x') (docs/theory.md §3).  A⁻¹ is never formed:

* ``dense``: the eigenpairs of A (:func:`~freqdyn.predict.kernel_flow.kernel_descent`),
  for up to :data:`DENSE_LIMIT` training samples;
* ``krylov``: a Lanczos basis of u₀ gives e^{−At}u₀ and its time integral (the φ₁
  function) at every report time (:func:`~freqdyn.predict.kernel_flow.lanczos_exponential`);
  the test values are one more product per time.  On a grid each product with A is the
  full grid's Toeplitz product (1 + d FFT convolutions, O(N log N)) of the training
  samples embedded in the grid, read back on them; on scattered 1D samples it is the
  NUFFT product of :meth:`~freqdyn.theory.ntk.FourierFeatureKernel.scattered_matvec`
  (two type-3 transforms, O(N log N)).

The dataset holds ``train_mse(t)``, ``test_mse(t)`` (mean squared errors over the
training and held-out samples) and the error transform over the data's DFT frequencies,
û(ξ, t) = Σ_j Π Δ_k e(x_j, t) e^{−2πi ξ·x_j} of the error e = f_t − y on every sample.
"""

from __future__ import annotations

import time as _time

import numpy as np

import freqdyn.memory as memory
from freqdyn.errors import InputError
from freqdyn.inputs.densities.base import MAX_RULE_NODES
from freqdyn.predict.data_pde import continuum_pde
from freqdyn.predict.kernel_flow import kernel_descent, lanczos_exponential
from freqdyn.results import frequency_dataset
from freqdyn.theory.ntk import FourierFeatureKernel

#: Most training samples the dense eigendecomposition is used for.
DENSE_LIMIT = 2048
#: Most training samples of scattered data whose ρ_w has no converging cosine rule
#: (dense only).
SCATTERED_LIMIT = 6000
#: Relative accuracy the Krylov route is driven to at every report time.
KRYLOV_RTOL = 1e-12
#: Lanczos vectors the memory estimate allows for.
KRYLOV_VECTORS = 300
ROUTES = ("auto", "dense", "krylov")


def route_for(target, route: str = "auto") -> str:
    """``dense`` or ``krylov`` for ``target`` (a :class:`~freqdyn.inputs.data.DataTarget`)."""
    if route not in ROUTES:
        raise InputError("kernel_flow.route", f"must be one of {ROUTES}, got {route!r}")
    if route != "auto":
        return route
    return "dense" if target.n_train <= DENSE_LIMIT else "krylov"


def memory_needed(target, route: str) -> float:
    """Bytes of a data kernel flow: the dense A and its eigenvectors, or the FFT arrays of
    the doubled grid and :data:`KRYLOV_VECTORS` Lanczos vectors."""
    n, n_all = target.n_train, target.values.size
    if route == "dense":
        return 8.0 * (4 * n**2 + 2 * n * max(target.n_test, 1))
    if not target.on_grid:  # the cosine rule at its largest, and the transforms' arrays
        return 8.0 * (6 * MAX_RULE_NODES + 16 * n_all + KRYLOV_VECTORS * n)
    return 8.0 * (8 * 2**target.dim * n_all + KRYLOV_VECTORS * n)


def check_size(case, route: str) -> None:
    """Refuse, before any work, what will not fit in memory."""
    target = case.target
    memory.require("target.data", memory_needed(target, route),
                   f"the {route} kernel flow on {target.n_train} training samples",
                   "hold out more samples, or crop the data")


def _scaled_kernel(case, train_w: bool = True) -> FourierFeatureKernel:
    """α h Θ: the operator of the training flow (h the training cell volume); without
    the x·x' term when the frequencies are frozen."""
    return FourierFeatureKernel.of_case(case, train_w).scaled(case.loss_scale
                                                              * case.target.cell_volume)


def _dense_flow(case, times, train_w):
    target = case.target
    points = target.points()
    train, test = target.train.ravel(), target.test.ravel()
    kernel = _scaled_kernel(case, train_w)
    y = target.values.ravel()
    gram = kernel(points[train])
    cross = kernel(points[test], points[train]) if test.any() else None
    out = kernel_descent(gram, -y[train], times, cross=cross)
    u_train = out[0]
    f_test = out[1] if cross is not None else np.zeros((len(times), 0))
    lam = out[-1]
    return u_train, f_test, {"route": "dense", "eigenvalue_max": float(lam.max())}


def _grid_products(case, train_w):
    """(v ↦ A v on the training samples, v ↦ α h Θ(X*, X) v) on a grid."""
    target = case.target
    full = _scaled_kernel(case, train_w).grid_matvec(target.axes)
    train, test = target.train.ravel(), target.test.ravel()
    embedded = np.zeros(target.values.size)

    def product(v, rows):
        embedded[train] = v
        return full(embedded)[rows]

    return (lambda v: product(v, train)), (lambda v: product(v, test))


def _scattered_products(case, train_w):
    """The same two products on scattered 1D samples, by NUFFT; None without a
    converging cosine rule of ρ_w."""
    target = case.target
    points = target.points()[:, 0]
    x_train, x_test = points[target.train.ravel()], points[target.test.ravel()]
    kernel = _scaled_kernel(case, train_w)
    rule = kernel.density.cosine_rule(float(points.max() - points.min()))  # all lags
    if rule is None:
        return None
    to_train = kernel.scattered_matvec(x_train, x_train, rule=rule)
    to_test = kernel.scattered_matvec(x_train, x_test, rule=rule) if x_test.size else None
    return to_train, to_test


def _products(case, train_w):
    if case.target.on_grid:
        return _grid_products(case, train_w)
    products = _scattered_products(case, train_w)
    if products is None:
        if case.target.n_train <= SCATTERED_LIMIT:
            return None
        raise InputError("network.rho_w", f"{case.rho_w.describe()} has no converging "
                         f"cosine rule for the NUFFT product, and {case.target.n_train} "
                         f"scattered samples are beyond the {SCATTERED_LIMIT} the dense "
                         "route takes; resample onto an even grid (the FFT route)")
    return products


def _krylov_flow(case, times, train_w):
    products = _products(case, train_w)
    if products is None:  # scattered, no cosine rule, small enough for dense
        return _dense_flow(case, times, train_w)
    train_matvec, test_matvec = products
    target = case.target
    y = target.values.ravel()
    u_train, info = lanczos_exponential(train_matvec, -y[target.train.ravel()], times,
                                        rtol=KRYLOV_RTOL, integral=True)
    f_test = np.empty((len(times), target.n_test))
    for i, moved in enumerate(info.pop("integral")):
        if target.n_test:
            f_test[i] = -test_matvec(moved)
    return u_train, f_test, {"route": "krylov", **info}


def data_kernel_flow(case, times=None, route: str = "auto", train_w: bool = True,
                     continuum: bool = False):
    """The kernel-flow prediction of a data case as a schema dataset (module docstring);
    ``train_w = False``: the frozen-frequency (random-feature) kernel; ``continuum``: the
    continuum PDE beside it in 1D (:mod:`freqdyn.predict.data_pde`)."""
    target = case.target
    times = case.times if times is None else np.asarray(times, dtype=float)
    route = route_for(target, route)
    check_size(case, route)
    start = _time.perf_counter()
    flow = _dense_flow if route == "dense" else _krylov_flow
    u_train, f_test, info = flow(case, times, train_w)
    y = target.values.ravel()
    train, test = target.train.ravel(), target.test.ravel()
    error = np.zeros((len(times), y.size))
    error[:, train] = u_train
    error[:, test] = f_test - y[test]
    train_mse = np.mean(u_train**2, axis=1)
    test_mse = (np.mean(error[:, test] ** 2, axis=1) if test.any()
                else np.full(len(times), np.nan))
    u_hat = target.spectrum(error.reshape((len(times),) + target.values.shape))
    info.update(seconds=_time.perf_counter() - start, train_w=train_w, n_train=target.n_train,
                n_test=target.n_test, cell_volume=target.cell_volume)
    variables = _mse_variables(train_mse, test_mse)
    pde_variables, pde_attrs = continuum_pde(case, u_hat, times) if train_w and continuum \
        else ({}, {})
    variables.update(pde_variables)
    return frequency_dataset(case, u_hat, "kernel-flow", times=times,
                             xi_axes=target.dft_axes(), variables=variables,
                             attrs={"kernel_flow": info, **pde_attrs, **target.result_attrs()})


def _mse_variables(train_mse, test_mse) -> dict:
    return {
        "train_mse": (("time",), train_mse, {
            "long_name": "mean squared error over the training samples, (1/n) sum (f - y)^2",
            "units": "unit of y squared"}),
        "test_mse": (("time",), test_mse, {
            "long_name": "mean squared error over the held-out samples (NaN: none held out)",
            "units": "unit of y squared"}),
    }

