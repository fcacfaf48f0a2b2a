"""LFP models: the exact ReLU NTK, the coefficient tables, and the LFP PDE against exact
kernel flow (which confirms freqdyn's constants in derive_lfp and refutes the review's)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import integrate

from freqdyn.analysis.lfp_reference import compare_with_kernel_flow
from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.fem.settings import fem_settings
from freqdyn.predict.fem.solver import solve_problem
from freqdyn.predict.lfp import lfp_kernel_flow, lfp_ode, lfp_problem
from freqdyn.theory.lfp import RadialCoefficients, lfp_params
from freqdyn.theory.ntk import relu_ntk

LFP_CASE = """
name = "lfp-test"
[network]
dim = 1
sigma_a = 0.5
[network.rho_w]
family = "gaussian"
scale = 1.0
[target]
g = "exp(-x**2/2)*(cos(2*pi*1.0*x) + 0.5*cos(2*pi*2*x))"
[frequency]
bounds = [-5.0, 5.0]
times = [0.0, 1.0]
[lfp]
sigma_b = 10.0
"""


@pytest.fixture(scope="module")
def lfp_case():
    return load_case("lfp", text=LFP_CASE)


def test_relu_ntk_matches_a_wide_network():
    """Θ = E[σσ'] + s_a² E[σ'σ'](x·x' + 1) against the empirical NTK of m = 4·10⁵ units."""
    rng = np.random.default_rng(0)
    params = replace(lfp_params(load_case("lfp", text=LFP_CASE), "relu"), sigma_b=3.0,
                     weight_scale=1.3, outer_std=0.7)
    m = 400_000
    w = params.weight_scale * rng.standard_normal(m)
    b = params.sigma_b * rng.standard_normal(m)
    a = params.outer_std * rng.standard_normal(m)
    x = np.array([-2.0, -0.5, 0.0, 0.7, 2.5])
    pre = np.outer(x, w) + b
    act, step = np.maximum(pre, 0.0), (pre > 0).astype(float)
    # gradients per unit: ∂/∂a = σ, ∂/∂b = a σ', ∂/∂w = a σ' x  (all over √m)
    emp = (act @ act.T + (step * a**2) @ step.T * (np.outer(x, x) + 1)) / m
    exact = relu_ntk(x[:, None], x[:, None], params)
    assert np.abs(emp - exact).max() < 0.02 * np.abs(exact).max()


def test_relu_ntk_small_angle_limit():
    """For σ_b → ∞ the order-1 kernel tends to (z·z')/2 + |z||z'|θ³/(6π): the |x − x'|³
    part the LFP damping r³/|ξ|⁴ comes from."""
    params = replace(lfp_params(load_case("lfp", text=LFP_CASE), "relu"), sigma_b=200.0,
                     outer_std=0.0)
    x, xp = np.array([[0.3]]), np.array([[1.1]])
    k = relu_ntk(x, xp, params)[0, 0]
    z, zp = np.array([0.3, 200.0]), np.array([1.1, 200.0])
    theta = math.acos(z @ zp / np.linalg.norm(z) / np.linalg.norm(zp))
    approx = z @ zp / 2 + np.linalg.norm(z) * np.linalg.norm(zp) * theta**3 / (6 * np.pi)
    assert k == pytest.approx(approx, rel=1e-12)


def test_tanh_table_matches_direct_quadrature():
    params = replace(lfp_params(load_case("lfp", text=LFP_CASE), "tanh"), sigma_b=10.0)
    coef = RadialCoefficients(params, 1, 5.0)
    c_d = 1 / (math.sqrt(2 * math.pi) * params.sigma_b)
    radial = lambda r: 2 * np.exp(-r**2 / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def csch2(y):
        return 1 / np.sinh(y) ** 2 if y < 300 else 0.0

    def term_a(r, k):  # r^{-1}|σ̂(k/r)|², |σ̂(η)|² = π² csch²(π²η)
        return np.pi**2 * csch2(np.pi**2 * k / r) / r * radial(r)

    def term_b(r, k):  # r^{-1}|F[σ'](k/r)|² = r^{-1} 4π²(k/r)² |σ̂(k/r)|²
        return 4 * np.pi**2 * (k / r) ** 2 * term_a(r, k)

    for k in (0.2, 1.0, 2.5):
        a = integrate.quad(term_a, 0, np.inf, args=(k,), epsrel=1e-12, limit=200)[0]
        b = integrate.quad(term_b, 0, np.inf, args=(k,), epsrel=1e-12, limit=200)[0]
        assert coef.radial("damping", k) == pytest.approx(c_d * (a + b), rel=1e-6)
        assert coef.radial("diffusion", k) == pytest.approx(c_d * b / (4 * np.pi**2), rel=1e-6)


def test_effective_lfp_is_pure_damping(lfp_case):
    params = lfp_params(lfp_case, "relu")
    u = lfp_ode(lfp_case, params, times=[0.0, 300.0])
    xi = lfp_case.xi_axes()[0]
    coef = RadialCoefficients(params, 1, 5.0)
    outside = np.abs(xi) >= params.ball
    expected = lfp_case.initial_error()[outside] * np.exp(-300 * coef.radial("damping",
                                                                             np.abs(xi[outside])))
    assert np.allclose(u[1, outside], expected, rtol=1e-12, atol=0)
    assert np.all(np.isnan(u[:, ~outside]))


@pytest.fixture(scope="module")
def agreement(lfp_case):
    """The LFP against ReLU kernel flow at σ_b = 5 and 10, times in units of 1/c(|ξ| = 1);
    data on [−6, 6] (|g| < 2e-8 beyond), spacing 1/80."""
    out = {}
    for sigma_b in (5.0, 10.0):
        params = replace(lfp_params(lfp_case, "relu"), sigma_b=sigma_b)
        rate = RadialCoefficients(params, 1, 5.0).radial("damping", 1.0)
        times = np.array([0.0, 0.5, 1.0, 2.0]) / rate
        out[sigma_b] = (params, times, compare_with_kernel_flow(lfp_case, params, times, R=6.0))
    return out


def test_lfp_pde_agrees_with_relu_kernel_flow(agreement):
    _, _, res = agreement[10.0]
    assert np.all(res["pde"] < 1e-2), res["pde"]
    assert np.all(res["ode"][1:] > 0.2), res["ode"]  # without diffusion: far off


def test_lfp_error_falls_with_sigma_b(agreement):
    assert agreement[5.0][2]["pde"][1:].max() > 2 * agreement[10.0][2]["pde"][1:].max()


def test_spec_constants_are_refuted(lfp_case, agreement):
    """The review's constants (prefactor Γ(d/2)/(2√2π^{(d+1)/2}σ_b), half of freqdyn's,
    and no 1/(4π²) in the diffusion) are far from kernel flow; freqdyn's are within 1 %."""
    params, times, res = agreement[10.0]
    problem, _ = lfp_problem(lfp_case, params)
    spec = replace(problem, damping=lambda p: 0.5 * problem.damping(p),
                   diffusion=lambda p: 0.5 * 4 * np.pi**2 * problem.diffusion(p))
    settings = fem_settings(spec, {}, times)
    u = solve_problem(spec, times, lfp_case.xi_axes(), settings, progress=False).u_hat
    mask = np.abs(lfp_case.xi_axes()[0]) >= params.ball
    ref = res["solutions"]["kernel_flow"]
    err = relative_l2(u[:, mask], ref[:, mask], axes=1)
    assert np.all(err[1:] > 0.2), err
    assert np.all(res["pde"][1:] < 0.2 * err[1:])


