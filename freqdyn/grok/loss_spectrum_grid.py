"""The loss-spectrum grid (kind ``loss-spectrum-grid``): cells over (r, lr, wd, seed),
their loss-curve signatures and the predictor evaluation."""

from __future__ import annotations

import functools
import hashlib
import json
import sys

import numpy as np
import torch
import xarray as xr
from scipy import stats

from freqdyn.errors import InputError
from freqdyn.grok.algorithmic import train_modular
from freqdyn.grok.loss_spectrum import (
    DEFAULT_DETREND,
    GROKS_AT,
    T0,
    auroc,
    detrend,
    evaluate_predictor,
    minmax_normalise,
    power_spectrum,
    spearman_interval,
    spectral_signature,
    variant_names,
)
from freqdyn.progress import progress_enabled
from freqdyn.runs.runner import Outcome
from freqdyn.runs.sweep import run_sweep, sweep_settings

#: Settings that define the grid rather than one run.
GRID_KEYS = ("learning_rates", "weight_decays", "train_fractions")
#: Settings read by the signature and the evaluation, not by the training run.
SIGNATURE_KEYS = ("t0", "detrend", "detrend_window", "detrend_polyorder", "highpass_cutoff",
                  "bands", "groks_at", "n_boot", "min_abs_rho")


def grid_cell(cell: dict, *, train: dict, signature: dict, device: str = "cpu") -> dict:
    """One grid run: train the modular model of ``train`` at the cell's (r, lr, wd, seed).

    Returns the spectral signature of the first ``t0`` steps of its per-step training loss
    (every variant), the final validation and training accuracy, the phase times and the
    curves the figures need.  Runs with one torch thread (the sweep runs cells in parallel).
    """


    torch.set_num_threads(1)
    cfg = {**train, "train_fraction": cell["r"], "lr": cell["lr"], "weight_decay": cell["wd"]}
    run = train_modular(cfg, cell["seed"], device=device)
    loss = run.log.every("loss")
    sig = spectral_signature(loss, t0=signature["t0"], window=signature["detrend_window"],
                             polyorder=signature["detrend_polyorder"],
                             cutoff=signature["highpass_cutoff"], bands=signature["bands"])
    return {"signature": sig, "val_acc": float(run.final["val_acc"]),
            "train_acc": float(run.final["train_acc"]), "grokked": bool(run.final["grokked"]),
            "phase_times": {k: (None if v is None else int(v))
                            for k, v in run.phase_times.items()},
            "loss": loss.tolist(), "eval_steps": [int(s) for s in run.log.eval_steps],
            "val_acc_curve": run.log.evals("val_acc").tolist(),
            "train_acc_curve": run.log.evals("train_acc").tolist()}


