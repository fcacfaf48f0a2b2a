"""``freqdyn train`` as a command: train the case's network, then draw its figure.

The training itself is :func:`freqdyn.nets.train.train` (the one training loop); this
module adds ``training.png`` (:func:`freqdyn.plots.training.training_figure`), so that the
compute layers never import figures.
"""

from __future__ import annotations

from dataclasses import replace

from freqdyn.nets.train import TrainResult, train
from freqdyn.plots import save_figure
from freqdyn.plots.training import training_figure


def train_to(case, out, *, figure: bool = True, **options) -> TrainResult | None:
    """Train ``case`` into ``out`` (options of :func:`~freqdyn.nets.train.train`); with
    ``figure``, also write ``out/training.png`` from the measured dataset."""
    result = train(case, out, **options)
    if result is None or not figure:
        return result
    return replace(result, figure=save_figure(training_figure(result.dataset),
                                              result.measured.parent / "training.png"))