def test_tanh_kernel_flow_is_one_dimensional():
    case_2d = load_case("lfp2", text=LFP_CASE.replace("dim = 1", "dim = 2").replace(
        "exp(-x**2/2)*(cos(2*pi*1.0*x) + 0.5*cos(2*pi*2*x))", "exp(-(x0**2 + x1**2)/2)"))
    with pytest.raises(InputError, match="d = 1"):
        lfp_kernel_flow(case_2d, lfp_params(case_2d, "tanh"))


def test_rates_scale_with_kappa_squared_alpha(lfp_case):
    """κ = 2, α = 1.5 multiply every rate by 6 in the PDE, the effective LFP and the flow."""
    scaled = load_case("lfp", text=LFP_CASE.replace("dim = 1", "dim = 1\nkappa = 2.0\n"
                                                                 "loss_scale = 1.5"))
    params = lfp_params(lfp_case, "relu")
    times = np.array([0.0, 50.0])
    for fn in (lambda c, t: lfp_ode(c, params, t),
               lambda c, t: lfp_kernel_flow(c, params, t, R=4.0, spacing=1 / 20)[0]):
        got, want = fn(scaled, times), fn(lfp_case, 6 * times)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        # relative to the largest |û|: the eigensolves of Θ and 6Θ round differently
        assert np.nanmax(np.abs(got - want)) <= 1e-9 * np.nanmax(np.abs(want))
    problem, _ = lfp_problem(scaled, params)
    base, _ = lfp_problem(lfp_case, params)
    pts = np.array([[0.5], [1.5], [3.0]])
    assert np.allclose(problem.damping(pts), 6 * base.damping(pts), rtol=1e-12)
    assert np.allclose(problem.diffusion(pts), 6 * base.diffusion(pts), rtol=1e-12)


