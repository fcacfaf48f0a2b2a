"""FEM solver benchmarks: cost at fixed size, and cost at equal accuracy against kernel flow.

Run from the repository root (serially, or under ``mpiexec -n 2`` for the solver sizes):

    .venv/bin/python benchmarks/bench_fem.py [sizes] [kernel-flow] [lfp]
    .venv/bin/mpiexec -n 2 .venv/bin/python benchmarks/bench_fem.py sizes

Sections
--------
sizes        1D P2 with 10⁴ dofs to t = 10 (CN stepping and modal), 2D P2 with ~10⁵ dofs
             (CN stepping); wall seconds of the solve (assembly, factorisation, stepping or
             eigenpairs, evaluation on the case grid), the case's symbolic set-up excluded
kernel-flow  the dense kernel-flow reference (eigendecomposition) at n = 2048, 4096, 8192
             grid points on uniform-1d (its error falls like 1/R: the window of x it covers)
             against the FEM modal solution on the coarsest mesh that is at least as
             accurate; both errors against the exact cosine series; time ratio
lfp          LFP PDE and effective LFP against exact ReLU kernel flow for several σ_b
Only ``sizes`` uses MPI; the other sections run on rank 0 of a serial run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np
from mpi4py import MPI

from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.exact import uniform_box_series
from freqdyn.predict.fem.problem import fourier_feature_problem
from freqdyn.predict.fem.settings import fem_settings
from freqdyn.predict.fem.solver import solve_problem
from freqdyn.predict.kernel_flow import KernelFlowSettings, default_settings, evolve

COMM = MPI.COMM_WORLD


def say(text: str) -> None:
    if COMM.rank == 0:
        print(text, flush=True)


def timed_solve(problem, case, table: dict, times=None):
    times = case.times if times is None else np.asarray(times, dtype=float)
    settings = fem_settings(problem, table, times)
    COMM.Barrier()
    start = time.perf_counter()
    res = solve_problem(problem, times, case.xi_axes(), settings, COMM, progress=False)
    COMM.Barrier()
    return time.perf_counter() - start, res


def sizes() -> None:
    say(f"== sizes ({COMM.size} process(es)) ==")
    case = load_case("pde/uniform-1d.toml")  # times 0 … 10
    problem = fourier_feature_problem(case)
    exact = uniform_box_series(case)
    for scheme in ("cn", "modal"):
        secs, res = timed_solve(problem, case, {"cells": 5000, "scheme": scheme,
                                                "mesh": "uniform"})
        err = relative_l2(res.u_hat, exact, axes=(1,)).max()
        cost = (f"{res.attrs['steps']} steps, {res.attrs['factorisations']} factorisations"
                if scheme == "cn" else f"{res.attrs['modes']} modes")
        say(f"1D P2 uniform-1d to t = 10, {res.attrs['dofs']} dofs, {scheme}: {cost}, "
            f"{secs:.3f} s, max error vs exact {err:.1e}")
    case = load_case("pde/gaussian-1d.toml")
    problem = fourier_feature_problem(case)
    times = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 10.0])
    secs, res = timed_solve(problem, case, {"cells": 5000, "mesh": "uniform"}, times)
    say(f"1D P2 gaussian-1d to t = 10, {res.attrs['dofs']} dofs, cn: {res.attrs['steps']} "
        f"steps, {res.attrs['factorisations']} factorisations, {secs:.3f} s")
    case = load_case("pde/gaussian-2d.toml")
    problem = fourier_feature_problem(case)
    secs, res = timed_solve(problem, case, {"cells": 158, "mesh": "uniform"})
    say(f"2D P2 gaussian-2d to t = 5, {res.attrs['dofs']} dofs, cn: {res.attrs['steps']} steps, "
        f"{res.attrs['factorisations']} factorisations, {secs:.2f} s")


def kernel_flow_ratio() -> None:
    say("== kernel flow (dense eig) vs FEM modal at equal accuracy, uniform-1d ==")
    case = load_case("pde/uniform-1d.toml")
    exact = uniform_box_series(case)
    problem = fourier_feature_problem(case)
    h = default_settings(case).spacing
    fem_runs = {}
    for n in (2048, 4096, 8192):
        settings = KernelFlowSettings(R=h * (n - 1) / 2, spacing=h, method="eig",
                                      estimate_error=False)
        start = time.perf_counter()
        u_kf, _ = evolve(case, settings)
        t_kf = time.perf_counter() - start
        err_kf = float(relative_l2(u_kf, exact, axes=(1,)).max())
        cells = 8
        while True:
            if cells not in fem_runs:
                secs, res = timed_solve(problem, case, {"cells": cells, "scheme": "modal",
                                                        "mesh": "uniform"})
                fem_runs[cells] = (secs, float(relative_l2(res.u_hat, exact, axes=(1,)).max()),
                                   res.attrs["dofs"])
            secs, err, dofs = fem_runs[cells]
            if err <= err_kf or cells > 20_000:
                break
            cells = int(cells * 1.25) + 1
        say(f"n = {settings.axis().size} (R = {settings.R:.0f}): kernel flow {t_kf:.2f} s, "
            f"error {err_kf:.2e} | FEM modal P2 {dofs} dofs {secs:.3f} s, error {err:.2e} | "
            f"ratio {t_kf / secs:.0f}x")


def lfp_table() -> None:
    from freqdyn.analysis.lfp_reference import compare_with_kernel_flow
    from freqdyn.theory.lfp import RadialCoefficients, lfp_params

    say("== LFP (ReLU) vs exact kernel flow: max relative L2 error over |xi| >= eps ==")
    text = """
name = "lfp-bench"
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
"""
    case = load_case("lfp-bench", text=text)
    for sigma_b in (2.0, 5.0, 10.0, 20.0, 40.0):
        params = replace(lfp_params(case, "relu"), sigma_b=sigma_b)
        rate = RadialCoefficients(params, 1, 5.0).radial("damping", 1.0)
        times = np.array([0.0, 0.5, 1.0, 2.0, 4.0]) / rate
        res = compare_with_kernel_flow(case, params, times, R=6.0)
        fmt = {"float_kind": lambda v: f"{v:.1e}"}
        say(f"sigma_b = {sigma_b:5.1f}, eps = {params.ball:.3f}: LFP PDE "
            f"{np.array2string(res['pde'][1:], formatter=fmt)}, effective LFP (ODE) "
            f"{np.array2string(res['ode'][1:], formatter=fmt)}  at c(1) t = 0.5, 1, 2, 4")


def main(argv: list[str]) -> None:
    wanted = argv or ["sizes", "kernel-flow", "lfp"]
    if "sizes" in wanted:
        sizes()
    if COMM.size == 1:
        if "kernel-flow" in wanted:
            kernel_flow_ratio()
        if "lfp" in wanted:
            lfp_table()


if __name__ == "__main__":
    main(sys.argv[1:])
