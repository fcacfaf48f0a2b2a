"""Finite-element solver: convergence orders against exact solutions, modal solver, domains.

Orders are fitted as log-log slopes over at least three refinements (errors in the
relative L²(ξ) norm on a fine evaluation grid) and asserted within ±0.25 of theory:
space h^{k+1} for P_k (modal solution, exact in time), time Δt (backward Euler) and
Δt² (Crank–Nicolson).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_case_text

from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.exact import pure_damping, uniform_box_series
from freqdyn.predict.fem.grading import axis_nodes
from freqdyn.predict.fem.problem import Problem, density_breakpoints, fourier_feature_problem
from freqdyn.predict.fem.settings import fem_settings, read_fem_table
from freqdyn.predict.fem.solver import solve_problem
from freqdyn.predict.fem.stepping import StepPlan, step_plan
from freqdyn.predict.registry import predict
from freqdyn.results import u_hat

UNIFORM_1D = make_case_text('family = "uniform"\nbound = 2.0', bounds="[-4.0, 4.0]",
                            g="exp(-2*x**2)*(cos(2*pi*1.0*x) + 0.5*sin(2*pi*0.5*x))",
                            extra="points = 801")
UNIFORM_2D = make_case_text('family = "uniform"\nbound = 1.5', dim=2, sigma_a=0.4,
                            g="exp(-2*(x0**2 + x1**2))*cos(2*pi*(0.6*x0 + 0.3*x1))",
                            bounds="[-3.0, 3.0]", times="[0.0, 1.0]", extra="points = 121")


def _case(text: str, fem: str = ""):
    return load_case("test", text=text + ("\n[fem]\n" + fem if fem else ""))


def _slope(h, err) -> float:
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])


class Reference:
    """One case, its PDE problem and its exact solution, shared by many discretisations."""

    def __init__(self, text: str):
        self.case = _case(text)
        self.problem = fourier_feature_problem(self.case)
        self.exact = uniform_box_series(self.case)
        self.axes = tuple(range(1, self.exact.ndim))

    def solve(self, **table) -> np.ndarray:
        settings = fem_settings(self.problem, {"mesh": "uniform", **table}, self.case.times)
        return solve_problem(self.problem, self.case.times, self.case.xi_axes(), settings,
                             progress=False).u_hat

    def error(self, u: np.ndarray, reference: np.ndarray | None = None) -> float:
        """Largest relative L²(ξ) error over t > 0 (against the exact series by default)."""
        ref = self.exact if reference is None else reference
        return float(relative_l2(u, ref, axes=self.axes)[self.case.times > 0].max())


@pytest.fixture(scope="module")
def uniform_1d():
    return Reference(UNIFORM_1D)


@pytest.fixture(scope="module")
def uniform_2d():
    return Reference(UNIFORM_2D)


@pytest.mark.parametrize(("degree", "cells"), [(1, (16, 32, 64)), (2, (16, 32, 64))])
def test_spatial_order_1d(uniform_1d, degree, cells):
    """Modal solution: exact in time, so the error is the space error alone."""
    errs = [uniform_1d.error(uniform_1d.solve(cells=n, degree=degree, scheme="modal"))
            for n in cells]
    assert _slope(4.0 / np.array(cells), errs) == pytest.approx(degree + 1, abs=0.25), errs


@pytest.mark.parametrize(("degree", "cells"), [(1, (12, 24, 48)), (2, (6, 12, 24))])
def test_spatial_order_2d(uniform_2d, degree, cells):
    """Crank–Nicolson with Δt = 0.01: its time error (~1e-7) is far below the space error."""
    errs = [uniform_2d.error(uniform_2d.solve(cells=n, degree=degree, scheme="cn", dt=0.01))
            for n in cells]
    assert _slope(3.0 / np.array(cells), errs) == pytest.approx(degree + 1, abs=0.25), errs


@pytest.mark.parametrize(("scheme", "order"), [("be", 1), ("cn", 2)])
def test_time_order_1d(uniform_1d, scheme, order):
    """Against the exact series (P2, 128 cells: the space error is far below)."""
    dts = np.array([0.2, 0.1, 0.05])
    errs = [uniform_1d.error(uniform_1d.solve(cells=128, scheme=scheme, dt=dt)) for dt in dts]
    assert _slope(dts, errs) == pytest.approx(order, abs=0.25), errs


@pytest.mark.parametrize(("scheme", "order"), [("be", 1), ("cn", 2)])
def test_time_order_2d(uniform_2d, scheme, order):
    """Against the modal solution on the same mesh (exact in time), which itself is
    checked against the exact series: the time error alone."""
    dts = np.array([0.2, 0.1, 0.05])
    modal = uniform_2d.solve(cells=10, scheme="modal")
    assert uniform_2d.error(modal) < 2e-2
    errs = [uniform_2d.error(uniform_2d.solve(cells=10, scheme=scheme, dt=dt), modal)
            for dt in dts]
    assert _slope(dts, errs) == pytest.approx(order, abs=0.25), errs


def test_pure_damping_by_modal_solver():
    """σ_a = 0: û = û₀ e^{−ρ_w t} reproduced to 1e-8 (P3 on the graded mesh, exact in time)."""
    case = _case("""
