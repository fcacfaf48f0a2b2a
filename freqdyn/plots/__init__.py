"""Figures.  Every function returns a matplotlib Figure; :func:`save_figure` writes one.

The figures read only schema datasets and reports, so predicted and measured dynamics are
drawn by the same code:

* :mod:`.dynamics` — log10|û(ξ, t)| and the per-peak decay of one result;
* :mod:`.study` — a study's heatmaps (predicted | measured | difference), peak decays with
  network markers, loss with its Parseval prediction, error against width;
* :mod:`.training` — a training run's loss, drift and measured û;
* :mod:`.data` — a data case's train and test error, and its error left per |ξ| band;
* :mod:`.design` — wanted against achieved learning times and the designed ρ_w.

No module here selects a matplotlib backend; the command line uses Agg.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from freqdyn.plots.dynamics import dynamics_figure
from freqdyn.results import atomic_write

DPI = 130


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` atomically (PNG by suffix) and close it."""

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=DPI, bbox_inches="tight"))
    finally:
        plt.close(fig)


__all__ = ["dynamics_figure", "save_figure"]
