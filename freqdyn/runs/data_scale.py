"""Experiment kind ``data-scale``: the predicted best ρ_w scale for a data case, confirmed
by trained networks over the same grid of scales.

Settings: ``case`` (a data case file, relative to the experiment file), ``time`` (the
training time T), ``scales`` (the grid, increasing), ``width`` (m of the networks),
``train`` (more ``[train]`` keys), ``spread_draws`` (draws of the width-m prediction,
default 8).  For each scale s the exact infinite-width flow gives
the predicted test MSE at T (:mod:`freqdyn.analysis.data_design`), and networks of width
m, one per seed, are trained to T on the same samples (:func:`freqdyn.nets.train.train`;
a finished run is read back, an interrupted one resumes).  The wrong-model arm is the
same prediction with the frequencies frozen (the random-feature kernel, without the
4π²σ_a² x·x' term), which the networks, whose frequencies train, must not follow.

Report: the predicted and the networks' best scale and how many grid steps apart they are
(``grid_steps_apart``), the networks' excess test MSE at the predicted scale over their
best (``excess_at_predicted``), and per scale the predicted, frozen-kernel and measured
(mean, std over seeds) test MSE with the largest relative differences
(``max_rel_diff_pred_vs_net``, ``max_rel_diff_frozen_vs_net``).

At the networks' own width the expected test MSE and its spread over draws of θ₀
(:mod:`freqdyn.analysis.data_width`) give the predicted finite-width curve
(``width_test_mse_mean``, ``width_test_mse_std``) and how far the networks' seed mean lies
from it in units of its predicted standard error, σ_m √(1/seeds + 1/draws)
(``max_net_gap_in_spreads``), to be read against ``gap_limit_in_spreads``, the largest
of K standard normal gaps over the K scales with family-wise probability 1 %
(:func:`~freqdyn.analysis.stats.family_limit`); the same for the infinite-width prediction
and the frozen-frequency kernel (``max_infinite_gap_in_spreads``,
``max_frozen_gap_in_spreads``), which a width-m network need not follow.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import tomli_w

from freqdyn.analysis.data_design import design_scale, network_agreement, rho_at_scale
from freqdyn.analysis.stats import family_limit
from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.inputs.case import case_from_dict, load_case
from freqdyn.nets.train import require_networks_fit, train
from freqdyn.results import read_dataset
from freqdyn.runs.runner import Outcome

SETTINGS = {"case", "time", "scales", "width", "train", "spread_draws"}  # as kind_keys.py
#: Draws of θ₀ for the width-m prediction, by default.
SPREAD_DRAWS = 8


def _case_at_scale(case, scale: float, time: float, width: int, seed: int, train_table):
    """The case file's text with ρ_w's scale, the times [0, T] and the [train] table set:
    the case each network trains on (its text is stored in measured.nc)."""
    table = tomllib.loads(case.text)
    table["network"]["rho_w"] = rho_at_scale(case, scale)
    table["frequency"]["times"] = [0.0, float(time)]
    table["train"] = {**table.get("train", {}), **train_table, "width": width, "seed": seed}
    return case_from_dict(table, text=tomli_w.dumps(table), path=case.path)


def _settings(exp):
    s = Table(dict(exp.settings), "settings", SETTINGS)
    folder = exp.path.parent if exp.path is not None else Path.cwd()
    case = load_case(folder / s.string("case"))
    if not case.is_data:
        raise InputError("settings.case", "must be a data case ([target] data)")
    time = s.number("time", low=0.0, low_open=True)
    scales = np.asarray(s.numbers("scales", low=0.0))  # the grid: checked by design_scale
    return (case, time, scales, s.integer("width", low=2), dict(s.get("train", {})),
            s.integer("spread_draws", SPREAD_DRAWS, low=2))


def train_over_scales(case, time, scales, width, seeds, train_table, out: Path) -> np.ndarray:
    """Test MSE at T of a network of width m per scale and seed, shape (scales, seeds),
    trained in ``out/runs/scaleII-seedS`` (a finished run is read back, an interrupted
    one resumes)."""
    mse = np.empty((scales.size, len(seeds)))
    untrained = [sum(not (out / "runs" / f"scale{i:02d}-seed{seed}" / "measured.nc").is_file()
                     for seed in seeds) for i in range(scales.size)]
    jobs = [(_case_at_scale(case, scale, time, width, seeds[0], train_table), None, count)
            for scale, count in zip(scales, untrained, strict=True) if count]
    require_networks_fit(jobs, f"training {sum(untrained)} networks over {scales.size} scales")
    for i, scale in enumerate(scales):
        for j, seed in enumerate(seeds):
            run = out / "runs" / f"scale{i:02d}-seed{seed}"
            if not (run / "measured.nc").is_file():
                train(_case_at_scale(case, scale, time, width, seed, train_table), run)
            mse[i, j] = float(read_dataset(run / "measured.nc")["test_mse"].values[-1])
    return mse


def gap_in_spreads(net_mean, at_width, seeds: int, prediction=None) -> float:
    """max over scales of |networks' seed mean − prediction| / (σ_m √(1/seeds + 1/draws)),
    σ_m the predicted spread of one width-m network; ``prediction`` defaults to the
    width-m mean (the standard error then also carries the draws' own)."""
    draws_part = 1 / at_width.draws if prediction is None else 0.0
    prediction = at_width.test_mse if prediction is None else prediction
    error = at_width.test_mse_std * np.sqrt(1 / seeds + draws_part)
    return float(np.max(np.abs(net_mean - prediction) / error))


def run_data_scale(exp, out, device: str):  # noqa: ARG001 (the trainer picks the device)
    """Experiment kind ``data-scale`` (module text)."""
    out = Path(out)
    case, time, scales, width, train_table, draws = _settings(exp)
    right = design_scale(case, time, scales, scales_field="settings.scales")
    frozen = design_scale(case, time, scales, train_w=False)
    at_width = design_scale(case, time, scales, width=width, draws=draws)
    mse = train_over_scales(case, time, scales, width, exp.seeds, train_table, out)
    agree = network_agreement(right, mse)
    net_mean = agree["test_mse_mean"]
    summary = {
        "time": time, "width": width, "scale_key": right.key, "scales": scales,
        "predicted_best_scale": right.scale, "networks_best_scale": agree["networks_best_scale"],
        "frozen_best_scale": frozen.scale,
        "grid_steps_apart": agree["grid_steps_apart"],
        "excess_at_predicted": agree["excess_at_predicted"],
        "predicted_test_mse": right.test_mse, "frozen_test_mse": frozen.test_mse,
        "measured_test_mse_mean": agree["test_mse_mean"],
        "measured_test_mse_std": agree["test_mse_std"],
        "max_rel_diff_pred_vs_net": agree["max_rel_diff_pred_vs_net"],
        "max_rel_diff_frozen_vs_net": network_agreement(frozen, mse)["max_rel_diff_pred_vs_net"],
        "predicted_best_at_grid_end": right.at_grid_end,
        "spread_draws": draws, "width_test_mse_mean": at_width.test_mse,
        "width_test_mse_std": at_width.test_mse_std, "width_best_scale": at_width.scale,
        "max_rel_diff_width_vs_net": float(np.max(np.abs(at_width.test_mse / net_mean - 1))),
        "max_net_gap_in_spreads": gap_in_spreads(net_mean, at_width, len(exp.seeds)),
        "max_infinite_gap_in_spreads": gap_in_spreads(net_mean, at_width, len(exp.seeds),
                                                      right.test_mse),
        "max_frozen_gap_in_spreads": gap_in_spreads(net_mean, at_width, len(exp.seeds),
                                                    frozen.test_mse),
        "gap_limit_in_spreads": family_limit(scales.size),
    }
    figure_data = {"scales": scales, "predicted": right.test_mse, "frozen": frozen.test_mse,
                   "measured": mse, "key": right.key, "width": width,
                   "width_mean": at_width.test_mse, "width_std": at_width.test_mse_std,
                   "title": f"{case.name}: test MSE at t = {time:g}, m = {width}"}
    return Outcome(dataset=None, summary=summary, figure_set="data-scale",
                   figure_data=figure_data)
