"""Initialization densities: normalisation, characteristic functions, samplers, bad input."""

import numpy as np
import pytest
import sympy as sp
import torch
from scipy import integrate, stats

from freqdyn.errors import InputError
from freqdyn.inputs.densities import density_from_config
from freqdyn.inputs.densities.base import cosine_sum
from freqdyn.inputs.symbols import axis_symbols

FAMILIES_1D = {
    "gaussian": {"family": "gaussian", "scale": 1.3},
    "gaussian-shifted": {"family": "gaussian", "scale": 0.5, "center": 1.5},
    "uniform": {"family": "uniform", "bound": 2.0},
    "laplace": {"family": "laplace", "scale": 0.7},
    "student_t": {"family": "student_t", "scale": 0.8, "dof": 3.0},
    "mixture": {"family": "mixture", "components": [
        {"family": "gaussian", "scale": 0.5, "weight": 1.0},
        {"family": "uniform", "bound": 1.0, "center": 2.0, "weight": 3.0}]},
    "expression": {"family": "expression", "density": "exp(-w**4)*(1 + w**2)"},
    "expression-heavy": {"family": "expression", "density": "1/(1 + w**2)**2"},
    "expression-box": {"family": "expression", "density": "1 + cos(pi*w)", "support": [-1, 1]},
    # a bump off the origin, zero (in floating point) on [-1, 1]: its box is found anyway
    "expression-off-origin": {"family": "expression", "density": "exp(-(w - 3)**2/0.02)"},
}

FAMILIES_2D = {
    "gaussian": {"family": "gaussian", "scale": 0.9},
    "uniform": {"family": "uniform", "bound": 1.5},
    "laplace": {"family": "laplace", "scale": 0.6},
    "student_t": {"family": "student_t", "scale": 0.7, "dof": 4.0},
    "mixture": {"family": "mixture", "components": [
        {"family": "gaussian", "scale": 0.4, "weight": 1.0},
        {"family": "gaussian", "scale": 0.4, "center": [1.0, -1.0], "weight": 1.0}]},
    "expression": {"family": "expression", "density": "exp(-(w0**2 + w1**2)**2)"},
}


def _quad_1d(f, rho):
    support = rho.support
    lo, hi = (support[0][0], support[1][0]) if support is not None else (-np.inf, np.inf)
    pts = [p for p in (-1.0, 0.0, 1.0, 2.0, 3.0) if lo < p < hi] if np.isfinite(lo) else None
    return integrate.quad(f, lo, hi, points=pts, limit=800)[0] if pts else \
        integrate.quad(f, lo, hi, limit=800)[0]


