"""Kernel flow on data: the Krylov route against the dense one, both against an independent
matrix exponential, and the time convention against the analytic kernel flow."""

import json

import numpy as np
import pytest
from scipy import linalg

import freqdyn
from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case
from freqdyn.predict.data_flow import data_kernel_flow
from freqdyn.predict.kernel_flow import KernelFlowSettings, kernel_flow
from freqdyn.results import u_hat
from freqdyn.theory.ntk import fourier_feature_ntk

RHO = {"family": "gaussian", "scale": 6.0}
TIMES = [0.0, 3.0, 30.0, 300.0]


def _noisy(shape, seed=0):
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    return sum(np.sin(2 * np.pi * (3 + 4 * k) * a) for k, a in enumerate(axes)) \
        + 0.2 * rng.normal(size=shape)


CASES = {
    "1d-stride": dict(values=_noisy((301,)), holdout={"stride": 2}),
    "1d-fraction": dict(values=_noisy((257,)), holdout={"fraction": 0.3, "seed": 1}),
    "2d-stride": dict(values=_noisy((40, 36)), holdout={"stride": 2}),
    "2d-offset": dict(values=_noisy((32, 32)), holdout={"stride": 2, "test": "offset"}),
    "3d-fraction": dict(values=_noisy((12, 10, 9)), holdout={"fraction": 0.2}),
}


def _case(name, sigma_a=0.15):
    spec = CASES[name]
    return freqdyn.data_case(spec["values"], holdout=spec["holdout"], sigma_a=sigma_a,
                             rho_w=RHO, times=TIMES, extent=[[-0.5, 1.5]] * spec["values"].ndim)


@pytest.mark.parametrize("name", CASES)
def test_krylov_equals_dense(name):
    case = _case(name)
    dense, fast = data_kernel_flow(case, route="dense"), data_kernel_flow(case, route="krylov")
    for key in ("train_mse", "test_mse"):
        rel = np.abs(fast[key].values - dense[key].values) / dense[key].values
        assert rel.max() < 1e-8, (key, rel)
    diff = np.abs(u_hat(fast).values - u_hat(dense).values).max()
    assert diff < 1e-8 * np.abs(u_hat(dense).values).max()
    assert dense.attrs["kernel_flow"] != fast.attrs["kernel_flow"]


def _scattered(n, rho, seed=0, fraction=0.25):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 1.0, n))
    y = np.sin(2 * np.pi * 5 * x) + 0.3 * np.cos(2 * np.pi * 17 * x) + 0.1 * rng.normal(size=n)
    return freqdyn.data_case(y, x=x, holdout={"fraction": fraction, "seed": 2}, sigma_a=0.15,
                             rho_w=rho, times=TIMES)


@pytest.mark.parametrize("rho", [RHO, {"family": "uniform", "bound": 12.0},
                                 {"family": "laplace", "scale": 3.0}],
                         ids=["gaussian", "uniform", "laplace"])
def test_scattered_nufft_route_equals_dense(rho):
    """Scattered x: the Krylov flow on the NUFFT product (a Gauss–Legendre rule in w)
    reproduces the dense eigendecomposition to 1e-8, for kernels of three shapes."""
    case = _scattered(1500, rho)
    dense, fast = data_kernel_flow(case, route="dense"), data_kernel_flow(case, route="krylov")
    assert json.loads(fast.attrs["kernel_flow"])["route"] == "krylov"
    for key in ("train_mse", "test_mse"):
        rel = np.abs(fast[key].values - dense[key].values) / dense[key].values
        assert rel.max() < 1e-8, (key, rel)


def test_scattered_data_beyond_the_dense_limit_take_the_nufft_route():
    case = _scattered(20_000, RHO)
    ds = data_kernel_flow(case)
    assert json.loads(ds.attrs["kernel_flow"])["route"] == "krylov"
    # the flow learns: the error falls, and the held-out error follows the training error
    assert ds["train_mse"].values[-1] < 0.05 * ds["train_mse"].values[0]
    assert ds["test_mse"].values[-1] < 2 * ds["train_mse"].values[-1] + 0.02


