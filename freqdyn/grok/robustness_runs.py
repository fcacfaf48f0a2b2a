"""Robustness runs (kinds ``robustness-perturbation`` and ``abelian``): standard,
perturbed and penalised training, and their measures over training."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from freqdyn.analysis.stats import mean_std
from freqdyn.errors import InputError
from freqdyn.grok.algorithmic import ModularRun, evaluate_split, runs_dataset, train_modular
from freqdyn.grok.landscape import (
    HessianExtremes,
    flat_parameters,
    hessian_extremes,
    trainable_parameters,
    trajectory_pca,
)
from freqdyn.grok.robustness import (
    NOISE_TARGETS,
    abelian_penalty,
    abelian_tests,
    noise_in_embedding_space,
    perturbation_error,
    perturbation_sigma,
    perturbed_information,
)
from freqdyn.runs.runner import Outcome

MODES = ("standard", "perturbed", "penalty", "paper")
#: The modes of the abelian study.
ABELIAN_MODES = ("standard", "perturbed", "penalty")
#: Tan & Huang's noise: (λ1, λ2) = (0.5, 0.4) on the token embeddings.
PAPER_NOISE = ((0.5, 0.4), "embedding")
#: Offsets of the noise and metric generators from the experiment seed (the seed itself
#: drives the split, the initialisation and the batches in ``train_modular``).
NOISE_SEED_OFFSET = 1_000
METRIC_SEED_OFFSET = 2_000
INFORMATION_KEYS = ("entropy", "pe", "pmi", "ed", "mid", "perturbation_error")
ABELIAN_KEYS = ("abelian_acc", "abelian_acc_symmetric", "logit_distance")
LONG_NAMES = {
    "entropy": "matrix entropy H_1(R) of clean features, batch mean (nats)",
    "pe": "perturbed entropy PE = H_1(R~) (nats; freqdyn's form)",
    "pmi": "perturbed mutual information PMI = I_1(R; R~) (nats; freqdyn's form)",
    "ed": "candidate ED = |H_1(R~) - H_1(R)| (nats; freqdyn's form)",
    "mid": "candidate MID = I_1(R; R) - I_1(R; R~) (nats; freqdyn's form)",
    "perturbation_error": "E ||f(x + Delta) - f(x)||^2 of the logits on the training set",
    "sharpness": "lambda_max of the training-loss Hessian (Lanczos)",
    "abelian_acc": "fraction of training pairs with argmax z(a,b) = argmax z(b,a)",
    "abelian_acc_symmetric": "abelian_acc over training pairs whose swap is also in training",
    "logit_distance": "batch mean of ||z(a,b) - z(b,a)||^2 over training pairs (logit^2)",
}


@dataclass
class RobustRun:
    """One modular run of a mode, with the measurements the robustness view adds."""

    mode: str
    run: ModularRun
    snapshot_steps: list[int]
    snapshots: list[np.ndarray]
    landscape: dict[str, float]


def _robust_settings(exp) -> dict:
    """The robustness settings of ``exp``, checked (keys and defaults in the docs page)."""
    lambdas = exp.get("noise_lambda", [0.5, 0.4])
    if len(lambdas) != 2 or not all(isinstance(v, int | float) and v >= 0 for v in lambdas):
        raise InputError("settings.noise_lambda", f"must be [lambda1, lambda2] >= 0, got {lambdas}")
    noise_on = exp.get("noise_on", "embedding")
    if noise_on not in NOISE_TARGETS:
        raise InputError("settings.noise_on",
                         f"unknown target {noise_on!r}; choose {NOISE_TARGETS}")
    eval_every = exp.number("eval_every", 10, low=1, integer=True)
    measured = {}
    for key, default in (("info_every", 10 * eval_every), ("snapshot_every", 10 * eval_every),
                         ("sharpness_every", 0)):
        value = exp.number(key, default, low=0, integer=True)
        if value % eval_every:
            raise InputError(f"settings.{key}", f"must be a multiple of eval_every = {eval_every}")
        measured[key] = value
    paper = exp.get("paper_noise_lambda", list(PAPER_NOISE[0]))
    if len(paper) != 2 or not all(isinstance(v, int | float) and v >= 0 for v in paper):
        raise InputError("settings.paper_noise_lambda",
                         f"must be [lambda1, lambda2] >= 0, got {paper}")
    return {"lambdas": (float(lambdas[0]), float(lambdas[1])), "noise_on": noise_on,
            "paper_lambdas": (float(paper[0]), float(paper[1])),
            "metric_sigma": exp.number("metric_sigma", 0.4, low=0),
            "renyi_alpha": exp.number("renyi_alpha", 1.0, low=1e-9),
            "info_batch_size": exp.number("info_batch_size", 512, low=2, integer=True),
            "info_batches": exp.number("info_batches", 2, low=1, integer=True),
            "penalty": exp.number("penalty_coefficient", 100.0, low=0),
            "penalty_reduction": exp.get("penalty_reduction", "mean"),
            "hessian_tol": exp.number("hessian_tol", 1e-3, low=0),
            **measured}


def _training_loss(model, pairs, labels):
    return lambda: torch.nn.functional.cross_entropy(model(pairs), labels)


def _hessian(model, pairs, labels, tol: float, smallest: bool = True) -> HessianExtremes:
    with torch.enable_grad():
        return hessian_extremes(_training_loss(model, pairs, labels),
                                trainable_parameters(model), tol=tol, smallest=smallest)


def train_robust(cfg: dict, settings: dict, seed: int, device: str, mode: str, *,
                 information: bool, landscape: bool, label: str = "") -> RobustRun:
    """Train ``cfg``'s modular model in ``mode`` and measure it along the way.

    ``mode``: ``"standard"``; ``"perturbed"`` (Gaussian noise with the σ schedule on the
    training embeddings or one-hot inputs); ``"paper"`` (the same with the paper's noise,
    :data:`PAPER_NOISE`); ``"penalty"`` (the abelian penalty added).
    Every evaluation records the abelian tests on the training pairs; every
    ``info_every`` updates (with ``information``) PE, PMI, ED, MID and the perturbation
    error at σ = ``metric_sigma``; every ``snapshot_every`` updates a parameter snapshot.
    With ``landscape``: the sharpness λ_max every ``sharpness_every`` updates (0: never)
    and λ_max, λ_min at memorisation (first train accuracy = 1) and at the end.
    """
    if mode not in MODES:
        raise InputError("mode", f"unknown mode {mode!r}; choose {MODES}")
    if mode == "paper":     # the paper's noise in place of ours, otherwise as "perturbed"
        settings = {**settings, "lambdas": settings["paper_lambdas"],
                    "noise_on": PAPER_NOISE[1]}
    noise_generator = torch.Generator().manual_seed(seed + NOISE_SEED_OFFSET)
    metric_generator = torch.Generator().manual_seed(seed + METRIC_SEED_OFFSET)
    lambda1, lambda2 = settings["lambdas"]
    # The hook needs the model (for one-hot noise, W_E); train_modular builds it and
    # evaluates at step 0 before the first update, which is where it is picked up.
    current: dict = {}
    snapshot_steps: list[int] = []
    snapshots: list[np.ndarray] = []
    found: dict[str, float] = {}

    def add_noise(emb, step, state):
        sigma = perturbation_sigma(state["train_acc"], lambda1, lambda2)
        return emb + noise_in_embedding_space(current["model"], emb, sigma,
                                              settings["noise_on"], noise_generator)

    def penalty(model, pairs, labels, step):
        return abelian_penalty(model, pairs, settings["penalty"], settings["penalty_reduction"])

    def measure(model, data, step):
        current["model"] = model
        pairs, labels = data.pairs_train.to(device), data.labels_train.to(device)
        values = abelian_tests(model, pairs)
        if information:
            due = step % settings["info_every"] == 0
            values.update({key: math.nan for key in INFORMATION_KEYS})
            if due:
                values.update(perturbed_information(
                    model, pairs, settings["metric_sigma"], batch_size=settings["info_batch_size"],
                    alpha=settings["renyi_alpha"], target=settings["noise_on"],
                    max_batches=settings["info_batches"], generator=metric_generator))
                values["perturbation_error"] = perturbation_error(
                    model, pairs, settings["metric_sigma"], target=settings["noise_on"],
                    generator=metric_generator)
        if landscape:
            every = settings["sharpness_every"]
            values["sharpness"] = math.nan
            if every and step % every == 0:
                values["sharpness"] = _hessian(model, pairs, labels, 1e-2,
                                               smallest=False).lambda_max
            if "memorised_step" not in found and evaluate_split(model, pairs, labels)[1] >= 1.0:
                extremes = _hessian(model, pairs, labels, settings["hessian_tol"])
                found.update(memorised_step=step, lambda_max_memorised=extremes.lambda_max,
                             lambda_min_memorised=extremes.lambda_min)
        if settings["snapshot_every"] and step % settings["snapshot_every"] == 0:
            snapshot_steps.append(step)
            snapshots.append(flat_parameters(model).astype(np.float32))
        return values

    run = train_modular(cfg, seed, device,
                        embedding_hook=add_noise if mode in ("perturbed", "paper") else None,
                        extra_loss=penalty if mode == "penalty" else None,
                        evaluate_extra=measure, progress=False, label=label)
    if landscape:
        pairs, labels = run.data.pairs_train.to(device), run.data.labels_train.to(device)
        extremes = _hessian(run.model, pairs, labels, settings["hessian_tol"])
        found.update(final_step=int(run.log.eval_steps[-1]), lambda_max_final=extremes.lambda_max,
                     lambda_min_final=extremes.lambda_min)
    if settings["snapshot_every"] and snapshot_steps[-1] != run.log.eval_steps[-1]:
        snapshot_steps.append(int(run.log.eval_steps[-1]))
        snapshots.append(flat_parameters(run.model).astype(np.float32))
    return RobustRun(mode=mode, run=run, snapshot_steps=snapshot_steps, snapshots=snapshots,
                     landscape=found)


def steps_to(run: ModularRun, threshold: float, key: str = "val_acc") -> int | None:
    """First evaluated step with ``key`` ≥ ``threshold``; ``None`` if never."""
    hits = np.flatnonzero(run.log.evals(key) >= threshold)
    return int(run.log.eval_steps[hits[0]]) if len(hits) else None


def steepest_change_step(run: ModularRun, key: str, after: int | None = None) -> int | None:
    """The step ending the interval of largest |Δkey/Δt| between finite evaluations, among
    the evaluations at steps ≥ ``after`` (all if ``None``); ``None`` if ``key`` never
    changes there."""
    values = run.log.evals(key)
    steps = np.asarray(run.log.eval_steps, dtype=float)
    finite = np.isfinite(values) & (steps >= (after or 0))
    if finite.sum() < 2:
        return None
    rate = np.abs(np.diff(values[finite]) / np.diff(steps[finite]))
    if not rate.max() > 0:
        return None
    return int(steps[finite][1:][np.argmax(rate)])


def _ratio(numerator, denominator) -> float:
    if numerator is None or denominator is None or denominator == 0:
        return math.nan
    return numerator / denominator


def _mode_dataset(runs: list[RobustRun], extra: tuple[str, ...]) -> xr.Dataset:
    dataset = runs_dataset([r.run for r in runs], extra_evals=extra)
    for key in extra:
        dataset[key].attrs["long_name"] = LONG_NAMES[key]
    return dataset


def _modes_dataset(by_mode: dict[str, list[RobustRun]], extra: dict[str, tuple]) -> xr.Dataset:
    """One dataset with a ``mode`` dimension (shorter runs padded with NaN)."""
    parts = [_mode_dataset(runs, extra[mode]) for mode, runs in by_mode.items()]
    return xr.concat(parts, dim=xr.DataArray(list(by_mode), dims="mode", name="mode"),
                     join="outer", data_vars="all", coords="different", compat="equals")


def _trajectory_pcas(runs: list[RobustRun]) -> list:
    """The PCA of each run's weight trajectory (None below three snapshots)."""
    return [trajectory_pca(np.asarray(r.snapshots, dtype=np.float64))
            if len(r.snapshots) >= 3 else None for r in runs]