@pytest.mark.parametrize("name", FAMILIES_1D)
def test_1d_density_is_normalised_and_matches_its_symbolic_form(name):
    rho = density_from_config(FAMILIES_1D[name], 1)
    mass = _quad_1d(lambda w: float(rho.density(np.array([[w]]))[0]), rho)
    assert mass == pytest.approx(1.0, abs=1e-7)
    w = axis_symbols("w", 1)[0]
    fn = sp.lambdify(w, rho.symbolic(), "numpy")
    pts = np.random.default_rng(0).uniform(-3, 3, 100)
    np.testing.assert_allclose(np.array([float(fn(p)) for p in pts]), rho.density(pts),
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", FAMILIES_1D)
def test_1d_char_matches_direct_quadrature(name):
    rho = density_from_config(FAMILIES_1D[name], 1)
    for z in (0.0, 0.13, 0.5, 1.7):
        direct = _quad_1d(lambda w, z=z: float(rho.density(np.array([[w]]))[0])
                          * np.cos(2 * np.pi * w * z), rho)
        assert float(rho.char(np.array([[z]]))[0]) == pytest.approx(direct, abs=1e-7)


@pytest.mark.parametrize("name", FAMILIES_1D)
def test_1d_sampler_follows_density_and_is_reproducible(name):
    rho = density_from_config(FAMILIES_1D[name], 1)
    draws = rho.sample(20000, torch.Generator().manual_seed(1))
    again = rho.sample(20000, torch.Generator().manual_seed(1))
    assert draws.dtype == torch.float64 and draws.shape == (20000, 1)
    assert torch.equal(draws, again)

    def cdf(x):
        return np.array([_quad_1d_cdf(rho, v) for v in np.atleast_1d(x)])

    grid = np.quantile(draws.numpy()[:, 0], np.linspace(0.02, 0.98, 25))
    empirical = np.searchsorted(np.sort(draws.numpy()[:, 0]), grid) / draws.shape[0]
    # Kolmogorov–Smirnov band at level 1e-3 for n = 20000 is about 0.014
    assert np.max(np.abs(empirical - cdf(grid))) < 0.014


def _quad_1d_cdf(rho, x):
    support = rho.support
    lo = support[0][0] if support is not None else -np.inf
    f = lambda w: float(rho.density(np.array([[w]]))[0])  # noqa: E731
    if x <= lo:
        return 0.0
    breaks = [p for p in (-1.0, 0.0, 1.0, 2.0) if lo < p < x]
    edges = [lo, *breaks, x]
    return sum(integrate.quad(f, a, b, limit=400)[0] for a, b in zip(edges[:-1], edges[1:],
                                                                     strict=True))


@pytest.mark.parametrize("name", FAMILIES_2D)
def test_2d_density_char_and_sampler(name):
    rho = density_from_config(FAMILIES_2D[name], 2)
    # normalisation and k(z) by a fine tensor midpoint rule over a wide box
    r = min(rho.extent(1e-10), 12.0)
    n = 1600
    axis = -r + (np.arange(n) + 0.5) * 2 * r / n
    pts = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    dens = rho.density(pts) * (2 * r / n) ** 2
    assert dens.sum() == pytest.approx(1.0, abs=2e-3 if name == "student_t" else 1e-4)
    z = np.array([[0.0, 0.0], [0.3, -0.2], [0.1, 0.45]])
    direct = np.cos(2 * np.pi * z @ pts.T) @ dens
    tol = 2e-3 if name == "student_t" else 1e-4
    np.testing.assert_allclose(rho.char(z), direct, atol=tol)
    # sampler: mean and covariance against the density's own moments
    draws = rho.sample(40000, torch.Generator().manual_seed(3)).numpy()
    mean = pts.T @ dens / dens.sum()
    cov = (pts - mean).T @ ((pts - mean) * dens[:, None]) / dens.sum()
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * np.sqrt(np.diag(cov) / draws.shape[0]))
    if name != "student_t":  # heavy tails: the sample covariance converges too slowly
        np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.04 * np.max(np.diag(cov)))


def test_student_t_1d_sampler_against_scipy():
    rho = density_from_config({"family": "student_t", "scale": 2.0, "dof": 5.0}, 1)
    draws = rho.sample(20000, torch.Generator().manual_seed(5)).numpy()[:, 0]
    assert stats.kstest(draws / 2.0, stats.t(df=5).cdf).pvalue > 1e-3


def test_even_density_symmetrises_a_shifted_density():
    rho = density_from_config({"family": "gaussian", "scale": 0.5, "center": 1.0}, 1)
    w = np.linspace(-3, 3, 11)
    np.testing.assert_allclose(rho.even_density(w), 0.5 * (rho.density(w) + rho.density(-w)))
    np.testing.assert_allclose(rho.even_density(w), rho.even_density(-w))


@pytest.mark.parametrize("cfg, field, problem", [
    ({"family": "gauss", "scale": 1.0}, "network.rho_w.family", "must be one of"),
    ({"family": "gaussian", "scale": -1.0}, "network.rho_w.scale", "> 0"),
    ({"family": "gaussian"}, "network.rho_w.scale", "required"),
    ({"family": "uniform", "bound": float("nan")}, "network.rho_w.bound", "finite"),
    ({"family": "gaussian", "scale": 1.0, "bound": 2.0}, "network.rho_w.bound", "unknown key"),
    ({"family": "mixture", "components": []}, "network.rho_w.components", "non-empty"),
    ({"family": "mixture", "components": [{"family": "gaussian", "scale": 1.0,
                                            "weight": -1.0}]},
     "network.rho_w.components[0].weight", "> 0"),
    ({"family": "expression", "density": "exp(-x**2)"}, "network.rho_w.density",
     "only ['w'] are allowed"),
    ({"family": "expression", "density": "exp(-w**2"}, "network.rho_w.density", "cannot parse"),
    ({"family": "expression", "density": "w*exp(-w**2)"}, "network.rho_w.density", "negative"),
    ({"family": "expression", "density": "1/(1 + abs(w))"}, "network.rho_w.density",
     "not normalisable"),
    ({"family": "expression", "density": "exp(-w**2)/w"}, "network.rho_w.density", "NaN"),
    ({"family": "expression", "density": "log(w)"}, "network.rho_w.density", "NaN"),
])
def test_bad_densities_name_the_field_and_the_problem(cfg, field, problem):
    with pytest.raises(InputError) as err:
        density_from_config(cfg, 1)
    assert err.value.field == field
    assert problem in str(err.value)


