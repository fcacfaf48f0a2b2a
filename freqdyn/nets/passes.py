"""How the trainer evaluates its network: the transform pass or the dense one.

:class:`NetworkPass` gives the trainer the loss and its gradient (full batch or a
minibatch), f at the training samples, λ_max of the NTK Gram (α/N)JJᵀ and the empirical
NTK on probe points.  For the 2-layer Fourier-feature network on the CPU with
``backend = "nufft"`` (the default) each of these is a non-uniform FFT
(:mod:`freqdyn.nets.transforms`), O(n + m) in memory; otherwise the dense closed form over
row blocks (``FourierFeatureNetwork.loss_and_grad``), or autograd for the MLP, with the
NTK from torch.func.  GPUs use the dense pass (cuFINUFFT is not wired in).  The LFP's
ReLU/tanh networks bring their own closed-form passes (:mod:`freqdyn.nets.lfp_net`:
``sorted`` prefix sums for ReLU in d = 1, else ``dense`` row blocks).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from freqdyn.nets import transforms as tf
from freqdyn.nets.lfp_net import LFP_MODELS
from freqdyn.nets.measure import empirical_kernel, gram_lambda_max


@runtime_checkable
class Network(Protocol):
    """What the trainer, the flow integrator and the finite-width theory ask of a network on
    its N training samples: L = (α/2N)Σ(f − y)² with its gradient (in ``.grad``), f at the
    samples, λ_max of the Gram (α/N)JJᵀ and the empirical NTK at probe points.  Every
    model reaches them through :class:`NetworkPass`, and
    ``tests/nets/test_network_interface.py`` holds each implementation to autodiff."""

    def loss_and_grad(self, y: torch.Tensor, alpha: float,
                      idx: torch.Tensor | None = None) -> torch.Tensor: ...

    def evaluate(self) -> torch.Tensor: ...

    def gram_lambda_max(self, alpha: float) -> float: ...

    def ntk(self, probe: np.ndarray) -> np.ndarray: ...


class NetworkPass:
    """The trainer's evaluations of ``model`` on the samples ``x_np`` (see module text);
    a :class:`Network`."""

    def __init__(self, model, settings, x_np: np.ndarray, x: torch.Tensor, case_dim: int,
                 layout=None):
        self.model, self.settings, self.x = model, settings, x
        self.fast = (settings.model == "fourier" and settings.backend == "nufft"
                     and x.device.type == "cpu")
        self.lfp = settings.model in LFP_MODELS
        self.transforms = self.batch_transforms = None
        if self.fast:
            layout = layout or sample_layout(settings, x_np, case_dim)
            self.transforms = tf.FourierTransforms(layout, settings.torch_dtype,
                                                   settings.nufft_tol)
            self.x_np = x_np

    @property
    def backend(self) -> str:
        return "nufft" if self.fast else self.settings.backend if self.lfp else "dense"

    def loss_and_grad(self, y: torch.Tensor, alpha: float, idx: torch.Tensor | None = None):
        """L and its gradient (in ``.grad``) over all samples, or the minibatch ``idx``."""
        s = self.settings
        if not self.fast:
            compile_kw = {"compiled": True} if s.compile else {}
            x, yy = (self.x, y) if idx is None else (self.x[idx], y[idx])
            return self.model.loss_and_grad(x, yy, alpha, s.block_rows, **compile_kw)
        if idx is None:
            return tf.loss_and_grad(self.model, self.transforms, y, alpha)
        layout = tf.ScatteredSamples(self.x_np[idx.cpu().numpy()])
        if self.batch_transforms is None:
            self.batch_transforms = tf.FourierTransforms(layout, s.torch_dtype, s.nufft_tol)
        else:
            self.batch_transforms.set_points(layout)
        return tf.loss_and_grad(self.model, self.batch_transforms, y[idx], alpha)

    @torch.no_grad()
    def evaluate(self) -> torch.Tensor:
        """f at every training sample."""
        if self.fast:
            return tf.forward(self.model, self.transforms)
        return self.model.evaluate(self.x, self.settings.block_rows)

    def gram_lambda_max(self, alpha: float) -> float:
        if self.lfp:
            return self.model.gram_lambda_max(self.x, alpha)
        if self.fast:
            return tf.gram_lambda_max(self.model, self.transforms, alpha)

        return gram_lambda_max(self.model, self.x, alpha, max(self.settings.block_rows, 256))

    def ntk(self, probe: np.ndarray) -> np.ndarray:
        """The empirical NTK at the probe points (closed form for the 2-layer network)."""
        if self.settings.model == "fourier":
            return tf.empirical_ntk(self.model, probe)
        if self.lfp:
            return self.model.empirical_ntk(probe)

        return empirical_kernel(self.model, probe)


def sample_layout(settings, x_np: np.ndarray, dim: int):
    """The training samples as a transform layout: the cell-centred grid or the points."""
    if settings.sampling == "grid":
        h = 2 * settings.R / settings.samples
        return tf.GridSamples(np.full(dim, -settings.R + h / 2), np.full(dim, h),
                              (settings.samples,) * dim)
    return tf.ScatteredSamples(x_np)
