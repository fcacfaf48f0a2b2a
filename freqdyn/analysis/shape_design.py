"""Can a free-form ρ_w beat the best single scale on a data case's test MSE?

A scale design (:mod:`freqdyn.analysis.data_design`) moves one number, the scale of the
case's family.  The free form here is a mixture of that family at the design's grid
scales s_k (the best one s* replaced by its refined value, below), with free weights
w_k ≥ 0 (Σ w_k = 1): ρ_w = Σ_k w_k ρ_{s_k}, so the NTK is the same mixture of the
components' kernels.  The weights minimise the predicted test MSE at the design time by
bounded quasi-Newton (L-BFGS-B, finite differences), starting at the single best scale
(weight 1 there, 10⁻³ elsewhere).  Beside it, the single scale is refined off the grid
(bounded scalar minimisation of log s between the grid neighbours of s*), so that a gain
is a gain of the shape, not of a finer grid.

``gain`` = 1 − MSE(mixture)/MSE(best single, refined): ≤ 0 means no mixture found beats
the single scale, and the single scale is returned as the design.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize

from freqdyn.analysis.data_design import SCALE_KEYS, ScaleDesign, predicted_mse_at, rho_table
from freqdyn.inputs.densities import density_from_config

#: Smallest weight of a component (the mixture family needs weights > 0).
MIN_WEIGHT = 1e-6


@dataclass(frozen=True)
class ShapeDesign:
    """The mixture's scales and weights, its predicted test MSE, and the refined single."""

    family: str
    scales: np.ndarray
    weights: np.ndarray
    test_mse: float
    single_scale: float
    single_test_mse: float
    evaluations: int

    @property
    def gain(self) -> float:
        """1 − MSE(mixture)/MSE(single): the relative test-MSE reduction of the shape."""
        return 1.0 - self.test_mse / self.single_test_mse

    def rho_table(self) -> dict:
        """The mixture as a ``[network.rho_w]`` table."""
        key = SCALE_KEYS[self.family]
        return {"family": "mixture", "components": [
            {"family": self.family, key: float(s), "weight": float(w)}
            for s, w in zip(self.scales, self.weights, strict=True)]}


def _mse(case, time: float, rho: dict) -> float:
    return predicted_mse_at(replace(case, rho_w=density_from_config(rho, case.dim)), time,
                            True, None, None)[0]


def _refined_single(case, design: ScaleDesign, count) -> tuple[float, float]:
    """(scale, test MSE) of the best single scale between the grid neighbours of s*."""
    base = rho_table(case)
    key = SCALE_KEYS[design.family]
    i = design.best
    lo, hi = design.scales[max(i - 1, 0)], design.scales[min(i + 1, design.scales.size - 1)]

    def mse(log_s):
        count[0] += 1
        return _mse(case, design.time, {**base, key: float(np.exp(log_s))})

    res = optimize.minimize_scalar(mse, bounds=(np.log(lo), np.log(hi)), method="bounded",
                                   options={"xatol": 1e-3})
    if res.fun < design.test_mse[i]:
        return float(np.exp(res.x)), float(res.fun)
    return design.scale, float(design.test_mse[i])


def design_shape(case, design: ScaleDesign, max_evaluations: int = 400) -> ShapeDesign:
    """The mixture of least predicted test MSE around ``design``'s best scale (module
    text); infinite width (``design.width`` must be None)."""
    if design.width is not None:
        raise ValueError("the shape design is for the infinite-width prediction")
    count = [0]
    single_scale, single_mse = _refined_single(case, design, count)
    scales = np.sort(np.append(np.delete(design.scales, design.best), single_scale))
    at = int(np.searchsorted(scales, single_scale))
    shape = ShapeDesign(design.family, scales, np.eye(scales.size)[at], single_mse,
                        single_scale, single_mse, 0)

    def mse(weights):
        count[0] += 1
        w = weights / weights.sum()
        return _mse(case, design.time, replace(shape, weights=w).rho_table())

    start = np.full(scales.size, 1e-3)
    start[at] = 1.0
    res = optimize.minimize(mse, start, method="L-BFGS-B",
                            bounds=[(MIN_WEIGHT, 1.0)] * scales.size,
                            options={"maxfun": max_evaluations, "eps": 1e-4})
    if res.fun < single_mse:
        shape = replace(shape, weights=res.x / res.x.sum(), test_mse=float(res.fun))
    return replace(shape, evaluations=count[0])
