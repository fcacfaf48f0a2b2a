"""``mpiexec -n 2 freqdyn solve`` gives the serial result to 1e-8, written once by rank 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from freqdyn.errors import AccuracyWarning
from freqdyn.inputs.case import load_case
from freqdyn.predict.registry import predict
from freqdyn.results import read_dataset, u_hat

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow  # two MPI processes per case
SMALL_2D = """
name = "mpi-2d"
[network]
dim = 2
sigma_a = 0.5
[network.rho_w]
family = "uniform"
bound = 1.5
center = [0.2, 0.0]
[target]
g = "exp(-(x0**2 + x1**2)/2)*(cos(2*pi*0.5*x0) + 0.5*sin(2*pi*(1.0*x0 + 0.5*x1)))"
[frequency]
bounds = [-4.0, 4.0]
times = [0.0, 4.0, 8.0]
points = 41
[fem]
cells = 14
"""


def _mpirun(case: Path, out: Path, method: str) -> str:
    env = dict(os.environ, FREQDYN_NO_PROGRESS="1")
    cmd = [str(BIN / "mpiexec"), "-n", "2", str(BIN / "freqdyn"), "solve", str(case),
           "--out", str(out), "--method", method, "--no-figure"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.mpi
@pytest.mark.parametrize(("source", "method"), [("pde/uniform-1d.toml", "fem"),
                                                ("small-2d", "modal")])
def test_two_processes_match_one(tmp_path, source, method):
    if source == "small-2d":
        path = tmp_path / "mpi-2d.toml"
        path.write_text(SMALL_2D)
    else:
        path = Path(source)
    stdout = _mpirun(path, tmp_path / "out", method)
    assert stdout.count("wrote") == 1 and "2 process(es)" in stdout  # rank 0 alone reports
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["prediction.nc"]
    parallel = read_dataset(tmp_path / "out" / "prediction.nc")
    if source == "small-2d":  # a deliberately coarse mesh: small eigenproblem, and it says so
        with pytest.warns(AccuracyWarning, match="cells"):
            serial = predict(load_case(path), method)
    else:
        serial = predict(load_case(path), method)
    assert parallel.attrs["mpi_processes"] == "2" and serial.attrs["mpi_processes"] == "1"
    assert parallel.attrs["dofs"] == serial.attrs["dofs"]
    if method == "modal":  # the distributed Krylov–Schur path, not the dense one
        assert parallel.attrs["eigensolver"] == "krylovschur"
    a, b = u_hat(parallel).values, u_hat(serial).values
    assert np.isfinite(a).all()
    assert np.abs(a - b).max() <= 1e-8 * np.abs(b).max()