def _speedups(summary: dict, mode: str, prefix: str) -> dict:
    """Speed-ups (standard steps / ``mode`` steps) to 95 % and 99 % validation accuracy and
    whether ``mode`` got there first; a run that never got there has no speed-up (NaN)."""
    out = {}
    for threshold in (95, 99):
        standard = summary[f"standard_steps_to_{threshold}"]
        perturbed = summary[f"{mode}_steps_to_{threshold}"]
        speedup = [_ratio(s, p) for s, p in zip(standard, perturbed, strict=True)]
        out[f"{prefix}speedup_{threshold}"] = speedup
        out[f"{prefix}speedup_{threshold}_mean"], out[f"{prefix}speedup_{threshold}_std"] = \
            (float(v) for v in mean_std(speedup))
        out[f"{mode}_faster_{threshold}"] = [
            p is not None and (s is None or p < s)
            for s, p in zip(standard, perturbed, strict=True)]
    return out


def run_perturbation(exp, out: Path, device: str):
    """Experiment kind "robustness-perturbation": standard vs perturbed training per seed.

    Summary: steps to 95 % / 99 % validation accuracy per mode and seed, speed-up factors
    (standard steps / perturbed steps) with mean and spread, whether the perturbed run is
    faster in every seed; weight-norm peak vs the validation jump (steepest rise of the
    validation accuracy); the steps after memorisation (t2) where PE and PMI change most
    steeply, and their lag to the jump; landscape numbers of the standard runs (λ_max, λ_min at
    memorisation and at the end, the trajectory PCA's top-2 variance share).
    """

    cfg = dict(exp.settings)
    settings = _robust_settings(exp)
    ours = (settings["lambdas"], settings["noise_on"]) != (settings["paper_lambdas"],
                                                           PAPER_NOISE[1])
    modes = ("standard", "perturbed", "paper") if ours else ("standard", "perturbed")
    by_mode = {mode: [train_robust(cfg, settings, seed, device, mode, information=True,
                                   landscape=(mode == "standard"),
                                   label=f"{exp.name} {mode} seed {seed}")
                      for seed in exp.seeds]
               for mode in modes}
    summary: dict = {"seeds": list(exp.seeds), "noise_lambda": list(settings["lambdas"]),
                     "noise_on": settings["noise_on"], "metric_sigma": settings["metric_sigma"],
                     "noise_setting": "ours (tuned; the paper's runs beside it as 'paper')"
                     if ours else "the paper's",
                     "paper_noise_lambda": list(settings["paper_lambdas"]),
                     "paper_noise_on": PAPER_NOISE[1]}
    for mode, runs in by_mode.items():
        summary[f"{mode}_t2"] = [r.run.phase_times["t2"] for r in runs]
        for threshold in (95, 99):
            summary[f"{mode}_steps_to_{threshold}"] = [steps_to(r.run, threshold / 100)
                                                       for r in runs]
        summary[f"{mode}_final_val_acc"] = [r.run.final["val_acc"] for r in runs]
        summary[f"{mode}_seconds"] = [round(r.run.seconds, 2) for r in runs]
        jump = [steepest_change_step(r.run, "val_acc") for r in runs]
        norm_peak = [int(np.argmax(r.run.log.every("param_norm"))) for r in runs]
        summary[f"{mode}_val_jump_step"] = jump
        summary[f"{mode}_norm_peak_step"] = norm_peak
        summary[f"{mode}_norm_peaks_before_jump"] = [
            j is not None and n < j for n, j in zip(norm_peak, jump, strict=True)]
        for key in ("pe", "pmi"):
            steep = [steepest_change_step(r.run, key, after=r.run.phase_times["t2"])
                     for r in runs]
            summary[f"{mode}_{key}_steepest_step"] = steep
            summary[f"{mode}_{key}_lag_to_jump"] = [
                None if s is None or j is None else s - j for s, j in zip(steep, jump, strict=True)]
    for mode, prefix in (("perturbed", ""), ("paper", "paper_")):
        if mode in by_mode:
            summary.update(_speedups(summary, mode, prefix))
    summary["n_perturbed_faster_95"] = int(sum(summary["perturbed_faster_95"]))
    standard_runs = by_mode["standard"]
    for key in ("lambda_max_memorised", "lambda_min_memorised", "lambda_max_final",
                "lambda_min_final", "memorised_step", "final_step"):
        summary[f"standard_{key}"] = [r.landscape.get(key, math.nan) for r in standard_runs]
    summary["standard_sharpness_drop"] = [
        _ratio(r.landscape.get("lambda_max_memorised"), r.landscape.get("lambda_max_final"))
        for r in standard_runs]
    pcas = {mode: _trajectory_pcas(runs) for mode, runs in by_mode.items()}
    for mode, mode_pcas in pcas.items():
        summary[f"{mode}_pca_top2_share"] = [math.nan if p is None else p.top2_share
                                             for p in mode_pcas]
    extra = {"standard": (*ABELIAN_KEYS, *INFORMATION_KEYS, "sharpness"),
             "perturbed": (*ABELIAN_KEYS, *INFORMATION_KEYS),
             "paper": (*ABELIAN_KEYS, *INFORMATION_KEYS)}
    dataset = _modes_dataset(by_mode, {mode: extra[mode] for mode in by_mode})
    jumps = {mode: summary[f"{mode}_val_jump_step"] for mode in by_mode}
    return Outcome(dataset=dataset, summary=summary, figure_set="grok.robustness",
                   figure_data={"by_mode": by_mode, "name": exp.name, "jumps": jumps,
                                "standard_pcas": pcas["standard"]})


