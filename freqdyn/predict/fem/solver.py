"""The driver: discretise, march or expand in modes, evaluate on the case's ξ grid."""

from __future__ import annotations

import time as _time
from dataclasses import dataclass

import numpy as np

from freqdyn.inputs.fourier import tensor_grid
from freqdyn.predict.fem.discretisation import Discretisation, PointEvaluator
from freqdyn.predict.fem.exponential import exponential_solution
from freqdyn.predict.fem.modal import modal_solution
from freqdyn.predict.fem.problem import Problem, fourier_feature_problem
from freqdyn.predict.fem.settings import FemSettings, check_given_cells, fem_settings
from freqdyn.predict.fem.stack import MPI, fem
from freqdyn.predict.fem.stepping import step_plan
from freqdyn.predict.fem.theta import integrate_theta
from freqdyn.predict.lfp import lfp_problem
from freqdyn.results import frequency_dataset
from freqdyn.theory.lfp import lfp_params


def _snap(grid_axes, problem: Problem, tol) -> list[np.ndarray]:
    """Grid coordinates within ``tol`` of a mesh line (box edge, breakpoint, ball radius)
    moved onto it, so a point on a jump of ρ_w is located the same way on every mesh."""
    out = []
    for i, axis in enumerate(grid_axes):
        lines = np.concatenate([problem.domain[i], problem.breakpoints[i],
                                [-problem.hole, problem.hole] if problem.hole > 0 else []])
        axis = np.array(axis, dtype=float)
        near = np.abs(axis[:, None] - lines[None, :])
        hit = near.min(axis=1) <= tol[i]
        axis[hit] = lines[near.argmin(axis=1)[hit]]
        out.append(axis)
    return out


@dataclass
class FemResult:
    """û on the requested grid, shape (time, *xi), with metadata for the result file."""

    u_hat: np.ndarray
    attrs: dict
    variables: dict


def _integrate_in_time(disc, times, settings: FemSettings, observe, progress: bool,
                       attrs: dict) -> dict:
    """Advance û_h to ``times`` by ``settings.scheme`` (modal, exponential or θ-stepping),
    calling ``observe`` at each; returns the scheme's variables and adds its attributes."""
    variables = {}
    if settings.scheme == "modal":
        lam, weight, trunc, info = modal_solution(disc, times, settings.modal_tol, observe)
        attrs.update(modes=info["modes"], eigensolver=info["eigensolver"],
                     modal_tol=settings.modal_tol)
        variables["modal_rate"] = (("mode",), lam, {
            "long_name": "rate lambda_k of mode k (K v = lambda M v)", "units": "1/PDE time"})
        variables["modal_weight"] = (("mode",), weight, {
            "long_name": "|(v_k, u_hat_0)_M|, the weight of mode k (|v_k|_M = 1) in u_hat_0",
            "units": "unit of u_hat times (cycles per unit x)^(d/2)"})
        variables["modal_truncation_error"] = (("time",), trunc, {
            "long_name": "bound of the discarded modes relative to |u_hat_h(t)|_M",
            "units": "1"})
    elif settings.scheme == "exponential":
        estimate, info = exponential_solution(disc, times, settings.modal_tol, observe)
        attrs.update(krylov_vectors_max=info["krylov_vectors_max"],
                     factorisations=info["factorisations"], time_tol=settings.modal_tol,
                     time_scheme="exact in time: shift-and-invert Krylov exponential")
        variables["time_error_estimate"] = (("time",), estimate, {
            "long_name": "Krylov error estimate relative to |u_hat_h(t)|_M", "units": "1"})
    else:
        limit = settings.dt if settings.dt is not None else settings.dt_ratio * times
        plan = step_plan(times, limit, settings.scheme, settings.startup)
        info = integrate_theta(disc, plan, observe, progress)
        steps = [h for h, n in plan.intervals if n]
        attrs.update(dt=max(steps, default=0.0), dt_per_interval=[h for h, _ in plan.intervals],
                     dt_rule="uniform (fem.dt)" if settings.dt is not None else
                     f"graded: dt_j <= {settings.dt_ratio:.4g} t_j (a-priori bound <= tol)",
                     steps=plan.steps, startup=settings.startup,
                     factorisations=info["factorisations"])
        variables["time_error_bound"] = (("time",), plan.error_bound(), {
            "long_name": "a-priori bound of the time-stepping error relative to |u_hat_0|_M",
            "units": "1"})
    return variables