def _grid_settings(exp) -> tuple[dict, dict, dict]:
    """Split the experiment settings into (grid axes, training cfg, signature settings)."""
    grid = {}
    for key in GRID_KEYS:
        values = exp.require(key)
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                           for v in values)):
            raise InputError(f"settings.{key}", f"must be a non-empty list of numbers ≥ 0, "
                                               f"got {values!r}")
        if len(set(values)) != len(values):
            raise InputError(f"settings.{key}", f"repeats a value: {values}")
        grid[key] = [float(v) for v in values]
    if not all(0 < r < 1 for r in grid["train_fractions"]):
        raise InputError("settings.train_fractions", "every r must lie in (0, 1)")
    if not all(v > 0 for v in grid["learning_rates"]):
        raise InputError("settings.learning_rates", "every learning rate must be > 0")
    t0 = exp.number("t0", T0, low=8, integer=True)
    bands = exp.get("bands", [[3, 10], [11, 50], [51, 200]])
    if (not isinstance(bands, list) or not all(isinstance(b, list) and len(b) == 2
                                               and all(isinstance(k, int) for k in b)
                                               and 0 <= b[0] <= b[1] for b in bands)):
        raise InputError("settings.bands", f"must be a list of [k1, k2] integer pairs, "
                                          f"got {bands!r}")
    detrend_default = exp.get("detrend", DEFAULT_DETREND)
    if detrend_default not in variant_names():
        raise InputError("settings.detrend", f"must be one of {variant_names()}, "
                                            f"got {detrend_default!r}")
    signature = {
        "t0": t0, "detrend": detrend_default,
        "detrend_window": exp.number("detrend_window", 51, low=3, integer=True),
        "detrend_polyorder": exp.number("detrend_polyorder", 2, low=0, integer=True),
        "highpass_cutoff": exp.number("highpass_cutoff", 2, low=0, integer=True),
        "bands": [list(b) for b in bands],
        "groks_at": exp.number("groks_at", GROKS_AT, low=0.0, high=1.0),
        "n_boot": exp.number("n_boot", 2000, low=100, integer=True),
        "min_abs_rho": exp.number("min_abs_rho", 0.5, low=0.0, high=1.0),
    }
    steps = exp.number("steps", low=t0, integer=True)
    train = {k: v for k, v in exp.settings.items()
             if k not in GRID_KEYS + SIGNATURE_KEYS}
    train["steps"] = steps
    train.setdefault("batch_size", "full")  # the paper's full batch: the loss curve is L(θ_t)
    return grid, train, signature


def _cells(exp, grid: dict, config: str) -> list[dict]:
    return [{"r": r, "lr": lr, "wd": wd, "seed": seed, "config": config}
            for r in grid["train_fractions"] for lr in grid["learning_rates"]
            for wd in grid["weight_decays"] for seed in exp.seeds]


def _padded(rows: list[list[float]]) -> np.ndarray:
    width = max(len(row) for row in rows)
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = np.asarray(row, dtype=float)
    return out


def _evaluation_summary(activity, val_acc, normalised, rs, signature, rng) -> dict:
    """Per-r and pooled predictor scores of the default variant (arrays (r, lr, wd, seed))."""
    n_r = activity.shape[0]
    cell_groups = np.broadcast_to(np.arange(activity[0, ..., 0].size).reshape(
        activity.shape[1:3])[..., None], activity.shape[1:]).ravel()
    per_r = [evaluate_predictor(activity[i].ravel(), val_acc[i].ravel(),
                                groks_at=signature["groks_at"], groups=cell_groups,
                                n_boot=signature["n_boot"], rng=rng) for i in range(n_r)]
    summary = {
        "spearman_rho": [e["spearman"]["rho"] for e in per_r],
        "spearman_low": [e["spearman"]["low"] for e in per_r],
        "spearman_high": [e["spearman"]["high"] for e in per_r],
        "spearman_p": [e["spearman"]["p_value"] for e in per_r],
        "spearman_sign": [e["spearman"]["sign"] for e in per_r],
        "sign_certain": [e["spearman"]["sign_certain"] for e in per_r],
        "auroc": [e["auroc"] for e in per_r],
        "cv_accuracy": [e["cv"]["accuracy"] for e in per_r],
        "cv_majority": [e["cv"]["majority"] for e in per_r],
        "n_groks": [e["n_groks"] for e in per_r],
        "n_runs": [e["n_runs"] for e in per_r],
    }
    # a predictor of grokking is judged only where grokking happened and also failed to:
    # with no grokking run (or no failing one) there is nothing to predict ("not reached")
    summary["both_outcomes"] = [0 < g < n for g, n in zip(summary["n_groks"], summary["n_runs"],
                                                          strict=True)]
    summary["predicts"] = [bool(both and c and abs(rho) >= signature["min_abs_rho"])
                           for both, c, rho in zip(summary["both_outcomes"],
                                                   summary["sign_certain"],
                                                   summary["spearman_rho"], strict=True)]
    if n_r > 1:
        r_groups = np.broadcast_to(np.asarray(rs)[:, None, None, None], activity.shape).ravel()
        pooled = evaluate_predictor(normalised.ravel(), val_acc.ravel(),
                                    groks_at=signature["groks_at"], groups=r_groups,
                                    n_boot=signature["n_boot"], rng=rng)
        summary.update({
            "pooled_rho": pooled["spearman"]["rho"], "pooled_low": pooled["spearman"]["low"],
            "pooled_high": pooled["spearman"]["high"],
            "pooled_sign_certain": pooled["spearman"]["sign_certain"],
            "pooled_auroc": pooled["auroc"], "pooled_cv_accuracy": pooled["cv"]["accuracy"],
            "pooled_cv_majority": pooled["cv"]["majority"]})
    return summary