name = "pure-damping"
[network]
dim = 1
sigma_a = 0.0
[network.rho_w]
family = "gaussian"
scale = 1.0
[target]
g = "exp(-2*x**2)*(cos(2*pi*1.0*x) + 0.3*sin(2*pi*0.4*x))"
[frequency]
bounds = [-4.0, 4.0]
times = [0.0, 0.5, 2.0, 5.0]
points = 401
""", "cells = 360\ndegree = 3")
    ds = predict(case, "modal")
    err = relative_l2(u_hat(ds).values, pure_damping(case), axes=(1,))
    assert np.all(err < 1e-8), err


def test_modal_spectrum_is_the_cosine_spectrum():
    """Uniform ρ_w on [−B, B]: λ_n = κ²α (2B)^{-1} (1 + σ_a² (nπ/2B)²), n = 0, 1, 2, …"""
    case = _case(UNIFORM_1D.replace("sigma_a = 0.5", "sigma_a = 0.5\nkappa = 1.5"),
                 "cells = 200\nmesh = 'uniform'")
    ds = predict(case, "modal")
    lam = ds["modal_rate"].values
    n = np.arange(8)
    exact = 1.5**2 / 4.0 * (1 + 0.25 * (n * np.pi / 4.0) ** 2)
    assert lam[:8] == pytest.approx(exact, rel=1e-6)  # FE eigenvalue error O(h^4)
    assert np.all(np.diff(lam) >= -1e-12)
    assert ds["modal_weight"].dims == ("mode",)


def test_modal_truncation_by_krylov_schur(uniform_1d):
    """Late reported times need few modes: the Krylov–Schur path and its error bound."""
    times = np.array([0.0, 20.0, 40.0])
    settings = fem_settings(uniform_1d.problem, {"cells": 700, "degree": 1, "mesh": "uniform",
                                                 "scheme": "modal"}, times)
    res = solve_problem(uniform_1d.problem, times, uniform_1d.case.xi_axes(), settings,
                        progress=False)
    assert res.attrs["eigensolver"] == "krylovschur"
    assert res.attrs["modes"] < res.attrs["dofs"] // 3
    bound = res.variables["modal_truncation_error"][1]
    assert np.all(bound[1:] <= 1e-8) and bound[0] == 0
    exact = uniform_box_series(uniform_1d.case, times=times)
    err = relative_l2(res.u_hat, exact, axes=(1,))
    assert np.all(err[1:] < 1e-4), err


@pytest.mark.parametrize("reference", ["uniform_1d", "uniform_2d"])
def test_exponential_integrator_equals_the_modal_solution_at_every_time(reference, request):
    """The default scheme is exact in time: against the modal solution on the same mesh
    (1e-9 of ‖û_h(t)‖ at every t, late times included), with its own estimate below
    fem.modal_tol and few Krylov vectors whatever the stiffness."""
    ref = request.getfixturevalue(reference)
    times = np.array([0.0, 0.5, 5.0, 20.0, 40.0])
    cells = 64 if ref.case.dim == 1 else 10
    results = {}
    for scheme in ("exponential", "modal"):
        settings = fem_settings(ref.problem, {"cells": cells, "mesh": "uniform",
                                              "scheme": scheme, "modal_tol": 1e-11}, times)
        results[scheme] = solve_problem(ref.problem, times, ref.case.xi_axes(), settings,
                                        progress=False)
    exp, modal = results["exponential"], results["modal"]
    err = relative_l2(exp.u_hat, modal.u_hat, axes=ref.axes)
    assert np.all(err <= 1e-9), err
    estimate = exp.variables["time_error_estimate"][1]
    assert np.all(estimate <= 1e-11) and estimate[0] == 0
    assert exp.attrs["krylov_vectors_max"] < 80


def test_time_steps_are_refused_by_the_exact_schemes():
    case = _case(UNIFORM_1D)
    with pytest.raises(InputError, match="fem.dt: applies to the time-stepping schemes"):
        fem_settings(fourier_feature_problem(case), {"dt": 0.1}, case.times)


def test_stepping_error_within_a_priori_bound(uniform_1d):
    """CN (with start-up) against the modal solution on the same mesh: the time error
    stays below time_error_bound · ‖û₀‖/‖û(t)‖."""
    ref = uniform_1d
    settings = fem_settings(ref.problem, {"cells": 64, "mesh": "uniform", "dt": 0.25,
                                          "scheme": "cn"}, ref.case.times)
    stepped = solve_problem(ref.problem, ref.case.times, ref.case.xi_axes(), settings,
                            progress=False)
    b = ref.solve(cells=64, scheme="modal")
    err = relative_l2(stepped.u_hat, b, axes=(1,))
    scale = np.linalg.norm(b[0]) / np.linalg.norm(b, axis=1)
    bound = stepped.variables["time_error_bound"][1] * scale
    assert np.all(err <= bound + 1e-12), (err, bound)
    assert err[-1] > 1e-3 * bound[-1]  # the bound is not vacuous


def test_compact_support_is_frozen_outside():
    case = _case(UNIFORM_1D)
    ds = predict(case, "fem")
    xi = case.xi_axes()[0]
    outside = np.abs(xi) > 2.0
    u0 = case.initial_error()
    assert np.array_equal(u_hat(ds).values[:, outside], np.broadcast_to(
        u0[outside], (case.times.size, outside.sum())))
    assert "initial value" in ds.attrs["outside_domain"]
    assert np.allclose(np.array(json.loads(ds.attrs["domain"])), [[-2.0, 2.0]])


def test_gaps_of_the_support_stay_frozen():
    """Two uniform bands with a gap: the gap is never learned and the bands decouple."""
    case = _case(UNIFORM_1D.replace("""[network.rho_w]
