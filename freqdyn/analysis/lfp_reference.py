"""The LFP models against the exact kernel flow of the network they model (docs/theory.md).

A check of the LFP PDE (finite elements, :mod:`freqdyn.predict.fem`) and of the effective
LFP ODE (:func:`freqdyn.predict.lfp.lfp_ode`) against the exact ReLU/tanh NTK flow
(:func:`freqdyn.predict.lfp.lfp_kernel_flow`); it sits above predict/ so that the fem
solver, which builds LFP problems, and the LFP predictors do not import each other.
"""

from __future__ import annotations

import numpy as np

from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.fem.settings import fem_settings
from freqdyn.predict.fem.solver import solve_problem
from freqdyn.predict.lfp import lfp_kernel_flow, lfp_ode, lfp_problem
from freqdyn.theory.lfp import LFPParams


def compare_with_kernel_flow(case, params: LFPParams, times=None, settings_table=None,
                             R: float | None = None, spacing: float | None = None) -> dict:
    """LFP PDE (finite elements) and effective LFP against exact ReLU kernel flow.

    Returns the relative L²(ξ) errors over |ξ| ≥ ε at each time for ``pde`` and ``ode``,
    the three solutions (time, *xi) and the reference's settings.
    """
    times = case.times if times is None else np.asarray(times, dtype=float)
    reference, info = lfp_kernel_flow(case, params, times, R=R, spacing=spacing)
    problem, _ = lfp_problem(case, params)
    settings = fem_settings(problem, settings_table if settings_table is not None
                            else case.section("fem"), times)
    pde = solve_problem(problem, times, case.xi_axes(), settings, progress=False).u_hat
    ode = lfp_ode(case, params, times)
    mask = np.linalg.norm(case.xi_grid(), axis=-1) >= params.ball
    axes = 1
    return {"pde": relative_l2(pde[:, mask], reference[:, mask], axes=axes),
            "ode": relative_l2(ode[:, mask], reference[:, mask], axes=axes),
            "solutions": {"pde": pde, "ode": ode, "kernel_flow": reference},
            "reference": info, "times": times}
