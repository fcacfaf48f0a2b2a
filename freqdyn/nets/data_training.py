"""Networks on a data case: the training samples, and what is measured on every sample.

The loss is the same as for an expression target, (α/2N) Σ_i (f(x_i) − y_i)² over the N
training samples, with the box volume V = N h (h the training cell volume,
:mod:`freqdyn.inputs.data`), so that a step of size η advances the PDE time by η/V, as
on every case (docs/theory.md §8, §13).  At each report the network is evaluated on every
sample (float64): the train and test MSE, and the error transform over the data's DFT
frequencies, exactly as :mod:`freqdyn.predict.data_flow` writes them for the theory.
"""

from __future__ import annotations

import numpy as np
import torch

from freqdyn.nets import transforms as tf
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.nets.measure import as_float64


def training_layout(target):
    """The training samples as a transform layout: a grid for a stride holdout (or none)
    of grid data, else scattered points."""
    points = target.points()[target.train.ravel()]
    if target.on_grid and target.holdout["kind"] in ("none", "stride"):
        step = target.holdout.get("stride", 1)
        shape = tuple(len(range(0, n, step)) for n in target.values.shape)
        return tf.GridSamples(np.array([a[0] for a in target.axes]),
                              target.spacing() * step, shape), points
    return tf.ScatteredSamples(points), points


def data_samples(case):
    """(x (N, d), y (N,), box volume N h, transform layout) of the training samples."""
    target = case.target
    layout, points = training_layout(target)
    values = target.values.ravel()[target.train.ravel()]
    return points, values, target.n_train * target.cell_volume, layout


def all_samples_layout(target):
    """Every sample of ``target`` (training and held out) as a transform layout, in the
    flat order of its values."""
    if target.on_grid:
        return tf.GridSamples(np.array([a[0] for a in target.axes]), target.spacing(),
                              target.values.shape)
    return tf.ScatteredSamples(target.points())


@torch.no_grad()
def evaluate_everywhere(model, target) -> np.ndarray:
    """f at every sample of ``target`` in float64, in the flat order of its values."""
    model64 = as_float64(model)
    points = target.points()
    if isinstance(model64, FourierFeatureNetwork):
        layout = all_samples_layout(target)
        return tf.forward(model64, tf.FourierTransforms(layout, torch.float64, tol=1e-13)
                          ).cpu().numpy()
    device = next(model64.parameters()).device
    return model64.evaluate(torch.from_numpy(points).to(device)).cpu().numpy()


def data_errors(model, target, f0: np.ndarray | None = None) -> dict:
    """Train and test MSE of f − f₀ and its error transform on the DFT frequencies."""
    f = evaluate_everywhere(model, target)
    if f0 is not None:
        f = f - f0
    error = f - target.values.ravel()
    train, test = target.train.ravel(), target.test.ravel()
    return {"u_hat": target.spectrum(error.reshape(target.values.shape)),
            "train_mse": float(np.mean(error[train] ** 2)),
            "test_mse": float(np.mean(error[test] ** 2)) if test.any() else float("nan")}