def test_tanh_lfp_pde_against_tanh_kernel_flow():
    """The tanh LFP (numerical r-integrals) against kernel flow with the quadrature NTK:
    within 10 % early (small |ξ| near the ball dominate) and 3 % later, while the
    effective LFP misses by more than 20 %."""
    from freqdyn.analysis import compare
    from freqdyn.predict.registry import predict
    from freqdyn.results import u_hat

    case = load_case("tanh", text=LFP_CASE.replace(
        "exp(-x**2/2)*(cos(2*pi*1.0*x) + 0.5*cos(2*pi*2*x))",
        "exp(-x**2/2)*(cos(2*pi*0.25*x) + 0.5*cos(2*pi*0.5*x))").replace(
        "bounds = [-5.0, 5.0]", "bounds = [-2.0, 2.0]").replace(
        "times = [0.0, 1.0]", "times = [0.0, 25.0, 100.0, 200.0]"))
    flow = predict(case, "tanh-ntk-flow")
    mask = np.abs(case.xi_axes()[0]) >= lfp_params(case, "tanh").ball
    ref = u_hat(flow).values[:, mask]
    err = {m: relative_l2(compare.on_grid(predict(case, m), flow).values[:, mask], ref, axes=1)
           for m in ("lfp-tanh", "lfp-tanh-ode")}
    # the LFP is an asymptotic model: 8.4 % off at t = 25, under 3 % from t = 100; its wrong
    # model (damping only) misses by more than 20 % at every t > 0, and by more than twice
    # the LFP PDE's error at each of them
    assert np.all(err["lfp-tanh"][2:] < 0.03), err
    assert np.all(err["lfp-tanh-ode"][1:] > 0.2), err
    assert np.all(err["lfp-tanh-ode"][1:] > 2 * err["lfp-tanh"][1:]), err


@pytest.mark.parametrize(("table", "field"), [
    ("sigma_b = 0.5", "lfp.sigma_b"),
    ("sigma_b = -3", "lfp.sigma_b"),
    ("outer_std = 'one'", "lfp.outer_std"),
    ("epsilon = 9.0", "lfp.epsilon"),
    ("sigmab = 3", "lfp.sigmab"),
])
def test_bad_lfp_table(table, field):
    case = load_case("lfp", text=LFP_CASE.replace("sigma_b = 10.0", table))
    with pytest.raises(InputError) as info:
        lfp_params(case, "relu")
    assert info.value.field == field


#: The LFP cases of pde/ (their [lfp] table), the activation each is written for, and the
#: measured agreement of the LFP PDE with kernel flow on the exact NTK (every t > 0).
LIBRARY = {"relu-1d": ("relu", 0.02), "tanh-1d": ("tanh", 0.012), "relu-2d": ("relu", 0.01)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_lfp_case_library_agrees_with_exact_kernel_flow(name):
    from pathlib import Path

    from freqdyn.analysis import compare
    from freqdyn.predict.registry import predict

    root = Path(__file__).resolve().parents[2] / "pde"
    lfp_cases = {p.stem for p in root.glob("*.toml") if "lfp" in load_case(p).sections}
    assert lfp_cases == set(LIBRARY)  # a new LFP case needs its row here
    case = load_case(root / f"{name}.toml")
    activation, tolerance = LIBRARY[name]
    flow = predict(case, f"{activation}-ntk-flow")
    err = compare.rel_l2_by_time(predict(case, f"lfp-{activation}"), flow)
    assert np.all(err[1:] <= tolerance), err
    ode = compare.rel_l2_by_time(predict(case, f"lfp-{activation}-ode"), flow)
    assert np.all(ode[1:] > err[1:]), ode  # the diffusion term always helps
