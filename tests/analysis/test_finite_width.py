"""The predicted finite-width spread (docs/theory.md §12), against independent
computations: the analytic NTK, quadrature, exact kernel draws and trained networks."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_case_text

from freqdyn.analysis.finite_width import (
    divided_differences,
    first_order_spread,
    kernel_draws,
    predicted_spread,
    unit_features,
)
from freqdyn.analysis.stats import std_interval
from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.predict.registry import predict
from freqdyn.results import u_hat
from freqdyn.theory.ntk import FourierFeatureKernel

GAUSS_1D = (Path(__file__).resolve().parents[2] / "pde" / "gaussian-1d.toml").read_text(
).replace("times = [0.0, 0.5, 1.0, 2.0, 5.0]", "times = [0.0, 0.25, 0.5]")
# a 2D case small enough for dense first order (N = 57² samples)
GAUSS_2D = make_case_text(
    'family = "gaussian"\nscale = 0.5', dim=2, bounds="[-1.5, 1.5]",
    g="exp(-(x0**2 + x1**2)/2)*(cos(2*pi*0.5*x0) + 0.5*cos(2*pi*(0.5*x0 + 0.5*x1)))",
    times="[0.0, 0.25, 0.5]", extra="points = 31")


def test_unit_features_average_to_the_ntk():
    case = load_case("pde/gaussian-2d.toml")
    x = np.array([[0.0, 0.0], [0.3, -0.7], [1.2, 0.4]])
    draw = FourierFeatureNetwork.from_case(case, 200_000, torch.Generator().manual_seed(0))
    w, a, b = (p.detach().numpy() for p in (draw.w, draw.a, draw.b))
    feats = unit_features(x, w, a, b, case.kappa, True)
    mc = sum(f @ f.T for f in feats) / w.shape[0]
    exact = FourierFeatureKernel.of_case(case)(x)
    assert np.max(np.abs(mc - exact)) < 0.02 * np.max(np.abs(exact))


def test_divided_differences_equal_the_duhamel_integral():
    from scipy.integrate import quad

    lam = np.array([0.0, 1e-9, 0.5, 0.5 + 1e-7, 3.0, 40.0])
    phi = divided_differences(lam, 0.7)
    for k, lk in enumerate(lam):
        for i, li in enumerate(lam):
            exact = quad(lambda s, lk=lk, li=li: np.exp(-lk * (0.7 - s) - li * s), 0, 0.7,
                         epsabs=1e-14, epsrel=1e-12)[0]
            assert abs(phi[k, i] - exact) < 1e-10 * max(exact, 1e-3)


def test_first_order_spread_scales_like_inverse_sqrt_independent_units():
    case = load_case("g", text=GAUSS_1D)
    small = first_order_spread(case, {"width": 16384, "f0": "centered"}, units=1000)
    large = first_order_spread(case, {"width": 65536, "f0": "centered"}, units=1000)
    doubled = first_order_spread(case, {"width": 65536, "f0": "zero"}, units=1000)
    assert large.independent_units == 65536 and doubled.independent_units == 32768
    np.testing.assert_allclose(small.spread[1:] / large.spread[1:], 2.0, rtol=1e-9)
    np.testing.assert_allclose(doubled.spread[1:] / large.spread[1:], np.sqrt(2), rtol=1e-9)
    assert np.all(large.spread[1:] > 0) and np.all(large.effective_rank[1:] > 2)


@pytest.mark.slow
def test_first_order_agrees_with_exact_kernel_draws_at_large_width():
    case = load_case("g", text=GAUSS_1D)
    pde = u_hat(predict(case, "modal")).values
    ov = {"width": 32768, "f0": "centered"}
    first = first_order_spread(case, ov, reference=pde)
    draws = kernel_draws(case, ov, reference=pde, draws=24)
    mean, std = draws["rel_l2"].mean(0), draws["rel_l2"].std(0, ddof=1)
    np.testing.assert_allclose(first.mean_error[1:], mean[1:], rtol=0.15)
    np.testing.assert_allclose(first.spread[1:], std[1:], rtol=0.35)


_PDE = {}


def pde_of(case, method):
    key = (case.text, method)
    if key not in _PDE:
        _PDE[key] = u_hat(predict(case, method)).values
    return _PDE[key]


def _measured(tmp_path, text, width, seeds, reference, extra=""):
    """Relative L² error against ``reference`` (the prediction, computed once) of each of
    ``seeds`` trained networks, per time."""
    from freqdyn.nets.train import train

    errs = []
    for seed in range(seeds):
        case = load_case("g", text=text + f'\n[train]\nwidth = {width}\nlr_fraction = 0.9\n'
                                          f'f0 = "centered"\nseed = {seed}\n' + extra)
        ds = train(case, tmp_path / f"s{seed}", progress=False).dataset
        u = u_hat(ds).values
        errs.append(relative_l2(reference, u, axes=tuple(range(1, u.ndim))))
    return np.array(errs)


@pytest.mark.slow
@pytest.mark.parametrize(("text", "width", "method", "extra"), [
    (GAUSS_1D.replace("[0.0, 0.25, 0.5]", "[0.0, 0.25]"), 4096, "modal", ""),
    (GAUSS_2D.replace("[0.0, 0.25, 0.5]", "[0.0, 0.25]"), 4096, "fem", "R = 6.0\n"),
], ids=["1d", "2d"])
def test_predicted_spread_matches_trained_networks_within_a_factor_1_5(tmp_path, text, width,
                                                                        method, extra):
    """Predicted without training (kernel draws at other seeds) against the sample std s of
    32 trained networks' errors: within a factor 1.5, as the claim says.  The sample is
    large enough for that to be a test of the prediction, not of luck: with 31 degrees of
    freedom s/σ lies in [0.68, 1.33] with 99 % probability (χ²), so an exact prediction
    passes; with 8 networks (s·[0.59, 2.6]) it could not be asserted.  The prediction is a
    sample too (64 kernel draws: ±9 %).  The mean error must agree to 20 %.  Measured
    (predicted / 32 networks): 1D 0.0058 / 0.0066 (0.88); 2D 0.0085 / 0.0059 (1.46), where
    the networks' own linearised twins spread 0.0067: in 2D a part of the gap is the
    networks' beyond-linear motion (twin vs net 2.4 % there), which narrows the spread."""
    case = load_case("g", text=text)
    pde = pde_of(case, method)
    overrides = {"width": width, "f0": "centered"}
    if extra:
        overrides["R"] = 6.0
    fw = predicted_spread(case, overrides, reference=pde, draws=64)
    errs = _measured(tmp_path, text, width, 32, pde, extra + "twin = false\n")
    measured = errs[:, -1].std(ddof=1)
    ratio = fw["predicted_spread"][-1] / measured
    assert 1 / 1.5 <= ratio <= 1.5, (fw["predicted_spread"][-1], measured)
    lo, hi = std_interval(measured, 32, level=0.99)
    assert lo <= fw["predicted_spread"][-1] <= hi, (fw, measured)
    np.testing.assert_allclose(fw["predicted_mean_error"][-1], errs[:, -1].mean(), rtol=0.2)
