"""The frequency view on parity (kind ``parity``): n-bit parity on the hypercube,
proportion splits, spectra along a direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from freqdyn.errors import InputError
from freqdyn.grok.frequency_view import (
    CONVENTION,
    add_mean_std,
    frequency_mlp,
    hypercube,
    loss_events,
    run_lengths,
    split_indices,
    train_probed,
)
from freqdyn.grok.nudft import (
    amplitude,
    principal_direction,
    projected_nudft,
    relative_error_at_peaks,
    spectral_mismatch,
)
from freqdyn.runs.experiment import Experiment
from freqdyn.runs.runner import Outcome


def run_parity(exp: Experiment, out: Path, device: str) -> Outcome:
    """10-bit parity at several training fractions: spectra along d and test-loss timing."""
    steps, every = run_lengths(exp)
    bits = exp.number("bits", 10, integer=True, low=2, high=16)
    fractions = [float(f) for f in exp.get("fractions", [0.2, 0.5, 0.8])]
    width = exp.number("width", 1000, integer=True, low=1)
    lr = exp.number("lr", 2e-4, low=0)
    init_scale = exp.number("init_scale", 1.0, low=0)
    low_band = exp.number("low_band", 1.9, low=0)
    tol = exp.number("rise_tolerance", 0.05, low=0)
    fall_level = exp.number("fall_level", 0.5, low=0, high=1)
    k = np.linspace(0.0, exp.number("k_top", 2 * np.pi, low=0), exp.number(
        "n_k", 201, integer=True, low=2))
    cube = hypercube(bits)
    labels = np.prod(cube, axis=1)
    choice = exp.get("direction", "ones")
    if choice not in ("ones", "pca"):
        raise InputError("settings.direction", f"expected 'ones' or 'pca', got {choice!r}")
    low = k <= low_band
    full_target = projected_nudft(cube, labels, k, np.ones(bits))

    runs, train_spectra, directions = {}, {}, {}
    for frac in fractions:
        runs[frac], train_spectra[frac] = [], []
        for seed in exp.seeds:
            train, test = split_indices(cube.shape[0], frac, seed)
            d = principal_direction(cube[train]) if choice == "pca" else np.ones(bits)
            directions[(frac, seed)] = d
            train_spectra[frac].append(projected_nudft(cube[train], labels[train], k, d))

            def spectra_fn(out_train, out_test, train=train, test=test, d=d):
                outputs = np.empty(cube.shape[0])
                outputs[train], outputs[test] = out_train[:, 0], out_test[:, 0]
                return {"output_full": projected_nudft(cube, outputs, k, d)}

            model = frequency_mlp(bits, width, 1, 1, "relu", init_scale, seed)
            runs[frac].append(train_probed(
                model, torch.optim.Adam(model.parameters(), lr=lr), x_train=cube[train],
                y_train=labels[train], x_test=cube[test], y_test=labels[test], steps=steps,
                eval_every=every, seed=seed, device=device, spectra_fn=spectra_fn,
                classify="sign", label=f"parity fraction {frac} seed {seed}"))
    eval_steps = np.asarray(runs[fractions[0]][0].log.eval_steps)
    peak = int(np.argmax(amplitude(full_target)))

    summary: dict = {"fractions": fractions, "exact_peak_k": float(np.pi * np.sqrt(bits) / 2),
                     "grid_peak_k": float(k[peak])}
    fall_means, low_means = [], []
    for frac in fractions:
        tag = f"f{round(100 * frac):02d}"
        summary.update(_fraction_summary(tag, runs[frac], train_spectra[frac], eval_steps,
                                         low, full_target, peak, tol, fall_level))
        fall_means.append(summary[f"{tag}_test_fall_step_mean"])
        low_means.append(summary[f"{tag}_train_low_freq_amplitude_mean"])
    summary["test_fall_step_by_fraction"] = fall_means
    summary["train_low_freq_amplitude_by_fraction"] = low_means
    summary["full_low_freq_amplitude"] = float(np.abs(full_target[low]).mean())
    summary["deviations"] = _parity_deviations(summary, fractions)

    coords = {"fraction": fractions, "seed": list(exp.seeds), "step": eval_steps, "k": k}
    data = {}
    for key, name in (("train_loss", "training MSE (±1 labels)"), ("test_loss", "test MSE"),
                      ("train_acc", "training accuracy of sign(h)"),
                      ("test_acc", "test accuracy of sign(h)")):
        data[key] = (("fraction", "seed", "step"), np.array(
            [[r.log.evals(key) for r in runs[f]] for f in fractions]), {"long_name": name})
    data["output_full_amplitude"] = (("fraction", "seed", "step", "k"), np.array(
        [[np.abs(r.spectra["output_full"]) for r in runs[f]] for f in fractions]),
        {"long_name": "|F_d[h](k)| of the network output on all 2^bits points"})
    data["target_train_amplitude"] = (("fraction", "seed", "k"), np.abs(np.array(
        [train_spectra[f] for f in fractions])),
        {"long_name": "|F_d[y](k)| of parity on the training subset"})
    data["target_full_amplitude"] = (("k",), amplitude(full_target),
                                     {"long_name": "|F_d[y](k)| of parity on all points"})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["fourier_convention"] = CONVENTION
    ds.attrs["direction"] = "(1, ..., 1)/sqrt(bits)" if choice == "ones" else \
        "first principal direction of the training inputs"
    return Outcome(dataset=ds, summary=summary, figure_set="grok.parity",
                   figure_data={"ds": ds, "focus": exp.get("focus_fraction", 0.5)})


def _fraction_summary(tag: str, runs, train_spectra, eval_steps, low, full_target, peak: int,
                      tol: float, fall_level: float) -> dict:
    """The report of one training fraction (keys ``{tag}_…``): loss events, accuracies, the
    training subset's low-frequency amplitude and the output's low-frequency build-up.

    The output's low-frequency amplitude on all points: the initial output's offset decays
    first (to the dip, before the test-loss peak), then the spurious low frequencies of the
    training subset build up while the test loss rises, then decay.
    """
    summary: dict = {}
    events = [loss_events(eval_steps, r.log.evals("train_loss"), r.log.evals("test_loss"),
                          tol, fall_level) for r in runs]
    for key in ("test_peak_step", "test_rise", "test_fell", "test_fall_step", "grokked",
                "final_test_loss"):
        summary[f"{tag}_{key}"] = [e[key] for e in events]
    summary[f"{tag}_final_test_acc"] = [r.log.last("test_acc") for r in runs]
    summary[f"{tag}_final_train_acc"] = [r.log.last("train_acc") for r in runs]
    summary[f"{tag}_train_low_freq_amplitude"] = [float(np.abs(s[low]).mean())
                                                  for s in train_spectra]
    summary[f"{tag}_train_mismatch"] = [spectral_mismatch(s, full_target) for s in train_spectra]
    dips, rises, rise_steps, finals = [], [], [], []
    for r in runs:
        curve = np.abs(r.spectra["output_full"][:, low]).mean(1)
        dip = int(np.argmin(curve[:int(np.argmax(r.log.evals("test_loss"))) + 1]))
        top = dip + int(np.argmax(curve[dip:]))
        dips.append(float(curve[dip]))
        rises.append(float(curve[top]))
        rise_steps.append(int(eval_steps[top]))
        finals.append(float(curve[-1]))
    summary[f"{tag}_output_low_freq_dip"] = dips
    summary[f"{tag}_output_low_freq_rise_peak"] = rises
    summary[f"{tag}_output_low_freq_rise_peak_step"] = rise_steps
    summary[f"{tag}_output_low_freq_final"] = finals
    summary[f"{tag}_final_relative_error_at_peak"] = [
        float(relative_error_at_peaks(r.spectra["output_full"][-1], full_target, [peak])[0])
        for r in runs]
    for key in ("test_fall_step", "train_low_freq_amplitude", "final_test_acc"):
        add_mean_std(summary, f"{tag}_{key}")
    return summary


def _parity_deviations(summary: dict, fractions: list[float]) -> list[str]:
    """Where this run departs from the parity observations of Zhou, Zhang, Xu 2024, in words."""
    notes = []
    for frac in fractions:
        tag = f"f{round(100 * frac):02d}"
        if not all(summary[f"{tag}_test_fell"]):
            notes.append(f"fraction {frac:g}: the test loss did not fall below the set level "
                         f"within the run in {summary[f'{tag}_test_fell'].count(False)} seed(s)")
        if not all(np.asarray(summary[f"{tag}_output_low_freq_rise_peak"])
                   > np.asarray(summary[f"{tag}_output_low_freq_dip"])):
            notes.append(f"fraction {frac:g}: the output's low frequencies on all points did "
                         "not build up after the initial decay in every seed")
    steps = summary["test_fall_step_by_fraction"]
    reached = [(f, s) for f, s in zip(fractions, steps, strict=True) if np.isfinite(s)]
    if any(a[1] < b[1] for a, b in zip(reached, reached[1:], strict=False)):
        notes.append("the test loss does not fall later for every smaller fraction where it "
                     "falls")
    return notes