family = "uniform"
bound = 2.0""", """[network.rho_w]
family = "mixture"
components = [
  { family = "uniform", bound = 0.8, weight = 0.5 },
  { family = "uniform", bound = 0.4, center = 1.6, weight = 0.5 },
]"""))
    ds = predict(case, "fem")
    xi = case.xi_axes()[0]
    gap = (np.abs(xi) > 0.8 + 1e-9) & (np.abs(xi) < 1.2 - 1e-9)
    assert np.array_equal(u_hat(ds).values[-1, gap], case.initial_error()[gap])
    fine = predict(_case(case.text, "cells = 800\nmesh = 'uniform'"), "modal")
    err = relative_l2(u_hat(ds).values, u_hat(fine).values, axes=(1,))
    assert np.all(err < 1e-3), err


def test_breakpoints_are_mesh_nodes():
    case = _case(UNIFORM_1D.replace("bound = 2.0", "bound = 1.3\ncenter = 0.4"))
    bps = density_breakpoints(case.rho_w)[0]
    assert {-1.7, -0.9, 0.9, 1.7} <= {round(b, 12) for b in bps}
    nodes = axis_nodes(-1.7, 1.7, 40, bps)
    assert nodes.size == 41 and np.all(np.diff(nodes) > 0)
    for b in (-0.9, 0.0, 0.9):
        assert np.min(np.abs(nodes - b)) < 1e-12


def test_step_plan_hits_reported_times():
    plan = step_plan(np.array([0.0, 0.3, 1.0, 2.5]), 0.2, "cn", 2)
    assert isinstance(plan, StepPlan)
    ends = np.cumsum([h * n for h, n in plan.intervals])
    assert ends == pytest.approx([0.0, 0.3, 1.0, 2.5])
    assert all(h <= 0.2 + 1e-15 for h, n in plan.intervals if n)
    # exact amplification of one CN step for a single mode: the bound sees it
    lam = np.array([3.0])
    one = step_plan(np.array([0.1]), 0.1, "cn", 0).amplification(lam)[0, 0]
    assert one == pytest.approx((1 - 0.15) / (1 + 0.15))


@pytest.mark.parametrize(("table", "field"), [
    ({"dt": 0.0}, "fem.dt"),
    ({"dt": -1}, "fem.dt"),
    ({"dt": "fast"}, "fem.dt"),
    ({"cells": 0}, "fem.cells"),
    ({"cells": [10, 10]}, "fem.cells"),
    ({"degree": 4}, "fem.degree"),
    ({"scheme": "rk4"}, "fem.scheme"),
    ({"tol": 0.5}, "fem.tol"),
    ({"mesh": "adaptive"}, "fem.mesh"),
    ({"startup": -1}, "fem.startup"),
    ({"cell": 10}, "fem.cell"),
])
def test_bad_fem_table(table, field):
    with pytest.raises(InputError) as info:
        read_fem_table(table, dim=1)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_bad_value_in_case_file_names_the_field():
    with pytest.raises(InputError, match=r"^fem\.dt: must be a finite number > 0, got -0\.1"):
        predict(_case(UNIFORM_1D, "dt = -0.1"), "fem")


def test_default_settings_resolve_the_peaks():
    """The graded default mesh puts its finest cells on the spectral peaks of û₀."""
    case = load_case("pde/gaussian-1d.toml")
    problem = fourier_feature_problem(case)
    settings = fem_settings(problem, {}, case.times)
    assert settings.scheme == "exponential" and settings.degree == 2 and settings.dt is None
    nodes = axis_nodes(*problem.domain[0], settings.cells[0], problem.breakpoints[0],
                       settings.grading[0])
    h = np.diff(nodes)
    mid = 0.5 * (nodes[1:] + nodes[:-1])
    near_peak = np.min(np.abs(np.abs(mid)[:, None] - case.peaks[:, 0]), axis=1) < 0.2
    assert h[near_peak].max() < h[~near_peak].max()
    assert h.max() <= 1 / (2 * np.pi)  # peak std 1/(2πℓ), ℓ = 1: at least a cell per std


def test_problem_interface_solves_a_constant_rate():
    """A user-built Problem: c = 2, D = 0 gives û₀ e^{−2t} at every grid point."""
    problem = Problem(dim=1, domain=np.array([[-1.0, 1.0]]),
                      damping=lambda p: np.full(np.shape(p)[:-1], 2.0),
                      diffusion=lambda p: np.zeros(np.shape(p)[:-1]),
                      initial=lambda p: np.cos(np.pi * p[:, 0]) + 0j,
                      breakpoints=(np.zeros(0),))
    settings = fem_settings(problem, {"cells": 64, "scheme": "modal"}, np.array([0.0, 0.7]))
    axis = [np.linspace(-1, 1, 41)]
    res = solve_problem(problem, [0.0, 0.7], axis, settings, progress=False)
    expected = np.cos(np.pi * axis[0]) * np.exp(-1.4)
    assert np.abs(res.u_hat[1] - expected).max() < 1e-5


def test_a_given_mesh_too_coarse_for_the_initial_error_is_refused_or_warned():
    """[fem] cells = 2 (5 dofs) interpolates û₀ with an O(1) error: refused, naming the
    field; 40 cells (error ~1e-2, above tol = 1e-4) warn; the automatic mesh is silent."""
    import warnings

    from freqdyn.errors import AccuracyWarning

    with pytest.raises(InputError, match=r"fem.cells.*relative error of 0\.\d+"):
        predict(_case(UNIFORM_1D, "cells = 2"), "fem")
    with pytest.warns(AccuracyWarning, match=r"\[40\] cells interpolate"):
        predict(_case(UNIFORM_1D, "cells = 40\ndegree = 1"), "fem")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        predict(_case(UNIFORM_1D), "fem")


def test_a_modal_solve_beyond_the_memory_budget_is_refused_with_its_estimate(monkeypatch):
    """--method modal on a 2D case needs the eigenvectors it keeps (dofs × modes): beyond
    the budget it is refused naming fem.scheme, the estimate and the exact-in-time default,
    instead of a MemoryError (pde/gaussian-2d.toml asks for 390 GB)."""
    monkeypatch.setenv("FREQDYN_MEMORY_GB", "1.2")  # the mesh fits (1.03 GB), the modes not
    early = UNIFORM_2D.replace("times = [0.0, 1.0]", "times = [0.0, 0.001]")  # most modes
    with pytest.raises(InputError, match=r"fem.scheme: the modal solution \(\d+ modes of \d+ "
                                         r"dofs.*use the default scheme 'exponential'"):
        predict(_case(early), "modal")


@pytest.mark.parametrize("reference", ["uniform_1d", "uniform_2d"])
def test_inertia_counts_the_eigenvalues_below_a_rate(request, reference):
    """The modal scheme's refusal counts the modes it needs before solving for any: the
    negative inertia of K − λM equals the number of dense generalised eigenvalues < λ."""
    from scipy import linalg

    from freqdyn.predict.fem.discretisation import Discretisation
    from freqdyn.predict.fem.modal import modes_below

    ref = request.getfixturevalue(reference)
    disc = Discretisation(ref.problem, (40,) * ref.case.dim if ref.case.dim == 1 else (12, 12),
                          degree=2)
    dense = [m.copy().convert("dense").getDenseArray() for m in (disc.K, disc.M)]
    lam = linalg.eigh(*dense, eigvals_only=True)
    for rate in np.quantile(lam, [0.1, 0.5, 0.9]) * 1.0001:
        assert modes_below(disc, float(rate)) == int(np.sum(lam < rate))


def test_a_pde_too_stiff_for_the_exponential_integrator_is_one_line_and_exit_2(tmp_path,
                                                                               capsys):
    """sigma_a = 1e6 once ran the Krylov exponential to 300 vectors, a warning each, for
    minutes: now its stagnation is detected and named, with the way forward."""
    from freqdyn.cli import main

    text = (Path(__file__).resolve().parents[2] / "pde" / "gaussian-1d.toml").read_text(
    ).replace("sigma_a = 0.7", "sigma_a = 1e6")
    case = tmp_path / "stiff.toml"
    case.write_text(text)
    assert main(["solve", str(case), "--method", "fem", "--out", str(tmp_path / "o"),
                 "--no-figure"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fem.scheme" in err[0] and "stagnated" in err[0], err


def test_the_automatic_mesh_takes_p3_where_p2_cannot_meet_the_tolerance(monkeypatch):
    """With the 2D cell cap set below what P2 needs for gaussian-2d (at tol = 1e-3), the automatic
    mesh is P3 on fewer cells (error h⁴), and its solution agrees with the P2 one to the
    tolerance; with the cap below what P3 needs too, one line names both degrees."""
    from freqdyn.predict.fem import settings as fs

    case = load_case("pde/gaussian-2d.toml")
    problem = fourier_feature_problem(case)
    loose = {"tol": 1e-3}
    p2 = fem_settings(problem, loose, case.times)
    assert p2.degree == 2
    monkeypatch.setitem(fs.MAX_CELLS, 2, int(0.8 * max(p2.cells)))  # P2 needs more
    p3 = fem_settings(problem, loose, case.times)
    assert p3.degree == 3 and max(p3.cells) < max(p2.cells)
    u2, u3 = (solve_problem(problem, case.times, case.xi_axes(), s, progress=False).u_hat
              for s in (p2, p3))
    assert np.all(relative_l2(u3, u2, axes=(1, 2))[1:] < 3 * p2.tol)
    with pytest.raises(InputError) as info:
        fem_settings(problem, {**loose, "degree": 2}, case.times)  # P2 asked for: no fallback
    assert info.value.field == "fem.cells"
    monkeypatch.setitem(fs.MAX_CELLS, 2, 4)
    with pytest.raises(InputError) as info:
        fem_settings(problem, loose, case.times)
    assert info.value.problem.startswith("P2 and P3 both:")