def run_grid(exp, out, device: str = "cpu"):
    """Kind ``loss-spectrum-grid``: the (lr, wd) × r grid of modular runs and the predictor.

    Settings: ``learning_rates``, ``weight_decays``, ``train_fractions`` (the grid), ``t0``
    (400), ``detrend`` (the default variant, ``"smooth"``), ``detrend_window`` (51),
    ``detrend_polyorder`` (2), ``highpass_cutoff`` (2), ``bands``, ``groks_at`` (0.99),
    ``n_boot`` (2000), ``min_abs_rho`` (0.5: the |ρ| a certain-sign correlation needs for
    ``predicts``); every other setting goes to :func:`freqdyn.grok.algorithmic.train_modular`
    (``steps`` is the outcome horizon; ``batch_size`` defaults to ``"full"`` as in the
    paper, so the per-step loss is the training loss L(θ_t)).  Besides the scores of
    :func:`evaluate_predictor`, the summary has ``rho_learning_rate``: Spearman ρ of the
    learning rate alone with the final accuracy, the baseline the activity has to beat
    (larger steps both raise the early oscillations and speed up generalisation).  Cells
    run through :mod:`freqdyn.runs.sweep` as configured by the file's ``[sweep]`` table and
    are kept in ``out/cells/``.
    """
    grid, train, signature = _grid_settings(exp)
    cell_signature = {k: signature[k] for k in
                      ("t0", "detrend_window", "detrend_polyorder", "highpass_cutoff", "bands")}
    config = hashlib.sha256(json.dumps({"train": train, "signature": cell_signature},
                                       sort_keys=True).encode()).hexdigest()[:10]
    cells = _cells(exp, grid, config)
    task = functools.partial(grid_cell, train=train, signature=cell_signature, device=device)

    def report(name: str, done: int, total: int) -> None:
        if progress_enabled():
            print(f"loss-spectrum-grid: {done}/{total} cells ({name})", file=sys.stderr)

    records = run_sweep(task, cells, out, sweep_settings(exp.text), on_done=report)
    shape = (len(grid["train_fractions"]), len(grid["learning_rates"]),
             len(grid["weight_decays"]), len(exp.seeds))
    arrays = _grid_arrays(records, signature, shape)
    summary = _grid_summary(arrays, grid, signature, np.random.default_rng(exp.seeds[0]))
    summary["cells"] = len(records)
    ds = _grid_dataset(arrays, grid, signature, list(exp.seeds), config)
    return Outcome(dataset=ds, summary=summary, figure_set="grok.loss-spectrum-grid",
                   figure_data={"ds": ds, "signature": signature,
                                "examples": example_runs(ds, signature["groks_at"])})


QUANTITIES = ("activity", "mobility", "complexity", "complexity_paper")


