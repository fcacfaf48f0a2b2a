"""The registry of experiment kinds: what code runs a file, and which settings it reads.

Each kind is a function ``run(exp, out, device) -> Outcome`` (imported only when its kind
runs).  A kind may declare the settings keys it reads (a misspelt key is then refused when
the file is read) and the report keys it produces (a claim rule naming anything else is
refused before training).  The test suite checks both declarations against the code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from freqdyn.errors import InputError


@dataclass(frozen=True)
class Kind:
    """One experiment kind."""

    name: str
    target: str  # "module:function"
    description: str
    settings_keys: frozenset | None = None  # None: not declared (no key check)
    report_keys: frozenset | None = None  # None: not declared (rule names checked after)

    def function(self):
        return self.target_function()

    def target_function(self):
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


KINDS: dict[str, Kind] = {}


def register_kind(name: str, target: str, description: str, settings_keys=None,
                  report_keys=None) -> None:
    if name in KINDS:
        raise ValueError(f"experiment kind {name!r} is registered twice")
    KINDS[name] = Kind(name, target, description,
                       None if settings_keys is None else frozenset(settings_keys),
                       None if report_keys is None else frozenset(report_keys))


def kind_entry(kind: str) -> Kind:
    if kind not in KINDS:
        raise InputError("experiment.kind", f"unknown kind {kind!r}; known: "
                                            f"{', '.join(sorted(KINDS))}")
    return KINDS[kind]


# Theory next to trained networks (freqdyn.runs.study)
register_kind("study", "freqdyn.runs.study:run_study_kind",
              "predictions next to trained networks on one case (or several arms)",
              settings_keys={"case", "predictions", "pde", "tolerance", "widths", "times",
                             "train", "spread_draws"})
# The settings each grokking kind reads: a key outside its set is refused when the file
# is read, before anything trains (a misspelled key would otherwise be ignored).
_MODULAR_TRAIN = {  # freqdyn.grok.algorithmic.train_modular and models.build_model
    "p", "operation", "train_fraction", "dedupe_symmetric", "batch_size", "lr",
    "weight_decay", "betas", "warmup", "clip", "power_law", "stop_margin", "steps",
    "eval_every", "after_t4", "model", "init_scale", "activation", "d_model", "n_heads",
    "d_head", "d_mlp", "n_layers", "width", "depth"}
_ROBUST = {  # freqdyn.grok.robustness_runs._robust_settings
    "noise_lambda", "noise_on", "metric_sigma", "hessian_tol", "info_batch_size",
    "info_batches", "info_every", "renyi_alpha", "sharpness_every", "snapshot_every",
    "penalty_coefficient", "penalty_reduction"}
_COMMITTEE = {  # freqdyn.grok.lazy_rich._committee_settings
    "dim", "n_train", "n_test", "width", "eta0", "steps", "log_every", "threshold",
    "target_scale", "centered", "relative_threshold"}
_LOSS_SPECTRUM = {  # freqdyn.grok.loss_spectrum_grid._grid_settings
    "train_fractions", "learning_rates", "weight_decays", "t0", "bands", "detrend",
    "detrend_window", "detrend_polyorder", "highpass_cutoff", "groks_at", "n_boot",
    "min_abs_rho"}

# Grokking I: frequency view (Zhou, Zhang, Xu) and lazy to rich (Kumar et al.)
register_kind("aliasing", "freqdyn.grok.frequency_view:run_aliasing",
              "sin 6x learned from aliased samples",
              settings_keys={"steps", "eval_every", "n_sparse", "n_dense", "n_test", "k_max",
                             "width", "depth", "init_scale", "lr", "rise_tolerance", "extras",
                             "activation", "snapshot_steps"})
register_kind("parity", "freqdyn.grok.frequency_parity:run_parity", "parity on the hypercube",
              settings_keys={"steps", "eval_every", "bits", "fractions", "width", "lr",
                             "init_scale", "low_band", "rise_tolerance", "fall_level", "k_top",
                             "n_k", "direction", "focus_fraction"})
register_kind("image", "freqdyn.grok.frequency_images:run_image", "MNIST / digits, large init",
              settings_keys={"steps", "eval_every", "dataset", "mnist_dir", "n_train",
                             "width", "depth", "batch_size", "k_top", "n_k", "low_band",
                             "snapshot_steps", "train_acc_level",
                             *(f"{arm}_{key}" for arm in ("large", "default")
                               for key in ("alpha", "optimizer", "lr", "weight_decay"))})
register_kind("lazy-rich-toy", "freqdyn.grok.lazy_rich:run_toy", "committee machine, Fig. 1",
              settings_keys=_COMMITTEE | {"alpha", "eps", "plateau_tolerance"})
register_kind("lazy-rich-alpha-sweep", "freqdyn.grok.lazy_rich:run_alpha_sweep",
              "grokking amount against the output scale α",
              settings_keys=_COMMITTEE | {"alphas", "eps", "lazy_alpha"})
register_kind("lazy-rich-phase", "freqdyn.grok.lazy_rich:run_phase_diagram",
              "(α, ε) phase diagram", settings_keys=_COMMITTEE | {"alphas", "epsilons"})
register_kind("modular-mlp-lazy-rich", "freqdyn.grok.lazy_rich_modular:run_modular_mlp",
              "mean-field quadratic MLP on modular addition",
              settings_keys={"p", "train_fraction", "width", "scale", "lr", "steps",
                             "eval_every"})
# Grokking II: algorithmic data, loss-curve spectra, robustness
register_kind("modular", "freqdyn.grok.algorithmic:run_modular",
              "operation tables: phase times t1-t4, delays", settings_keys=_MODULAR_TRAIN)
register_kind("progress-measures", "freqdyn.grok.progress:run_progress_measures",
              "Nanda et al.'s progress measures",
              settings_keys=_MODULAR_TRAIN | {"measure_every", "key_factor",
                                              "neuron_threshold"})
register_kind("loss-spectrum-grid", "freqdyn.grok.loss_spectrum_grid:run_grid",
              "loss-curve spectra over a (r, lr, wd, seed) grid",
              settings_keys=_MODULAR_TRAIN | _LOSS_SPECTRUM)
register_kind("robustness-perturbation", "freqdyn.grok.robustness_runs:run_perturbation",
              "input perturbations and grokking speed", settings_keys=_MODULAR_TRAIN | _ROBUST)
register_kind("abelian", "freqdyn.grok.robustness_runs:run_abelian", "abelian tests and penalty",
              settings_keys=_MODULAR_TRAIN | _ROBUST | {"abelian_threshold"})
