"""The registry of experiment kinds: what code runs a file, and which settings it reads.

Each kind is a function ``run(exp, out, device) -> Outcome`` (imported only when its kind
runs).  A kind may declare the settings keys it reads (a misspelt key is then refused when
the file is read) and the report keys it produces (a claim rule naming anything else is
refused before training): :mod:`freqdyn.runs.kind_keys`.  The test suite checks both
declarations against the code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from freqdyn.errors import InputError
from freqdyn.runs.kind_keys import REPORTS, SETTINGS


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


_KINDS = (
    # Theory next to trained networks (freqdyn.runs.study)
    ("study", "freqdyn.runs.study:run_study_kind",
     "predictions next to trained networks on one case (or several arms)"),
    ("data-scale", "freqdyn.runs.data_scale:run_data_scale",
     "the predicted best rho_w scale of a data case, confirmed by trained networks"),
    # Grokking I: frequency view (Zhou, Zhang, Xu) and lazy to rich (Kumar et al.)
    ("aliasing", "freqdyn.grok.frequency_view:run_aliasing", "sin 6x learned from aliased samples"),
    ("parity", "freqdyn.grok.frequency_parity:run_parity", "parity on the hypercube"),
    ("image", "freqdyn.grok.frequency_images:run_image", "MNIST / digits, large init"),
    ("lazy-rich-toy", "freqdyn.grok.lazy_rich:run_toy", "committee machine, Fig. 1"),
    ("lazy-rich-alpha-sweep", "freqdyn.grok.lazy_rich:run_alpha_sweep",
     "grokking amount against the output scale α"),
    ("lazy-rich-phase", "freqdyn.grok.lazy_rich:run_phase_diagram", "(α, ε) phase diagram"),
    ("modular-mlp-lazy-rich", "freqdyn.grok.lazy_rich_modular:run_modular_mlp",
     "mean-field quadratic MLP on modular addition"),
    # Grokking II: algorithmic data, loss-curve spectra, robustness
    ("modular", "freqdyn.grok.algorithmic:run_modular",
     "operation tables: phase times t1-t4, delays"),
    ("progress-measures", "freqdyn.grok.progress:run_progress_measures",
     "Nanda et al.'s progress measures"),
    ("loss-spectrum-grid", "freqdyn.grok.loss_spectrum_grid:run_grid",
     "loss-curve spectra over a (r, lr, wd, seed) grid"),
    ("robustness-perturbation", "freqdyn.grok.robustness_runs:run_perturbation",
     "input perturbations and grokking speed"),
    ("abelian", "freqdyn.grok.robustness_runs:run_abelian", "abelian tests and penalty"),
)
for _name, _target, _description in _KINDS:
    register_kind(_name, _target, _description, settings_keys=SETTINGS[_name],
                  report_keys=REPORTS.get(_name))