def _grid_arrays(records: list[dict], signature: dict, shape: tuple) -> dict:
    """The cells' results as arrays over (r, lr, wd, seed)[, …] (NaN: not reached)."""
    results = [rec["result"] for rec in records]
    variants = variant_names()
    band_names = [f"band_{b[0]}_{b[1]}" for b in signature["bands"]]

    def grid_of(values) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=float).reshape(shape)

    hjorth = {q: np.stack([grid_of([res["signature"][v][q] for res in results])
                           for v in variants]) for q in QUANTITIES}
    default = variants.index(signature["detrend"])
    method = signature["detrend"].removeprefix("log-")
    spectra = []
    for res in results:
        head = np.asarray(res["loss"][: signature["t0"]], dtype=float)
        base = np.log(head) if signature["detrend"].startswith("log-") else head
        spectra.append(power_spectrum(detrend(
            base, method, window=signature["detrend_window"],
            polyorder=signature["detrend_polyorder"], cutoff=signature["highpass_cutoff"]))[1])
    activity = hjorth["activity"][default]
    return {
        "variants": variants, "band_names": band_names, "default": default, "hjorth": hjorth,
        "bands": np.stack([np.stack([grid_of([res["signature"][v][b] for res in results])
                                     for b in band_names]) for v in variants]),
        "val_acc": grid_of([res["val_acc"] for res in results]),
        "train_acc": grid_of([res["train_acc"] for res in results]),
        "phase": {key: grid_of([res["phase_times"].get(key) for res in results])
                  for key in ("t1", "t2", "t3", "t4")},
        "loss": _padded([res["loss"] for res in results]).reshape(*shape, -1),
        "eval_steps": _padded([res["eval_steps"] for res in results]).reshape(*shape, -1),
        "val_curve": _padded([res["val_acc_curve"] for res in results]).reshape(*shape, -1),
        "train_curve": _padded([res["train_acc_curve"] for res in results]).reshape(*shape, -1),
        "seconds": grid_of([rec["seconds"] for rec in records]),
        "activity": activity, "normalised": np.stack([minmax_normalise(a) for a in activity]),
        "spectra": np.array(spectra).reshape(*shape, -1),
    }


def _grid_summary(a: dict, grid: dict, signature: dict, rng) -> dict:
    """The predictor's scores, its variants and the learning-rate baseline."""
    rs, lrs, wds = grid["train_fractions"], grid["learning_rates"], grid["weight_decays"]
    val_acc, hjorth, n_r = a["val_acc"], a["hjorth"], len(rs)
    summary = {"r": rs, "learning_rates": lrs, "weight_decays": wds,
               "detrend": signature["detrend"], "t0": signature["t0"],
               "groks_at": signature["groks_at"]}
    summary.update(_evaluation_summary(a["activity"], val_acc, a["normalised"], rs, signature,
                                       rng))
    summary["rho_by_variant"] = {
        v: [spearman_interval(hjorth["activity"][i][j].ravel(), val_acc[j].ravel(),
                              n_boot=signature["n_boot"], rng=rng)["rho"] for j in range(n_r)]
        for i, v in enumerate(a["variants"])}
    summary["auroc_by_variant"] = {
        v: [auroc(hjorth["activity"][i][j].ravel(), val_acc[j].ravel() >= signature["groks_at"])
            for j in range(n_r)] for i, v in enumerate(a["variants"])}
    summary["rho_mobility"] = [spearman_interval(hjorth["mobility"][a["default"]][j].ravel(),
                                                 val_acc[j].ravel(), n_boot=100,
                                                 rng=rng)["rho"] for j in range(n_r)]
    lr_grid = np.broadcast_to(np.asarray(lrs)[:, None, None], val_acc.shape[1:]).ravel()
    summary["rho_learning_rate"] = [float(stats.spearmanr(lr_grid, val_acc[j].ravel()).statistic)
                                    if np.ptp(val_acc[j]) > 0 else float("nan")
                                    for j in range(n_r)]
    summary["fraction_grokked"] = [float(np.mean(val_acc[j] >= signature["groks_at"]))
                                   for j in range(n_r)]
    summary["seconds_per_cell"] = float(np.mean(a["seconds"]))
    return summary