def test_dense_route_against_an_independent_matrix_exponential():
    case = _case("1d-fraction")
    t = case.target
    x = t.points()
    train, test = t.train.ravel(), t.test.ravel()
    y = t.values.ravel()
    theta = fourier_feature_ntk(case, x)  # κ²(1 + 4π²σ_a² x·x') k(x − x')
    a = t.cell_volume * theta[np.ix_(train, train)]
    ds = data_kernel_flow(case, route="dense")
    for i, time in enumerate(TIMES):
        # f(t) on every sample from the augmented exponential of [[−A, 0], [−K*, 0]]
        f_train = y[train] - linalg.expm(-a * time) @ y[train]
        moved = np.linalg.lstsq(a, f_train, rcond=None)[0]  # A⁻¹(I − e^{−At})y
        f_test = t.cell_volume * theta[np.ix_(test, train)] @ moved
        assert ds["train_mse"].values[i] == pytest.approx(np.mean((f_train - y[train]) ** 2),
                                                          rel=1e-9)
        assert ds["test_mse"].values[i] == pytest.approx(np.mean((f_test - y[test]) ** 2),
                                                         rel=1e-6)


def test_sampled_target_flows_as_the_analytic_case_in_the_same_time_units():
    """A data case sampled from gaussian-1d's g on the kernel-flow grid, all samples used,
    is the analytic kernel flow: the same operator α h Θ and the same û, to round-off."""
    analytic = load_case("pde/gaussian-1d.toml")
    settings = KernelFlowSettings(R=8.0, spacing=0.05, method="eig", estimate_error=False)
    axis = settings.axis()
    n, h = axis.size, settings.spacing
    half = (n - 1) / (2 * n * h)  # the odd-n DFT grid is symmetric: ±(n−1)/(2nh)
    grid_case = load_case("g.toml", text=analytic.text.replace(
        "bounds = [-6.0, 6.0]", f"bounds = [{-half!r}, {half!r}]\npoints = {n}"))
    reference = kernel_flow(grid_case, settings)
    data = freqdyn.data_case(analytic.target(axis), extent=[[axis[0], axis[-1]]],
                             sigma_a=analytic.sigma_a, rho_w={"family": "gaussian",
                                                              "scale": 1.0},
                             times=analytic.times)
    ours = data_kernel_flow(data)
    np.testing.assert_allclose(ours["xi"].values, reference["xi"].values, atol=1e-12)
    ref = u_hat(reference).values
    assert np.abs(u_hat(ours).values - ref).max() < 1e-10 * np.abs(ref).max()
    assert np.isnan(ours["test_mse"].values).all()  # nothing held out: not a number



def test_solve_writes_the_errors_and_refuses_a_continuum_method(tmp_path, capsys):
    from freqdyn.cli import main
    from freqdyn.results import read_dataset

    np.save(tmp_path / "s.npy", _noisy((301,)))
    case = tmp_path / "case.toml"
    case.write_text('name = "mine"\n[network]\ndim = 1\nsigma_a = 0.15\n[network.rho_w]\n'
                    'family = "gaussian"\nscale = 6.0\n[target]\ndata = "s.npy"\n'
                    'holdout = { stride = 2 }\n[frequency]\ntimes = [0.0, 3.0, 30.0]\n')
    assert main(["solve", str(case), "--method", "kernel-flow", "--out", str(tmp_path)]) == 0
    assert "test MSE" in capsys.readouterr().out
    ds = read_dataset(tmp_path / "prediction.nc")
    assert ds["train_mse"].dims == ("time",) and ds["xi"].size == 301
    assert ds.attrs["case_toml"] == case.read_text() and len(ds.attrs["data_sha256"]) == 64
    assert (tmp_path / "prediction.png").stat().st_size > 0
    assert main(["solve", str(case), "--method", "modal", "--out", str(tmp_path / "m")]) == 2
    assert "needs an expression target g" in capsys.readouterr().err


def test_scattered_data_with_a_heavy_tailed_rho_fall_back_to_dense_or_are_refused():
    """Student-t has no cosine rule: small scattered cases are solved densely, large ones
    are refused before any work with one line naming rho_w."""
    rho = {"family": "student_t", "scale": 4.0, "dof": 3.0}
    small = data_kernel_flow(_scattered(3000, rho), route="krylov")
    assert json.loads(small.attrs["kernel_flow"])["route"] == "dense"
    with pytest.raises(InputError, match="cosine rule") as err:
        data_kernel_flow(_scattered(9000, rho))
    assert err.value.field == "network.rho_w"
