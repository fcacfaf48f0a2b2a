"""``freqdyn solve``: one case, one registered method, ``prediction.nc`` and its figure.

Runs under ``mpiexec -n P`` for the finite-element methods: every process computes, rank 0
writes.  Methods that are exact in time and cheap are drawn on 81 evenly spaced times (the
heatmap then shows the dynamics, not blocks at the reported times); time-stepped methods
are drawn at the reported times, each as a row at its own t.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from freqdyn.errors import AccuracyWarning
from freqdyn.plots import dynamics_figure, save_figure
from freqdyn.plots.data import data_figure
from freqdyn.predict.registry import predict, predictor, summary
from freqdyn.results import write_dataset


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
    ds = predict(case, method, **options)
    if comm is not None and comm.rank != 0:
        comm.Barrier()
        return None
    out = Path(out)
    paths = [write_dataset(ds, out / "prediction.nc")]
    if figure and case.is_data:
        title = f"{case.name}: {method} on the data, train and test error"
        paths.append(save_figure(data_figure(ds, title=title), out / "prediction.png"))
    elif figure:
        fig_ds = ds
        if predictor(method).exact_in_time and case.times.size < 40:
            dense = np.union1d(case.times, np.linspace(0.0, case.times[-1], 81))
            with warnings.catch_warnings():  # the same warning was given for ds above
                warnings.simplefilter("ignore", AccuracyWarning)
                fig_ds = predict(replace(case, times=dense), method)
        title = f"{case.name}: {method}, error transform |û(ξ, t)|"
        paths.append(save_figure(dynamics_figure(fig_ds, title=title), out / "prediction.png"))
    if comm is not None:
        comm.Barrier()
    return Written(summary=_summary_line(ds), paths=paths)


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
    return line
