"""Every case in pde/ against the kernel-flow reference, with default FEM settings.

The reference is the x-space ground truth (kernel flow); its own estimated truncation error is
checked first, so a failure says which side is at fault.  Picks up new case files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.exact import uniform_box_series
from freqdyn.predict.kernel_flow import kernel_flow
from freqdyn.predict.registry import predict
from freqdyn.results import u_hat

CASES = sorted((Path(__file__).resolve().parents[2] / "pde").glob("*.toml"))
#: Agreement required between the default FEM solution and the reference, every time.
TOLERANCE = 1e-3
#: How accurate the reference must say it is for the comparison to be meaningful.
REFERENCE_TOLERANCE = 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_agrees_with_kernel_flow(path):
    case = load_case(path)
    reference = kernel_flow(case)
    trunc = reference["truncation_error"].values
    assert np.all(trunc <= REFERENCE_TOLERANCE), (
        f"the kernel-flow reference of {case.name} estimates its own error at {trunc}")
    axes = tuple(range(1, case.dim + 1))
    methods = ("fem", "modal") if case.dim == 1 else ("fem",)
    for method in methods:
        ds = predict(case, method)
        err = relative_l2(u_hat(ds).values, u_hat(reference).values, axes=axes)
        assert np.all(err <= TOLERANCE), f"{method}: relative L2 error per time {err}"
        if case.rho_w.family == "uniform" and not np.any(case.rho_w.center):
            exact = relative_l2(u_hat(ds).values, uniform_box_series(case), axes=axes)
            assert np.all(exact <= TOLERANCE), f"{method} vs exact series: {exact}"