def _grid_dataset(a: dict, grid: dict, signature: dict, seeds: list, config: str) -> xr.Dataset:
    """result.nc of the grid: signatures, accuracies, loss curves and spectra per cell."""
    grid_dims = ("r", "lr", "wd", "seed")
    coords = {"r": ("r", grid["train_fractions"],
                    {"long_name": "training fraction r = |train|/|table|"}),
              "lr": ("lr", grid["learning_rates"], {"long_name": "AdamW peak learning rate"}),
              "wd": ("wd", grid["weight_decays"], {"long_name": "AdamW weight decay"}),
              "seed": ("seed", seeds),
              "variant": ("variant", list(a["variants"]),
                          {"long_name": "detrend variant of the loss curve"}),
              "band": ("band", a["band_names"],
                       {"long_name": "bins k1..k2 (cycles per t0 steps)"}),
              "step": ("step", np.arange(a["loss"].shape[-1]), {"long_name": "optimizer step"}),
              "k": ("k", np.arange(a["spectra"].shape[-1]),
                    {"long_name": "cycles per t0 training steps (loss-curve spectrum)"}),
              "eval_index": ("eval_index", np.arange(a["eval_steps"].shape[-1]))}
    units = "loss^2 (log-: (log loss)^2)"
    data = {q: (("variant", *grid_dims), a["hjorth"][q], {"long_name": f"Hjorth {q} of the "
                f"detrended first t0 steps of the training loss"
                + (f" [{units}]" if q == "activity" else "")}) for q in QUANTITIES}
    data.update({
        "band_energy": (("variant", "band", *grid_dims), a["bands"],
                        {"long_name": f"sum of the one-sided power over the band [{units}]"}),
        "activity_normalised": (grid_dims, a["normalised"], {
            "long_name": f"min-max normalised {signature['detrend']} activity within each r"}),
        "val_acc": (grid_dims, a["val_acc"],
                    {"long_name": "validation accuracy after the last step"}),
        "train_acc": (grid_dims, a["train_acc"],
                      {"long_name": "training accuracy after the last step"}),
        "loss": ((*grid_dims, "step"), a["loss"], {
            "long_name": "full-batch training loss per step (cross-entropy, nats)"}),
        "spectrum": ((*grid_dims, "k"), a["spectra"], {
            "long_name": f"one-sided power of the {signature['detrend']}-detrended first t0 "
                         f"steps [{units}]"}),
        "eval_step": ((*grid_dims, "eval_index"), a["eval_steps"],
                      {"long_name": "steps at which accuracies were evaluated"}),
        "val_acc_curve": ((*grid_dims, "eval_index"), a["val_curve"],
                          {"long_name": "validation accuracy at eval_step"}),
        "train_acc_curve": ((*grid_dims, "eval_index"), a["train_curve"],
                            {"long_name": "training accuracy at eval_step"}),
        "seconds": (grid_dims, a["seconds"],
                    {"long_name": "wall-clock seconds of the cell's run"}),
    })
    for key, values in a["phase"].items():
        data[key] = (grid_dims, values, {"long_name": f"phase time {key} (steps; NaN: not "
                                                      f"reached)"})
    return xr.Dataset(data, coords=coords, attrs={"detrend_default": signature["detrend"],
                                                   "t0": signature["t0"], "config": config})


def example_runs(ds, groks_at: float) -> dict[str, dict]:
    """Index of a grokking run (highest val acc, earliest t4) and of a non-grokking one
    (lowest val acc among the memorising runs, or overall)."""
    val = ds["val_acc"].values
    t4 = np.nan_to_num(ds["t4"].values, nan=np.inf)
    flat = np.arange(val.size)
    examples = {}
    grok = flat[val.ravel() >= groks_at]
    if grok.size:
        examples["groks"] = np.unravel_index(grok[np.argmin(t4.ravel()[grok])], val.shape)
    memorised = flat[(ds["train_acc"].values.ravel() >= groks_at)
                     & (val.ravel() < groks_at)]
    pool = memorised if memorised.size else flat[val.ravel() < groks_at]
    if pool.size:
        examples["does not grok"] = np.unravel_index(pool[np.argmin(val.ravel()[pool])],
                                                     val.shape)
    return {name: dict(zip(("r", "lr", "wd", "seed"), index, strict=True))
            for name, index in examples.items()}