def run_abelian(exp, out: Path, device: str):
    """Experiment kind "abelian": the abelian tests over training, standard vs perturbed vs
    penalty, per seed.

    Summary per mode and seed: t2 (memorisation), steps to 95 % / 99 % validation accuracy,
    the abelian accuracy at memorisation, the first step with abelian accuracy ≥
    ``abelian_threshold`` (0.99), and the paper's three statements checked one by one:
    standard training's abelian accuracy stays low until grokking (below the threshold at
    t2 and reaching it no earlier than the validation jump), perturbed training's reaches
    it before the validation jump, and the penalty reaches 95 % validation accuracy
    before perturbed training.
    """

    cfg = dict(exp.settings)
    settings = _robust_settings(exp)
    threshold = exp.number("abelian_threshold", 0.99, low=0, high=1)
    by_mode = {mode: [train_robust(cfg, settings, seed, device, mode, information=False,
                                   landscape=False, label=f"{exp.name} {mode} seed {seed}")
                      for seed in exp.seeds]
               for mode in ABELIAN_MODES}
    summary: dict = {"seeds": list(exp.seeds), "noise_lambda": list(settings["lambdas"]),
                     "noise_on": settings["noise_on"],
                     "penalty_coefficient": settings["penalty"], "abelian_threshold": threshold}
    for mode, runs in by_mode.items():
        t2 = [r.run.phase_times["t2"] for r in runs]
        summary[f"{mode}_t2"] = t2
        for level in (95, 99):
            summary[f"{mode}_steps_to_{level}"] = [steps_to(r.run, level / 100) for r in runs]
        summary[f"{mode}_val_jump_step"] = [steepest_change_step(r.run, "val_acc") for r in runs]
        summary[f"{mode}_abelian_at_t2"] = [
            None if t is None else float(r.run.log.evals("abelian_acc")[
                r.run.log.eval_steps.index(t)]) for r, t in zip(runs, t2, strict=True)]
        summary[f"{mode}_abelian_step"] = [steps_to(r.run, threshold, "abelian_acc")
                                           for r in runs]
        summary[f"{mode}_final_abelian_acc"] = [r.run.log.last("abelian_acc") for r in runs]
        summary[f"{mode}_final_logit_distance"] = [r.run.log.last("logit_distance")
                                                   for r in runs]
        summary[f"{mode}_max_logit_distance"] = [float(np.max(r.run.log.evals("logit_distance")))
                                                 for r in runs]
        summary[f"{mode}_final_val_acc"] = [r.run.final["val_acc"] for r in runs]
    summary["standard_low_until_grokking"] = [
        a is not None and a < threshold and s is not None and j is not None and s >= j
        for a, s, j in zip(summary["standard_abelian_at_t2"], summary["standard_abelian_step"],
                           summary["standard_val_jump_step"], strict=True)]
    summary["perturbed_abelian_before_grokking"] = [
        s is not None and j is not None and s < j
        for s, j in zip(summary["perturbed_abelian_step"], summary["perturbed_val_jump_step"],
                        strict=True)]
    summary["perturbed_abelian_steps_after_t2"] = [
        None if s is None or t is None else s - t
        for s, t in zip(summary["perturbed_abelian_step"], summary["perturbed_t2"], strict=True)]
    summary["penalty_faster_than_perturbed"] = [
        p is not None and (q is None or p < q)
        for p, q in zip(summary["penalty_steps_to_95"], summary["perturbed_steps_to_95"],
                        strict=True)]
    summary["penalty_faster_than_standard"] = [
        p is not None and (q is None or p < q)
        for p, q in zip(summary["penalty_steps_to_95"], summary["standard_steps_to_95"],
                        strict=True)]
    statements = {"standard_low_until_grokking": "standard: abelian accuracy low until grokking",
                  "perturbed_abelian_before_grokking":
                      "perturbed: abelian accuracy reaches the threshold before grokking",
                  "penalty_faster_than_perturbed": "penalty: faster than perturbed training"}
    summary["holds"] = [text for key, text in statements.items() if all(summary[key])]
    summary["does_not_hold"] = [text for key, text in statements.items() if not all(summary[key])]
    dataset = _modes_dataset(by_mode, {mode: ABELIAN_KEYS for mode in ABELIAN_MODES})
    return Outcome(dataset=dataset, summary=summary, figure_set="grok.abelian",
                   figure_data={"by_mode": by_mode, "threshold": threshold})


# --------------------------------------------------------------------------------------
# Figures (paper style: log-step axes, one colour per mode, seeds as thin lines)
# --------------------------------------------------------------------------------------
