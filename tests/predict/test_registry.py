"""``freqdyn solve``: files, attributes, errors, and case files of every family."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mpi4py import MPI

from freqdyn.cli import main
from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.exact import uniform_box_series
from freqdyn.predict.fem.stepping import progress_bar
from freqdyn.predict.kernel_flow import kernel_flow
from freqdyn.predict.registry import predict
from freqdyn.results import read_dataset, u_hat


def test_cli_writes_prediction_and_figure(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FREQDYN_NO_PROGRESS", "1")
    assert main(["solve", "pde/gaussian-1d.toml", "--out", str(tmp_path), "--method", "fem"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("fem on gaussian-1d: P2, cells") and "exact in time" in out[0]
    ds = read_dataset(tmp_path / "prediction.nc")
    assert (tmp_path / "prediction.png").stat().st_size > 10_000
    assert ds.attrs["method"] == "fem" and ds.attrs["scheme"] == "exponential"
    for key in ("cells", "degree", "dofs", "krylov_vectors_max", "seconds", "domain"):
        assert key in ds.attrs
    assert float(ds["time_error_estimate"].max()) <= float(ds.attrs["time_tol"])
    assert np.array_equal(ds["time"].values, load_case("pde/gaussian-1d.toml").times)
    assert int(ds.attrs["dofs"]) == 2 * json.loads(ds.attrs["cells"])[0] + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prediction.nc", "prediction.png"]


def test_cli_modal_exports_the_spectrum(tmp_path, monkeypatch):
    monkeypatch.setenv("FREQDYN_NO_PROGRESS", "1")
    assert main(["solve", "pde/uniform-1d.toml", "--out", str(tmp_path), "--method", "modal",
                 "--no-figure"]) == 0
    ds = read_dataset(tmp_path / "prediction.nc")
    assert ds["modal_rate"].dims == ("mode",) and ds.sizes["mode"] == int(ds.attrs["modes"])
    # uniform on [−3, 3]: the slowest mode is the band average, learned at rate 1/(2B)
    assert ds["modal_rate"].values[0] == pytest.approx(1 / 6, rel=1e-10)
    assert not (tmp_path / "prediction.png").exists()


def test_cli_reports_a_bad_field(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(open("pde/gaussian-1d.toml").read() + "\n[fem]\ndt = 0\n")
    assert main(["solve", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "fem.dt: must be a finite number > 0, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_lfp_tanh(tmp_path, monkeypatch):
    monkeypatch.setenv("FREQDYN_NO_PROGRESS", "1")
    case = tmp_path / "lfp.toml"
    case.write_text(open("pde/gaussian-1d.toml").read().replace("times = [0.0, 0.5, 1.0, 2.0, 5.0]",
                                                                 "times = [0.0, 400.0]")
                    + "\n[lfp]\nsigma_b = 8.0\nepsilon = 0.2\n")
    assert main(["solve", str(case), "--out", str(tmp_path), "--method", "lfp-tanh"]) == 0
    ds = read_dataset(tmp_path / "prediction.nc")
    xi = ds["xi"].values
    u = u_hat(ds).values
    assert np.all(np.isnan(u[:, np.abs(xi) < 0.2])) and np.all(np.isfinite(u[:, np.abs(xi) > 0.2]))
    assert float(ds.attrs["epsilon"]) == 0.2 and ds.attrs["activation"] == "tanh"
    peak = np.argmin(np.abs(xi - 0.5))
    assert 0 < abs(u[1, peak]) < abs(u[0, peak])  # learned, slowly


def test_progress_bar_is_silent_when_asked(monkeypatch):
    monkeypatch.setenv("FREQDYN_NO_PROGRESS", "1")
    assert not progress_bar(10, "x", MPI.COMM_WORLD).enabled


HIDDEN = {
    "student-t-1d": """
[network]
dim = 1
sigma_a = 0.5
[network.rho_w]
family = "student_t"
scale = 1.0
dof = 3.0
[target]
g = "exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*sin(2*pi*2*x))"
[frequency]
bounds = [-6.0, 6.0]
times = [0.0, 0.3, 1.0, 3.0]
""",
    "expression-support-1d": """
[network]
dim = 1
sigma_a = 0.4
[network.rho_w]
family = "expression"
density = "1 + w**2"
support = [-2.5, 2.0]
[target]
g = "exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*cos(2*pi*2*x))"
[frequency]
bounds = [-6.0, 6.0]
times = [0.0, 0.5, 2.0]
""",
    "uniform-2d": """
[network]
dim = 2
sigma_a = 0.4
kappa = 2.0
[network.rho_w]
family = "uniform"
bound = 2.0
[target]
g = "exp(-(x0**2 + x1**2)/2)*(cos(2*pi*0.7*x0) + sin(2*pi*(0.5*x0 + 2.5*x1)))"
[frequency]
bounds = [[-4.0, 4.0], [-4.5, 4.5]]
times = [0.0, 0.5, 2.0]
points = [61, 71]
""",
    "laplace-2d": """
[network]
dim = 2
sigma_a = 0.4
[network.rho_w]
family = "laplace"
scale = 0.8
[target]
g = "exp(-(x0**2 + x1**2)/2)*cos(2*pi*0.7*x0)"
[frequency]
bounds = [-4.0, 4.0]
times = [0.0, 1.0, 3.0]
points = 41
""",
}


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_case_of_any_family_solves(name):
    case = load_case(name, text=HIDDEN[name])
    ds = predict(case, "fem")
    u = u_hat(ds).values
    assert u.shape == (case.times.size, *case.points) and np.all(np.isfinite(u))
    axes = tuple(range(1, case.dim + 1))
    assert np.all(np.diff(np.linalg.norm(u.reshape(u.shape[0], -1), axis=1)) < 0)  # Parseval
    if name == "uniform-2d":
        err = relative_l2(u, uniform_box_series(case), axes=axes)
    elif name in ("student-t-1d", "laplace-2d"):  # against the kernel flow in x
        err = relative_l2(u, u_hat(kernel_flow(case)).values, axes=axes)
    elif name == "expression-support-1d":  # against a much finer uniform mesh, exact in time
        fine = load_case(name, text=HIDDEN[name] + "[fem]\ncells = 2000\nmesh = 'uniform'\n")
        err = relative_l2(u, u_hat(predict(fine, "modal")).values, axes=axes)
    assert np.all(err < 1e-3), err


@pytest.mark.parametrize("method", ["fd", "damping", "kernel-flow", "modal"])
def test_every_method_solves_from_the_command_line_with_its_one_line_summary(
        tmp_path, capsys, method):
    """``freqdyn solve --method fd`` once ended in a KeyError in its summary line."""
    assert main(["solve", "pde/gaussian-1d.toml", "--method", method, "--out",
                 str(tmp_path), "--no-figure"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{method} on gaussian-1d: ")
    assert (tmp_path / "prediction.nc").is_file()
