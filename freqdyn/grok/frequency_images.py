"""The frequency view on images (kind ``image``): MNIST-1000 or the scikit-learn digits,
large initialisation, spectra along the first principal direction of the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from freqdyn.errors import InputError
from freqdyn.grok.frequency_view import (
    CONVENTION,
    add_mean_std,
    frequency_mlp,
    make_optimizer,
    run_lengths,
    train_probed,
)
from freqdyn.grok.images import load_digits, load_mnist, subsample_train
from freqdyn.grok.nudft import (
    nudft,
    principal_direction,
    spectral_peaks,
)
from freqdyn.runs.experiment import Experiment
from freqdyn.runs.runner import Outcome

IMAGE_ARMS = ("large_init", "default_init")


def _image_data(exp: Experiment, seed: int):
    name = exp.get("dataset", "digits")
    n_train = exp.number("n_train", 1000, integer=True, low=1)
    if name == "digits":
        return load_digits(n_train, seed)
    if name == "mnist":
        return subsample_train(load_mnist(exp.require("mnist_dir")), n_train, seed)
    raise InputError("settings.dataset", f"expected 'digits' or 'mnist', got {name!r}")


def run_image(exp: Experiment, out: Path, device: str) -> Outcome:
    """Large init (α = 8, Adam) groks on images; default init (α = 1, SGD) does not."""
    steps, every = run_lengths(exp)
    width = exp.number("width", 200, integer=True, low=1)
    depth = exp.number("depth", 3, integer=True, low=1)
    batch = exp.number("batch_size", 200, integer=True, low=1)
    k = np.linspace(0.0, exp.number("k_top", 2 * np.pi, low=0),
                    exp.number("n_k", 1000, integer=True, low=2))
    low_band = exp.number("low_band", 1.0, low=0)
    arms = {
        "large_init": (exp.number("large_alpha", 8.0, low=0), exp.get("large_optimizer", "adam"),
                       exp.number("large_lr", 1e-3, low=0),
                       exp.number("large_weight_decay", 0.0, low=0)),
        "default_init": (exp.number("default_alpha", 1.0, low=0),
                         exp.get("default_optimizer", "sgd"),
                         exp.number("default_lr", 0.02, low=0),
                         exp.number("default_weight_decay", 0.0, low=0)),
    }
    snap_steps = [int(s) for s in exp.get("snapshot_steps", [0, steps // 10, steps])]
    low = k <= low_band

    runs = {arm: [] for arm in IMAGE_ARMS}
    targets = []
    for seed in exp.seeds:
        data = _image_data(exp, seed)
        classes = data.n_classes
        onehot = {part: np.eye(classes)[getattr(data, f"y_{part}")] for part in ("train", "test")}
        x_all = np.concatenate([data.x_train, data.x_test])
        d = principal_direction(x_all)
        proj = {"train": data.x_train @ d, "full": x_all @ d}
        y_full = np.concatenate([onehot["train"], onehot["test"]])
        targets.append({"train": nudft(proj["train"], onehot["train"], k),
                        "full": nudft(proj["full"], y_full, k)})

        def spectra_fn(out_train, out_test, proj=proj):
            return {"output_train": nudft(proj["train"], out_train, k),
                    "output_full": nudft(proj["full"], np.concatenate([out_train, out_test]), k)}

        for arm in IMAGE_ARMS:
            alpha, opt_name, lr, weight_decay = arms[arm]
            model = frequency_mlp(x_all.shape[1], width, depth, classes, "relu", alpha, seed)
            runs[arm].append(train_probed(
                model, make_optimizer(opt_name, model, lr,
                                      f"settings.{arm.split('_')[0]}_optimizer", weight_decay),
                x_train=data.x_train, y_train=onehot["train"], x_test=data.x_test,
                y_test=onehot["test"], steps=steps, eval_every=every, seed=seed, device=device,
                spectra_fn=spectra_fn, batch_size=batch, classify="argmax",
                label=f"{data.name} {arm} seed {seed}"))
    eval_steps = np.asarray(runs["large_init"][0].log.eval_steps)
    snaps = [min(eval_steps, key=lambda s, t=t: abs(s - t)) for t in snap_steps]

    summary: dict = {"dataset": exp.get("dataset", "digits"),
                     "arms": {a: {"alpha": arms[a][0], "optimizer": arms[a][1],
                                  "lr": arms[a][2], "weight_decay": arms[a][3]}
                              for a in IMAGE_ARMS}}
    curves = {}
    level = exp.number("train_acc_level", 0.99, low=0, high=1)
    for arm in IMAGE_ARMS:
        curves[arm] = {where: np.array([_distance(r.spectra[f"output_{where}"], t[where])
                                        for r, t in zip(runs[arm], targets, strict=True)])
                       for where in ("train", "full")}
        summary.update(_image_arm_summary(arm, runs[arm], targets, curves[arm], eval_steps,
                                          level, low))
    summary["early_step"] = int(eval_steps[max(1, eval_steps.size // 10)])
    summary["deviations"] = _image_deviations(summary)
    summary["target_peak_k"] = float(k[spectral_peaks(_rss(targets[0]["full"]))[0]])
    ds = _image_dataset(runs, targets, curves, list(exp.seeds), eval_steps, k)
    return Outcome(dataset=ds, summary=summary, figure_set="grok.images",
                   figure_data={"ds": ds, "arms": arms, "snaps": snaps})


def _rss(spec):
    """Root-sum-square over output coordinates of |F(k)|: shape (..., k)."""
    return np.sqrt(np.sum(np.abs(spec) ** 2, axis=-1))


def _distance(spec, target):
    """‖F[h] − F[y]‖ / ‖F[y]‖ over k and output coordinates (per evaluation step)."""
    return np.sqrt(np.sum(np.abs(spec - target) ** 2, axis=(-2, -1))
                   / np.sum(np.abs(target) ** 2))


def _image_arm_summary(arm: str, runs, targets, dist: dict, eval_steps, level: float,
                       low) -> dict:
    """The report of one arm (keys ``{arm}_…``): accuracies and their gap, the step the
    training accuracy reaches ``level`` (None: not reached), spectral distances, and the
    frequency-principle check early on (relative error in the low band against the rest)."""
    summary: dict = {}
    train_acc = np.array([r.log.evals("train_acc") for r in runs])
    test_acc = np.array([r.log.evals("test_acc") for r in runs])
    gap = train_acc - test_acc
    summary[f"{arm}_final_train_acc"] = train_acc[:, -1].tolist()
    summary[f"{arm}_final_test_acc"] = test_acc[:, -1].tolist()
    summary[f"{arm}_max_acc_gap"] = gap.max(1).tolist()
    summary[f"{arm}_max_acc_gap_step"] = eval_steps[gap.argmax(1)].tolist()
    summary[f"{arm}_train_acc_step"] = [int(eval_steps[np.argmax(r)]) if r.any() else None
                                        for r in train_acc >= level]
    summary[f"{arm}_init_amplitude_ratio"] = [
        float(_rss(r.spectra["output_full"][0]).sum() / _rss(t["full"]).sum())
        for r, t in zip(runs, targets, strict=True)]
    mid = np.argmax(gap, axis=1)
    summary[f"{arm}_spectral_distance_train_at_gap"] = [
        float(dist["train"][i, m]) for i, m in enumerate(mid)]
    summary[f"{arm}_spectral_distance_full_at_gap"] = [
        float(dist["full"][i, m]) for i, m in enumerate(mid)]
    summary[f"{arm}_spectral_distance_full_final"] = dist["full"][:, -1].tolist()
    early = max(1, eval_steps.size // 10)
    low_err, high_err = [], []
    for r, t in zip(runs, targets, strict=True):
        diff = np.abs(r.spectra["output_full"][early] - t["full"]) ** 2
        ref = np.abs(t["full"]) ** 2
        low_err.append(float(np.sqrt(diff[low].sum() / ref[low].sum())))
        high_err.append(float(np.sqrt(diff[~low].sum() / ref[~low].sum())))
    summary[f"{arm}_early_low_band_error"] = low_err
    summary[f"{arm}_early_high_band_error"] = high_err
    for key in ("final_test_acc", "max_acc_gap", "train_acc_step"):
        add_mean_std(summary, f"{arm}_{key}")
    return summary


def _image_dataset(runs, targets, curves, seeds, eval_steps, k) -> xr.Dataset:
    """result.nc of the image study: curves, output and target spectra, distances."""
    coords = {"arm": list(IMAGE_ARMS), "seed": seeds, "step": eval_steps, "k": k}
    data_vars = {}
    for key, name in (("train_loss", "training MSE on one-hot targets"),
                      ("test_loss", "test MSE"), ("train_acc", "training accuracy"),
                      ("test_acc", "test accuracy")):
        data_vars[key] = (("arm", "seed", "step"), np.array(
            [[r.log.evals(key) for r in runs[a]] for a in IMAGE_ARMS]), {"long_name": name})
    for where in ("train", "full"):
        data_vars[f"output_{where}_amplitude"] = (("arm", "seed", "step", "k"), np.array(
            [[_rss(r.spectra[f"output_{where}"]) for r in runs[a]] for a in IMAGE_ARMS]),
            {"long_name": f"root-sum-square over classes of |F_d[h_c](k)|, {where} set"})
        data_vars[f"target_{where}_amplitude"] = (("seed", "k"), np.array(
            [_rss(t[where]) for t in targets]),
            {"long_name": f"root-sum-square over classes of |F_d[y_c](k)|, {where} set"})
        data_vars[f"spectral_distance_{where}"] = (("arm", "seed", "step"), np.array(
            [curves[a][where] for a in IMAGE_ARMS]),
            {"long_name": f"||F[h] - F[y]|| / ||F[y]|| over k and classes, {where} set"})
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs["fourier_convention"] = CONVENTION
    ds.attrs["direction"] = "first principal direction of all images (train + test)"
    return ds


def _image_deviations(summary: dict) -> list[str]:
    """Where this run departs from the image observations of Zhou, Zhang, Xu 2024, in words."""
    notes = []
    gap = np.asarray(summary["large_init_max_acc_gap"])
    final_gap = np.asarray(summary["large_init_final_train_acc"]) - np.asarray(
        summary["large_init_final_test_acc"])
    if np.any(final_gap > 0.5 * gap):
        notes.append("large init: the test accuracy has not caught up with the training "
                     "accuracy by the end of the run (no late generalisation seen); final test "
                     f"accuracy {np.round(summary['large_init_final_test_acc'], 3).tolist()}")
    if np.any(gap <= 0.1):
        notes.append("large init: training accuracy did not run ahead of test accuracy by "
                     "more than 0.1 in every seed")
    if np.any(np.asarray(summary["default_init_max_acc_gap"]) >= 0.1):
        notes.append("default init: a train-test accuracy gap of 0.1 or more appeared")
    if not all(np.asarray(summary["default_init_early_low_band_error"])
               < np.asarray(summary["default_init_early_high_band_error"])):
        notes.append("default init: low frequencies were not fitted first in every seed")
    return notes
