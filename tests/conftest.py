"""Shared test set-up: non-interactive plots, quiet progress bars, case helpers."""

import importlib.util
import os
from pathlib import Path

# One thread per xdist worker (``make test`` runs -n 2 on 2 cores): two workers that
# each start a thread per core for torch, FINUFFT and BLAS oversubscribe the machine.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")
os.environ.setdefault("FREQDYN_NO_PROGRESS", "1")

# The finite-element stack is a project dependency; a machine without it (for example a
# GPU box used only for training tests) still collects the rest of the suite.
if importlib.util.find_spec("dolfinx_solver") is None:
    collect_ignore = ["predict/test_fem.py", "predict/test_fem_cases.py",
                      "predict/test_lfp.py", "predict/test_registry.py",
                      "predict/test_solve_mpi.py"]

ROOT = Path(__file__).resolve().parents[1]
PDE_DIR = ROOT / "pde"
CASE_FILES = sorted(PDE_DIR.glob("*.toml"))


@pytest.fixture(autouse=True)
def _summaries_are_declared(monkeypatch):
    """Every experiment a test runs reports only keys its kind declares (so a claim rule
    is never refused for a key the kind does report): freqdyn.runs.kind_keys.REPORTS."""
    from freqdyn.runs import checks
    from freqdyn.runs.kind_keys import reported
    from freqdyn.runs.kinds import KINDS

    evaluate = checks.evaluate_checks

    def checked(exp, outcome):
        declared = KINDS[exp.kind].report_keys if exp.kind in KINDS else None
        if declared is not None:
            loose = sorted(k for k in outcome.summary if k.isidentifier()
                           and not reported(k, declared))
            assert not loose, f"kind {exp.kind!r} reports undeclared keys {loose}"
        return evaluate(exp, outcome)

    monkeypatch.setattr(checks, "evaluate_checks", checked)


@pytest.fixture(scope="session")
def pde_dir() -> Path:
    return PDE_DIR


def make_case_text(rho: str, *, dim: int = 1, sigma_a: float = 0.5, g: str | None = None,
                   bounds: str = "[-6.0, 6.0]", times: str = "[0.0, 1.0, 2.0]",
                   extra: str = "") -> str:
    """TOML text of a small case with the given ``[network.rho_w]`` body."""
    if g is None:
        g = ("exp(-x**2/2)*cos(2*pi*x)" if dim == 1 else
             "exp(-(" + " + ".join(f"x{i}**2" for i in range(dim)) + ")/2)*cos(2*pi*x0)")
    return f"""
name = "test"
[network]
dim = {dim}
sigma_a = {sigma_a}
[network.rho_w]
{rho}
[target]
g = "{g}"
[frequency]
bounds = {bounds}
times = {times}
{extra}
"""