def solve_problem(problem: Problem, times, grid_axes: list[np.ndarray],
                  settings: FemSettings, comm=MPI.COMM_WORLD, progress: bool = True
                  ) -> FemResult:
    """Solve ``problem`` and evaluate û_h at the tensor grid ``grid_axes`` at ``times``."""
    start = _time.perf_counter()
    times = np.asarray(times, dtype=float)
    disc = Discretisation(problem, settings.cells, settings.degree, comm, settings.grading)
    box = problem.domain
    span = box[:, 1] - box[:, 0]
    grid = tensor_grid(_snap(grid_axes, problem, 1e-9 * span)).reshape(-1, problem.dim)
    in_box = np.all((grid >= box[:, 0] - 1e-12 * span) & (grid <= box[:, 1] + 1e-12 * span),
                    axis=1)
    evaluator = PointEvaluator(disc.mesh, np.clip(grid, box[:, 0], box[:, 1]))
    on_mesh = in_box & evaluator.found
    fill = np.full(grid.shape[0], np.nan, dtype=complex)
    if problem.outside == "initial" and not np.all(on_mesh):
        off = grid[~on_mesh]
        inside = in_box[~on_mesh]
        if np.any(problem.damping(off[inside]) + problem.diffusion(off[inside]) > 0):
            raise RuntimeError("grid points where the PDE is active were not located")
        fill[~on_mesh] = problem.initial(off)
    shape = tuple(a.size for a in grid_axes)
    out = np.empty((times.size, *shape), dtype=complex)
    f = fem.Function(disc.V)

    def observe(j, re, im):
        vals = fill.copy()
        parts = []
        for vec in (re, im):
            vec.copy(f.x.petsc_vec)
            f.x.scatter_forward()
            parts.append(evaluator(f))
        vals[on_mesh] = parts[0][on_mesh] + 1j * parts[1][on_mesh]
        out[j] = vals.reshape(shape)

    setup = _time.perf_counter() - start
    attrs = {"cells": list(settings.cells), "degree": settings.degree, "dofs": int(disc.dofs),
             "mesh": "uniform" if settings.grading is None else
             "graded (per-axis equidistribution of the interpolation error)",
             "domain": problem.domain.tolist(), "mpi_processes": comm.size,
             "scheme": settings.scheme, "tol": settings.tol}
    attrs.update({k: v for k, v in problem.notes.items()})
    if not np.all(on_mesh):
        attrs["outside_domain"] = (
            f"u_hat keeps its initial value at {int((~on_mesh).sum())} grid points where "
            "the coefficients vanish (outside the meshed support of rho_w: never learned); "
            "those values are exact, not computed" if problem.outside == "initial" else
            f"u_hat is NaN at {int((~on_mesh).sum())} grid points off the mesh (not modelled)")
    variables = _integrate_in_time(disc, times, settings, observe, progress, attrs)
    attrs["seconds_setup"] = setup
    attrs["seconds"] = _time.perf_counter() - start
    return FemResult(u_hat=out, attrs=attrs, variables=variables)


def solve_case(case, method: str = "fem", comm=None, progress: bool = False):
    """û(ξ, t) of ``case`` by finite elements as a schema dataset (the same on every process).

    ``method``: ``fem`` or ``modal`` (the Fourier-feature PDE), ``lfp-relu`` or ``lfp-tanh``
    (the LFP PDE of the ``[lfp]`` table); the ``[fem]`` table sets the discretisation.
    """

    comm = MPI.COMM_WORLD if comm is None else comm
    start = _time.perf_counter()
    if method in ("fem", "modal"):
        problem, extra = fourier_feature_problem(case), {}
    else:

        params = lfp_params(case, method.split("-")[1])
        problem, _ = lfp_problem(case, params)
        extra = params.attrs()
    settings = fem_settings(problem, case.section("fem"), case.times,
                            "modal" if method == "modal" else None)
    check_given_cells(problem, case.section("fem"), settings, float(case.times[-1]))
    chosen = _time.perf_counter() - start
    result = solve_problem(problem, case.times, case.xi_axes(), settings, comm, progress)
    attrs = dict(result.attrs, **extra)
    attrs["seconds_settings"] = chosen
    return frequency_dataset(case, result.u_hat, method, variables=result.variables,
                             attrs=attrs)
