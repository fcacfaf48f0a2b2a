"""``freqdyn solve``: one case, one registered method, ``prediction.nc`` and its figure.

Runs under ``mpiexec -n P`` for the finite-element methods: every process computes, rank 0
writes.  Methods that are exact in time and cheap are drawn on 81 evenly spaced times (the
heatmap then shows the dynamics, not blocks at the reported times); time-stepped methods
are drawn at the reported times, each as a row at its own t.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from freqdyn.analysis.data_width import width_prediction
from freqdyn.plots import dynamics_figure, save_figure
from freqdyn.plots.data import data_figure
from freqdyn.predict.registry import predict, predictor, summary
from freqdyn.results import at_times, write_dataset


@dataclass
class Written:
    """What a solve wrote, and its one-line summary."""

    summary: str
    paths: list[Path]


def solve_to(case, out, method: str = "modal", figure: bool = True) -> Written | None:
    """Predict ``case`` by ``method``; write ``out/prediction.nc`` (and ``prediction.png``).

    Returns what was written on rank 0 (None on the other MPI ranks).
    """
    entry = predictor(method, "--method")
    comm = None
    if entry.mpi:
        from freqdyn.predict.fem.stack import MPI

        comm = MPI.COMM_WORLD
    options = {"comm": comm} if entry.mpi else {}
    fig_ds = None
    if figure and not case.is_data and entry.exact_in_time and case.times.size < 40:
        # one prediction on dense times: the figure's, read at the case's times for the file
        dense = np.union1d(case.times, np.linspace(0.0, case.times[-1], 81))
        fig_ds = predict(replace(case, times=dense), method, **options)
        ds = at_times(fig_ds, case.times)
    else:
        ds = predict(case, method, **options)
    if case.is_data and method == "kernel-flow" and "width" in case.section("train"):
        ds = with_width_prediction(ds, case)
    if comm is not None and comm.rank != 0:
        comm.Barrier()
        return None
    out = Path(out)
    paths = [write_dataset(ds, out / "prediction.nc")]
    if figure and case.is_data:
        title = f"{case.name}: {method} on the data, train and test error"
        paths.append(save_figure(data_figure(ds, title=title), out / "prediction.png"))
    elif figure:
        fig_ds = ds if fig_ds is None else fig_ds
        title = f"{case.name}: {method}, error transform |û(ξ, t)|"
        paths.append(save_figure(dynamics_figure(fig_ds, title=title), out / "prediction.png"))
    if comm is not None:
        comm.Barrier()
    return Written(summary=_summary_line(ds), paths=paths)


def with_width_prediction(ds, case):
    """``ds`` with the expected train and test MSE of the case's ``[train] width``
    networks and the test MSE's spread over draws of θ₀
    (:mod:`freqdyn.analysis.data_width`)."""
    pred = width_prediction(case, times=ds["time"].values)
    st = pred.statistics()
    unit = "unit of y squared"
    about = f"width-{pred.width} networks, over {pred.draws} draws of their linearised flow"
    return ds.assign(
        expected_train_mse=("time", st["train_mse_mean"], {
            "long_name": f"expected train MSE of {about}", "units": unit}),
        expected_test_mse=("time", st["test_mse_mean"], {
            "long_name": f"expected test MSE of {about}", "units": unit}),
        expected_test_mse_std=("time", st["test_mse_std"], {
            "long_name": f"standard deviation of one network's test MSE, {about}",
            "units": unit})).assign_attrs(width=pred.width, width_draws=pred.draws)


def _summary_line(ds) -> str:
    line = summary(ds)
    for key in ("truncation_error", "discretisation_error", "time_error_bound",
                "modal_truncation_error"):
        if key in ds:
            line += f"; estimated {key.replace('_', ' ')} <= {float(np.nanmax(ds[key])):.1e}"
    if "train_mse" in ds:
        t, train, test = (ds[k].values for k in ("time", "train_mse", "test_mse"))
        held = (f", test MSE {test[0]:.4g} -> {test[-1]:.4g}" if np.isfinite(test).all()
                else ", no samples held out")
        line += f"; train MSE {train[0]:.4g} -> {train[-1]:.4g}{held} at t = {t[-1]:g}"
    if "pde_difference" in ds:
        t, diff, band = (ds[k].values for k in ("time", "pde_difference",
                                                "pde_difference_resolved"))
        line += (f"; continuum PDE vs the samples (rel L2 of u_hat) at t = {t[-1]:g}: "
                 f"{diff[-1]:.2g}, {band[-1]:.2g} in the band the training grid resolves "
                 f"(its discretisation <= {float(np.nanmax(ds['pde_discretisation_error'])):.1e})")
    if "expected_test_mse" in ds:
        line += (f"; at m = {ds.attrs['width']}: test MSE "
                 f"{float(ds['expected_test_mse'][-1]):.4g} ± "
                 f"{float(ds['expected_test_mse_std'][-1]):.2g}")
    return line
