"""The ingredients of a training run: samples, the network, f₀ handling, the optimizer."""

from __future__ import annotations

import numpy as np
import torch

from freqdyn.inputs.fourier import tensor_grid
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.nets.lfp_net import LFP_MODELS, LFPNetwork
from freqdyn.nets.mlp import FourierFeatureMLP
from freqdyn.nets.settings import TrainSettings
from freqdyn.theory.lfp import lfp_params


def training_samples(case, settings: TrainSettings) -> np.ndarray:
    """The N training points (N, d), float64.

    ``grid``: the cell-centred grid x = −R + (i + ½)h, h = 2R/n per axis, so that
    N h^d = (2R)^d exactly.  ``random``: N uniform points, drawn with seed + 2.
    """
    d, R, n = case.dim, settings.R, settings.samples
    if settings.sampling == "grid":
        h = 2 * R / n
        axis = -R + (np.arange(n) + 0.5) * h
        return tensor_grid([axis] * d).reshape(-1, d)
    gen = torch.Generator().manual_seed(settings.seed + 2)
    u = torch.rand(n, d, generator=gen, dtype=torch.float64).numpy()
    return R * (2 * u - 1)


def build_model(case, settings: TrainSettings):
    """The network of the settings, initialised from ``seed`` (on the settings' device).

    ``f0 = "centered"`` builds the plain random network (all m units independent);
    the trainer then subtracts its initial output.
    """
    gen = torch.Generator().manual_seed(settings.seed)
    f0 = "random" if settings.f0 == "centered" else settings.f0
    if settings.model in LFP_MODELS:

        params = lfp_params(case, LFP_MODELS[settings.model])
        model = LFPNetwork.from_case(case, params, settings.width, gen, f0=f0,
                                     dtype=settings.torch_dtype, backend=settings.backend)
    elif settings.model == "fourier":
        model = FourierFeatureNetwork.from_case(case, settings.width, gen, f0=f0,
                                                dtype=settings.torch_dtype,
                                                train_w=settings.train_w)
    else:
        model = FourierFeatureMLP.from_case(
            case, settings.width, gen, depth=settings.depth, hidden=settings.hidden,
            activation=settings.activation, parametrization=settings.parametrization,
            f0=f0, dtype=settings.torch_dtype, train_w=settings.train_w)
    return model.to(settings.device)


#: Resident memory of a training run: the interpreter with torch, finufft and the FEM stack
#: loaded, and the bytes per unit of a 2-layer network in d = 1 (parameters, gradients, θ₀,
#: the centring copy, optimizer state, the twin, checkpoint buffers and the transforms'
#: workspace).  Measured (maximum RSS, float64, nufft pass, twin on): 1.07 GB at m = 2^18,
#: 1.50 GB at m = 2^20, i.e. about 570 bytes a unit; a unit in d dimensions has d + 2
#: parameters.
TRAIN_MEMORY_BASE = 1.0e9
TRAIN_MEMORY_PER_UNIT = 600.0


def training_memory(settings: TrainSettings, dim: int) -> float:
    """Bytes a 2-layer training run of ``settings.width`` units in ``dim`` dimensions needs
    (:data:`TRAIN_MEMORY_BASE` + :data:`TRAIN_MEMORY_PER_UNIT` · m · (d + 2)/3)."""
    return TRAIN_MEMORY_BASE + TRAIN_MEMORY_PER_UNIT * settings.width * (dim + 2) / 3


def independent_units(settings: TrainSettings) -> int:
    """Independent frequency draws of the 2-layer network: m/2 when doubled (f0 = "zero"),
    else m (centred or random)."""
    return settings.width // 2 if settings.f0 == "zero" else settings.width


def build_optimizer(params, settings: TrainSettings, lr: float) -> torch.optim.Optimizer:
    """The run's optimizer on a model's parameters (or on a list of tensors)."""
    params = list(params.parameters() if isinstance(params, torch.nn.Module) else params)
    if settings.optimizer in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr, momentum=settings.momentum)
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr, weight_decay=settings.weight_decay)