def test_a_bump_narrower_than_the_sampling_is_named_and_accepted_with_a_support():
    """exp(−(w−3)²/1e-6) (width 1e-3) falls between every sampled point: the message says
    so and names the way forward; with ``support`` around it the density is exact."""
    narrow = {"family": "expression", "density": "exp(-(w - 3)**2/1e-6)"}
    with pytest.raises(InputError, match=r"narrower than that, give network\.rho_w\.support"):
        density_from_config(narrow, 1)
    rho = density_from_config(dict(narrow, support=[2.99, 3.01]), 1)
    mean = integrate.quad(lambda w: w * rho.density(np.array([[w]]))[0], 2.99, 3.01,
                          points=[3.0], limit=200)[0]
    assert mean == pytest.approx(3.0, abs=1e-9)
    assert rho.density(np.array([[3.0]]))[0] == pytest.approx(1 / np.sqrt(np.pi * 1e-6),
                                                                rel=1e-6)


def test_bad_dimension_and_wrong_axis_names():
    with pytest.raises(InputError, match="network.dim"):
        density_from_config({"family": "gaussian", "scale": 1.0}, 4)
    with pytest.raises(InputError, match=r"\['w0', 'w1'\] are allowed"):
        density_from_config({"family": "expression", "density": "exp(-w**2)"}, 2)
    with pytest.raises(InputError, match="w2"):
        density_from_config({"family": "expression", "density": "exp(-w0**2-w1**2-w2**2)"}, 2)
    with pytest.raises(InputError, match="not normalisable"):
        density_from_config({"family": "expression", "density": "1/(1 + w0**2 + w1**2)"}, 2)


@pytest.mark.parametrize("cfg", [
    {"family": "expression", "density": "exp(-w**4)*(1 + w**2)"},            # effective box
    {"family": "expression", "density": "1 + w", "support": [-1, 2]},         # kink at |w| = 1
    {"family": "expression", "density": "exp(-(w - 3)**2/0.02)"},             # off the origin
], ids=["decaying", "asymmetric-box", "off-origin"])
def test_1d_expression_char_panels_match_quadpack_at_every_lag(cfg):
    """The vectorised Gauss–Legendre panels give k(t) at thousands of lags at once; they
    agree with one QUADPACK call per lag to 1e-10, out to the lags of a wide box."""
    rho = density_from_config(cfg, 1)
    t = np.linspace(0.0, 17.0, 4001)
    panels = rho._char_panels(t)
    assert panels is not None and panels[0] == pytest.approx(1.0, abs=1e-10)
    every = slice(None, None, 100)
    direct = np.array([rho._char_1d(float(v)) for v in t[every]])
    np.testing.assert_allclose(panels[every], direct, atol=1e-10)
    # the public k(z) takes the panels: the same numbers through char()
    np.testing.assert_allclose(rho.char(t[every][:, None]), panels[every], atol=1e-14)


def test_1d_expression_char_panels_refuse_when_not_converged():
    """A tolerance no rule can meet returns None (the caller then integrates per lag)."""
    rho = density_from_config({"family": "expression", "density": "1 + cos(pi*w)",
                               "support": [-1, 1]}, 1)
    assert rho._char_panels(np.linspace(0.0, 3.0, 50), tol=0.0) is None


@pytest.mark.parametrize("cfg", [
    {"family": "gaussian", "scale": 40.0},
    {"family": "uniform", "bound": 12.0, "center": 3.0},
    {"family": "laplace", "scale": 2.0},
    {"family": "mixture", "components": [{"family": "gaussian", "scale": 2.0, "weight": 0.4},
                                         {"family": "uniform", "bound": 9.0, "weight": 0.6}]},
], ids=["gaussian", "uniform-centred", "laplace", "mixture"])
def test_cosine_rule_reproduces_the_closed_form_characteristic_function(cfg):
    """The Gauss–Legendre rule in w that the NUFFT kernel product uses equals each
    family's closed-form k(t) to 1e-12 over the lags it was built for."""
    rho = density_from_config(cfg, 1)
    nodes, weights = rho.cosine_rule(3.0)
    lags = np.linspace(0.0, 3.0, 2001)
    assert np.abs(cosine_sum(nodes, weights, lags) - rho.char(lags[:, None])).max() < 1e-12


def test_cosine_rule_refuses_a_heavy_tail():
    """Student-t (ν = 3) has polynomial tails: no rule within the node budget exists."""
    assert density_from_config({"family": "student_t", "scale": 1.0, "dof": 3.0},
                               1).cosine_rule(2.0) is None
