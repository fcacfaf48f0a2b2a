"""Every case in pde/ against the kernel-flow reference, with default FEM settings.

The reference is the exact Neumann series where one exists (centred uniform ρ_w), else the
x-space ground truth (kernel flow), whose own estimated truncation error is checked first, so
a failure says which side is at fault.  Picks up new case files.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from freqdyn.errors import AccuracyWarning, InputError
from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.exact import uniform_box_series
from freqdyn.predict.kernel_flow import KernelFlowSettings, kernel_flow
from freqdyn.predict.registry import predict
from freqdyn.results import u_hat

#: The 1D and 2D Fourier-feature cases (the 3D ones, with their own tolerances:
#: test_three_dimensions.py; the LFP cases, with an [lfp] table: test_lfp.py).
CASES = [p for p in sorted((Path(__file__).resolve().parents[2] / "pde").glob("*.toml"))
         if load_case(p).dim < 3 and "lfp" not in load_case(p).sections]
#: Agreement required between the default FEM solution and the reference, every time,
#: relative to the solution at that time.
TOLERANCE = 1e-3
#: Agreement required with an exact solution (relative to ‖û(t)‖, every reported time).
EXACT_TOLERANCE = 1e-4
#: How accurate the reference must say it is for the comparison to be meaningful.
REFERENCE_TOLERANCE = 1e-4


def _has_exact_series(case) -> bool:
    return case.rho_w.family == "uniform" and not np.any(case.rho_w.center)


@pytest.mark.slow
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_agrees_with_its_reference(path):
    """Exact series where one exists (uniform ρ_w), else kernel flow, at every time."""
    case = load_case(path)
    axes = tuple(range(1, case.dim + 1))
    methods = ("fem", "modal") if case.dim == 1 else ("fem",)
    if _has_exact_series(case):
        reference, tolerance = uniform_box_series(case), EXACT_TOLERANCE
    else:
        flow = kernel_flow(case)
        trunc = flow["truncation_error"].values
        assert np.all(trunc <= REFERENCE_TOLERANCE), (
            f"the kernel-flow reference of {case.name} estimates its own error at {trunc}")
        reference, tolerance = u_hat(flow).values, TOLERANCE
    for method in methods:
        err = relative_l2(u_hat(predict(case, method)).values, reference, axes=axes)
        assert np.all(err <= tolerance), f"{method}: relative L2 error per time {err}"


def test_kernel_flow_warns_when_its_own_error_estimate_is_too_large():
    """Jumps in ρ_w give the error algebraic tails in x: a box too small for them is
    refused when the estimate exceeds 5 % (R = 4: 0.2), and warned of between 1e-3 and
    5 % (R = 8: 7e-3 at t = 200), instead of printing a wrong number silently."""
    case = load_case(Path(__file__).resolve().parents[2] / "pde" / "uniform-1d.toml")
    case = replace(case, times=np.array([0.0, 200.0]))
    with pytest.raises(InputError, match="kernel_flow.R: R = 4 gives an estimated"):
        kernel_flow(case, KernelFlowSettings(R=4.0, spacing=0.1, method="eig",
                                             estimate_error=True))
    with pytest.warns(AccuracyWarning, match="truncation error"):
        ds = kernel_flow(case, KernelFlowSettings(R=8.0, spacing=0.1, method="eig",
                                                  estimate_error=True))
    assert 1e-3 < ds["truncation_error"].values[-1] < 0.05
