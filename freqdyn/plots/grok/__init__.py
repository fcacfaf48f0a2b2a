"""Figures of the grokking studies, one module per study module of freqdyn.grok.

Importing this package declares their figure sets (:mod:`freqdyn.plots.registry`); the
experiment runner draws the set a kind names, from the data the kind returned.
"""

from freqdyn.plots.grok import (  # noqa: F401  (each declares its figure sets)
    algorithmic,
    frequency_view,
    lazy_rich,
    loss_spectrum,
    progress,
    robustness,
)
