"""Design for data: the ρ_w scale that minimises the predicted test MSE at a training time.

For a data case and a training time T, each scale s on a grid gives a ρ_w of the case's
family (``scale`` of a Gaussian, Laplace or Student-t, ``bound`` of a uniform), and the
exact infinite-width kernel flow on the training samples
(:mod:`freqdyn.predict.data_flow`) gives the mean network's test MSE at T.  The design is
the grid scale of least test MSE: a small scale underfits (the kernel is too smooth to
reach the signal's frequencies by T), a large one overfits (it interpolates the training
samples with frequencies the held-out ones do not share).  The curve is returned whole, so
the flatness of the minimum is visible; a minimum at an end of the grid is flagged, since
the best scale may then lie outside it.

By default the prediction is the mean network's (f₀ = 0, infinite width).  Given a
width m, it is the expected test MSE of width-m networks instead, the mean over draws of
their linearised flow (:mod:`freqdyn.analysis.data_width`), with its spread: at small m the
kernel's Monte-Carlo error adds O(1/m) to the MSE and can move the best scale.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace

import numpy as np

from freqdyn.analysis.data_width import DEFAULT_DRAWS, width_prediction
from freqdyn.analysis.stats import mean_std
from freqdyn.errors import InputError
from freqdyn.inputs.densities import density_from_config
from freqdyn.predict.data_flow import data_kernel_flow

#: The ρ_w key a scale design varies, per family.
SCALE_KEYS = {"gaussian": "scale", "laplace": "scale", "student_t": "scale",
              "uniform": "bound"}
#: Scales of the default grid.
GRID_POINTS = 25


@dataclass(frozen=True)
class ScaleDesign:
    """The test MSE (and train MSE) at time ``time`` for each scale, and the best one."""

    family: str
    key: str
    time: float
    scales: np.ndarray
    test_mse: np.ndarray
    train_mse: np.ndarray
    width: int | None = None  # None: infinite width
    test_mse_std: np.ndarray | None = None  # over draws of width-m networks
    draws: int | None = None

    @property
    def model(self) -> str:
        """What the curve is, in words."""
        if self.width is None:
            return ("infinite-width mean network, exact kernel flow on the training samples; "
                    "finite-width spread not included")
        return (f"expected test MSE of width-{self.width} networks: mean over {self.draws} "
                "draws of their linearised flow (docs/theory.md §13)")

    @property
    def best(self) -> int:
        return int(np.argmin(self.test_mse))

    @property
    def scale(self) -> float:
        return float(self.scales[self.best])

    @property
    def at_grid_end(self) -> bool:
        return self.best in (0, self.scales.size - 1)


def rho_table(case) -> dict:
    """The case's ``[network.rho_w]`` table, read back from its text."""
    return dict(tomllib.loads(case.text)["network"]["rho_w"])


def rho_at_scale(case, scale: float) -> dict:
    """The case's ``[network.rho_w]`` table with its scale (or bound) set to ``scale``."""
    table = rho_table(case)
    family = table.get("family")
    if family not in SCALE_KEYS:
        raise InputError("network.rho_w.family", f"a scale design varies the scale of "
                                                 f"{sorted(SCALE_KEYS)}; {family!r} has none")
    return {**table, SCALE_KEYS[family]: float(scale)}


def default_scales(case) -> np.ndarray:
    """A geometric grid from 1/256 of the training grid's Nyquist frequency up to it."""
    nyquist = case.target.training_nyquist
    return np.geomspace(nyquist / 256, nyquist, GRID_POINTS)


def predicted_mse_at(case, time: float, train_w: bool, width, draws):
    """(test MSE, train MSE, test MSE std or None) at ``time``: infinite width, or the
    mean over draws of width-m networks."""
    if width is None:
        ds = data_kernel_flow(case, times=np.array([0.0, time]), train_w=train_w)
        return float(ds["test_mse"].values[-1]), float(ds["train_mse"].values[-1]), None
    st = width_prediction(case, {"width": width, "train_w": train_w},
                          times=np.array([0.0, time]), draws=draws).statistics()
    return (float(st["test_mse_mean"][-1]), float(st["train_mse_mean"][-1]),
            float(st["test_mse_std"][-1]))


def design_scale(case, time: float, scales=None, train_w: bool = True,
                 scales_field: str = "--scales", width: int | None = None,
                 draws: int = DEFAULT_DRAWS) -> ScaleDesign:
    """The scale of the case's ρ_w family with the least predicted test MSE at ``time``,
    at infinite width or (``width``) the expected MSE of width-m networks over ``draws``
    draws; a bad grid of ``scales`` is refused naming ``scales_field``."""
    if not case.is_data or case.target.n_test == 0:
        raise InputError("--case", "a scale design needs a data case with held-out samples "
                                   "([target] data and holdout)")
    if not (np.isfinite(time) and time > 0):
        raise InputError("--time", f"must be a training time > 0, got {time}")
    family = rho_table(case).get("family")
    rho_at_scale(case, 1.0)  # refuses a family without a scale
    scales = default_scales(case) if scales is None else np.asarray(scales, dtype=float)
    if scales.ndim != 1 or scales.size < 3 or not np.all(scales > 0) \
            or np.any(np.diff(scales) <= 0):
        raise InputError(scales_field, "must be at least 3 increasing numbers > 0")
    rows = [predicted_mse_at(replace(case, rho_w=density_from_config(
        rho_at_scale(case, s), case.dim)), time, train_w, width, draws) for s in scales]
    test, train, std = (np.array([r[k] for r in rows]) for k in range(3))
    return ScaleDesign(family, SCALE_KEYS[family], float(time), scales, test, train,
                       width=width, test_mse_std=None if width is None else std,
                       draws=None if width is None else draws)


def network_agreement(design: ScaleDesign, mse: np.ndarray) -> dict:
    """Trained networks' test MSE (shape (scales, seeds)) against a design's prediction.

    The networks' mean and std over seeds per scale (:func:`~freqdyn.analysis.stats.
    mean_std`), their best scale, how many grid steps it lies from the predicted one, the
    networks' excess test MSE at the predicted scale over their best, and the largest
    relative difference |predicted/measured − 1| over the grid.
    """
    mean, std = mean_std(mse, axis=1)
    best = int(np.argmin(mean))
    return {"test_mse_mean": mean, "test_mse_std": std,
            "networks_best_scale": float(design.scales[best]),
            "grid_steps_apart": abs(best - design.best),
            "excess_at_predicted": float(mean[design.best] / mean[best] - 1),
            "max_rel_diff_pred_vs_net": float(np.max(np.abs(design.test_mse / mean - 1)))}
