"""``freqdyn solve``: one case, one method, one result file in the shared schema.

Methods
-------
fem           the error PDE by finite elements, θ-scheme in time ([fem] scheme, default cn)
modal         the same discretisation, exact in time by the generalised eigenmodes
lfp-relu      LFP PDE of a 2-layer ReLU network ([lfp] table), finite elements
lfp-tanh      LFP PDE of a 2-layer tanh network, finite elements
lfp-relu-ode  effective LFP of ReLU: damping only, û₀ e^{−c t}
lfp-tanh-ode  effective LFP of tanh

The result holds û on the case's ξ grid at the case's times (``time``, ``xi``/``xi0``…),
with the discretisation in its attributes (cells, degree, dofs, scheme and dt or
modes, seconds) and, for ``modal``, the spectrum λ_k over the dimension ``mode``.
Runs under ``mpiexec -n P``: every process computes, rank 0 writes.
"""

from __future__ import annotations

import time as _time
from pathlib import Path

import xarray as xr

METHODS = ("fem", "modal", "lfp-relu", "lfp-tanh", "lfp-relu-ode", "lfp-tanh-ode")


def solve(case, method: str = "fem", comm=None, progress: bool = True) -> xr.Dataset:
    """û(ξ, t) of ``case`` by ``method`` as a schema dataset (the same on every process)."""
    from mpi4py import MPI

    from freqdyn.predict.fem.problem import fourier_feature_problem
    from freqdyn.predict.fem.settings import fem_settings
    from freqdyn.predict.fem.solver import solve_problem
    from freqdyn.predict.lfp import lfp_ode, lfp_params, lfp_problem
    from freqdyn.results import frequency_dataset

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    comm = MPI.COMM_WORLD if comm is None else comm
    start = _time.perf_counter()
    if method.endswith("-ode"):
        params = lfp_params(case, method.split("-")[1])
        u_hat = lfp_ode(case, params)
        attrs = {"activation": params.activation, "sigma_b": params.sigma_b,
                 "weight_scale": params.weight_scale, "outer_std": params.outer_std,
                 "epsilon": params.ball, "seconds": _time.perf_counter() - start,
                 "model": "effective LFP: u_hat0 exp(-c(|xi|) t); NaN for |xi| < epsilon"}
        return frequency_dataset(case, u_hat, method, attrs=attrs)
    if method in ("fem", "modal"):
        problem = fourier_feature_problem(case)
        extra = {}
    else:
        params = lfp_params(case, method.split("-")[1])
        problem, _ = lfp_problem(case, params)
        extra = {"activation": params.activation, "sigma_b": params.sigma_b,
                 "weight_scale": params.weight_scale, "outer_std": params.outer_std,
                 "epsilon": params.ball}
    settings = fem_settings(problem, case.section("fem"), case.times,
                            "modal" if method == "modal" else None)
    chosen = _time.perf_counter() - start
    result = solve_problem(problem, case.times, case.xi_axes(), settings, comm, progress)
    attrs = dict(result.attrs, **extra)
    attrs["seconds_settings"] = chosen
    return frequency_dataset(case, result.u_hat, method, variables=result.variables,
                             attrs=attrs)


def summary(ds: xr.Dataset) -> str:
    """One line: method, discretisation, cost."""
    a = ds.attrs
    method = a["method"]
    if method.endswith("-ode"):
        return f"{method} on {a['case_name']}: closed form, {float(a['seconds']):.3g} s"
    cost = (f"{a['modes']} modes ({a['eigensolver']})" if a["scheme"] == "modal"
            else f"{a['scheme']} dt = {float(a['dt']):.3g}, {a['steps']} steps")
    return (f"{method} on {a['case_name']}: P{a['degree']}, cells {a['cells']}, "
            f"{a['dofs']} dofs, {cost}, {a['mpi_processes']} process(es), "
            f"{float(a['seconds']):.3g} s solve + {float(a['seconds_settings']):.3g} s settings")


def run(case_path, out, method: str = "fem", figure: bool = True) -> int:
    """The ``freqdyn solve`` command: solve, write DIR/prediction.nc and DIR/prediction.png."""
    from mpi4py import MPI

    from freqdyn.inputs.case import load_case
    from freqdyn.results import write_dataset

    comm = MPI.COMM_WORLD
    case = load_case(case_path)
    ds = solve(case, method, comm)
    if comm.rank == 0:
        out = Path(out)
        path = write_dataset(ds, out / "prediction.nc")
        print(summary(ds))
        print(f"  wrote {path}")
        if figure:
            from freqdyn.plots import dynamics_figure, save

            fig = dynamics_figure(ds, title=f"{case.name}: {method}, error transform |û(ξ, t)|")
            save(fig, out / "prediction.png")
            print(f"  wrote {out / 'prediction.png'}")
    comm.Barrier()
    return 0
