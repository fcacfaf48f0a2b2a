"""The ``[train]`` table of a case: every key optional, every value checked before training.

=================== ================================================================
key                 meaning (default)
=================== ================================================================
model               ``"fourier"``: the 2-layer model of the theory; ``"fourier-mlp"``:
                    Fourier features followed by an MLP; ``"lfp-relu"``, ``"lfp-tanh"``:
                    the LFP's 2-layer ReLU / tanh network, drawn from the ``[lfp]`` table
                    (``"fourier"``)
width               number m of first-layer frequencies (16384 in 1D, 4096 in 2D,
                    1024 in 3D)
backend             the 2-layer network's forward and gradient pass: ``"nufft"`` (fast
                    transforms, O(n + m) memory; the default wherever it applies) or
                    ``"dense"`` (the closed form over n×m blocks); for ``lfp-relu`` in
                    d = 1 ``"sorted"`` (prefix sums over sorted breakpoints, O((n + m)
                    log m), the default there)
nufft_tol           relative tolerance of the transforms (1e-12 in float64, 1e-6 in
                    float32: trajectories equal to the dense pass's to ≤ 1e-9)
depth, hidden       MLP hidden layers and their width (2, 256)
activation          MLP activation: tanh, relu, gelu, sin, softplus (``"tanh"``)
parametrization     MLP parametrisation: ``"ntk"`` or ``"standard"`` (``"ntk"``)
train_w             train the frequencies w (true); false = random Fourier features
twin                train the network's linearised twin alongside it (docs/theory.md §12):
                    true by default for the 2-layer model with full-batch gd
f0                  the initial output: ``"zero"`` (antisymmetric doubling, f₀ ≡ 0 with
                    m/2 independent units), ``"centered"`` (train f − f₀ with all m
                    units independent) or ``"random"`` (``"zero"``)
R                   half-width of the training box [−R, R]^d (the kernel-flow default:
                    twice the target window, and the window plus several kernel widths;
                    LFP models: the target window + 1, as their kernel-flow reference)
sampling            ``"grid"`` (cell-centred uniform grid) or ``"random"`` (uniform)
samples             grid points per axis, or the number of random points (grid: the
                    kernel-flow spacing, which resolves ρ_w and the ξ domain; LFP models:
                    spacing 1/(16 Ξ), Ξ the reach of the ξ box)
optimizer           ``"gd"`` (full batch), ``"sgd"`` (minibatches), ``"adam"``, ``"adamw"``
lr                  learning rate η; for gd/sgd an upper bound, lowered so that every
                    reported time is a whole number of steps (lr_fraction × 2(1+μ)/λ_max)
lr_fraction         default η as a fraction of the stability bound (0.5)
min_steps           gd/sgd: at least this many steps to the last reported time t_T, i.e.
                    η ≤ (1 − μ) V t_T / min_steps besides the bounds above.  GD's step
                    error on the flow is about (λt)²/(2k) relative for a mode of rate λ
                    after k steps, so a few hundred keep it below 1 % (none)
momentum            heavy-ball momentum μ for gd/sgd (0)
integrator          ``"steps"`` (the optimizer's own steps) or, for full-batch gd, ``"rkc"``:
                    the gradient flow by adaptive second-order Runge–Kutta–Chebyshev steps
                    (:mod:`freqdyn.nets.rkc`), about √(λ_max t) gradients instead of λ_max t;
                    its "steps" are min_steps (8) macro steps that land on the reported times
rtol                rkc: the local error per step relative to the distance moved (1e-4)
batch_size          sgd minibatch size (N/8)
weight_decay        adamw weight decay (0.01)
steps               total optimizer steps; required for adam/adamw.  Without it the run
                    reports at the case's ``[frequency] times``
reports             with ``steps``: number of evenly spaced reports, step 0 included
                    (the number of case times)
seed                seed of initialisation, sampling and batches (0)
dtype               ``"float64"`` or ``"float32"`` (``"float64"``)
device              ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
measure_points      measurement grid points per axis (from the aliasing rule)
transform           ``"grid"``: Riemann sum over the measurement grid; ``"samples"``:
                    direct sum over the training samples with weight (2R)^d/N
probe_points        NTK probe grid points per axis (41, 11, 5 for d = 1, 2, 3)
checkpoint_every    steps between checkpoints, besides each report (1000)
divergence_factor   stop when the loss exceeds this times its initial value (10); with
                    full-batch GD beyond the stability bound, any rise above it stops
block_rows          rows per block of the dense pass (from the device)
compile             run the dense pass through torch.compile (false): faster on GPUs at
                    large n·m, slower on CPUs; costs a compilation per shape
=================== ================================================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.nets.fourier import default_block_rows
from freqdyn.nets.lfp_net import LFP_MODELS
from freqdyn.nets.mlp import ACTIVATIONS, PARAMETRIZATIONS
from freqdyn.predict.kernel_flow import default_settings as kernel_flow_settings
from freqdyn.theory.lfp import lfp_data_grid, lfp_params

MODELS = ("fourier", "fourier-mlp", "lfp-relu", "lfp-tanh")
BACKENDS = ("nufft", "dense", "sorted")
F0_CHOICES = ("zero", "centered", "random")
OPTIMIZERS = ("gd", "sgd", "adam", "adamw")
#: How full-batch gd follows the flow: its own steps, or the RKC2 integrator (nets/rkc.py).
INTEGRATORS = ("steps", "rkc")

DEFAULT_WIDTH = {1: 16384, 2: 4096, 3: 1024}
DEFAULT_PROBE = {1: 41, 2: 11, 3: 5}
DEFAULT_NUFFT_TOL = {"float64": 1e-12, "float32": 1e-6}
KEYS = {"model", "width", "backend", "nufft_tol", "depth", "hidden", "activation",
        "parametrization", "train_w", "twin", "f0", "R", "sampling", "samples", "optimizer", "lr",
        "lr_fraction", "min_steps", "momentum", "batch_size", "weight_decay", "steps", "reports",
        "seed", "dtype", "device", "measure_points", "transform", "probe_points",
        "checkpoint_every", "divergence_factor", "block_rows", "compile", "integrator",
        "rtol"}
#: Keys that change how a run executes, not what it computes (a stored run made on another
#: device or with other checkpointing is the same run).
EXECUTION_KEYS = {"device", "block_rows", "compile", "checkpoint_every"}


def _min_steps(t, optimizer: str) -> int | None:
    steps = t.integer("min_steps", None, low=1, allow_none=True)
    if steps is not None and optimizer not in ("gd", "sgd"):
        raise InputError("train.min_steps", f"applies to gd and sgd, not {optimizer!r}")
    return steps


@dataclass(frozen=True)
class TrainSettings:
    """The resolved ``[train]`` table (see the module docstring)."""

    model: str
    width: int
    backend: str
    nufft_tol: float
    depth: int
    hidden: int
    activation: str
    parametrization: str
    train_w: bool
    twin: bool
    f0: str
    R: float
    sampling: str
    samples: int
    optimizer: str
    integrator: str
    rtol: float
    lr: float | None
    lr_fraction: float
    min_steps: int | None
    momentum: float
    batch_size: int | None
    weight_decay: float
    steps: int | None
    reports: int
    seed: int
    dtype: str
    device: str
    measure_points: int | None
    transform: str
    probe_points: int
    checkpoint_every: int
    divergence_factor: float
    block_rows: int
    compile: bool

    @property
    def torch_dtype(self) -> torch.dtype:
        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]

    @property
    def n_samples(self) -> int:
        return self.samples ** self.dim_of_samples if self.sampling == "grid" else self.samples

    dim_of_samples: int = 1

    def record(self) -> dict:
        """The settings as a plain dict (stored with every result and checkpoint)."""
        out = asdict(self)
        out.pop("dim_of_samples")
        return out

    def computation(self) -> dict:
        """The settings that define what is computed (execution-only keys left out)."""
        return {k: v for k, v in self.record().items() if k not in EXECUTION_KEYS}


def resolve_device(name: str, field: str = "train.device") -> str:
    """``auto`` → ``cuda`` when a CUDA device is present, else ``cpu``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(field, f"must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(field, f"must be auto, cpu, cuda or cuda:N, got {name!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(field, f"{name!r} requested but no CUDA device is present; "
                                "use cpu or auto")
    return name


def _network_choices(t: Table, case) -> dict:
    """The network's keys of ``[train]`` (model, width, f0, precision, pass), checked
    together, and the default box and spacing of its samples."""
    d = case.dim
    kf = kernel_flow_settings(case)
    model = t.choice("model", "fourier", MODELS)
    width = t.integer("width", DEFAULT_WIDTH[d], low=1)
    f0 = t.choice("f0", "zero", F0_CHOICES)
    if model != "fourier-mlp" and f0 == "zero" and width % 2:
        raise InputError("train.width", f"must be even with f0 = 'zero', got {width}")
    train_w = t.boolean("train_w", True)
    compile_ = t.boolean("compile", False)
    dtype = t.choice("dtype", "float64", ("float64", "float32"))

    lfp = model in LFP_MODELS
    sorted_fits = model == "lfp-relu" and d == 1
    backend = t.choice("backend", "nufft" if model == "fourier" else
                       "sorted" if sorted_fits else "dense", BACKENDS)
    if model != "fourier" and backend == "nufft":
        raise InputError("train.backend", f"'nufft' applies to model 'fourier' only, not "
                                          f"{model!r}; use 'dense'")
    if backend == "sorted" and not sorted_fits:
        raise InputError("train.backend", f"'sorted' applies to model 'lfp-relu' in d = 1, not "
                                          f"{model!r} in d = {d}; use 'dense'")
    if lfp:

        lfp_params(case, LFP_MODELS[model])  # refuse a bad [lfp] table before training
        if not train_w:
            raise InputError("train.train_w", f"applies to Fourier features; the {model} "
                                              "network trains all its parameters")
        R_default, spacing_default = lfp_data_grid(case)
    else:
        R_default, spacing_default = kf.R, kf.spacing
    if compile_ and (model != "fourier" or backend != "dense"):
        raise InputError("train.compile", "applies to model 'fourier' with backend 'dense'")
    nufft_tol = t.number("nufft_tol", DEFAULT_NUFFT_TOL[dtype], low=1e-15, high=1e-2)
    if dtype == "float32" and nufft_tol < 1e-7:
        raise InputError("train.nufft_tol", f"float32 transforms reach about 1e-7 at best, "
                                            f"got {nufft_tol:g}; use >= 1e-7 or float64")
    return {"model": model, "width": width, "f0": f0, "train_w": train_w,
            "compile": compile_, "dtype": dtype, "backend": backend, "nufft_tol": nufft_tol,
            "R_default": R_default, "spacing_default": spacing_default}


def _optimizer_choices(t: Table, model: str, n_total: int) -> dict:
    """The optimizer's keys of ``[train]`` (optimizer, steps, momentum, integrator, twin,
    batch size), checked together."""
    optimizer = t.choice("optimizer", "gd", OPTIMIZERS)
    steps = t.integer("steps", None, low=1, allow_none=True)
    if optimizer in ("adam", "adamw") and steps is None:
        raise InputError("train.steps", f"is required with optimizer {optimizer!r}: adaptive "
                                        "steps have no PDE-time mapping")
    momentum = t.number("momentum", 0.0, low=0.0, high=1.0, high_open=True)
    if momentum and optimizer not in ("gd", "sgd"):
        raise InputError("train.momentum", f"applies to gd and sgd, not {optimizer!r}")
    integrator = t.choice("integrator", "steps", INTEGRATORS)
    if integrator == "rkc" and (optimizer != "gd" or momentum or steps is not None):
        raise InputError("train.integrator", "rkc integrates the gradient flow: it needs "
                                             "optimizer = 'gd', no momentum and no steps")
    twin = t.boolean("twin", model == "fourier" and optimizer == "gd" and integrator == "steps")
    if twin and (model != "fourier" or optimizer != "gd" or integrator != "steps"):
        raise InputError("train.twin", f"applies to model 'fourier' with gd steps, not "
                                       f"{model!r} with {optimizer!r} ({integrator}); set "
                                       "twin = false")
    batch_size = t.integer("batch_size", max(1, n_total // 8) if optimizer == "sgd" else None,
                           low=1, allow_none=True)
    if batch_size is not None and optimizer != "sgd":
        raise InputError("train.batch_size", f"applies to sgd only, not {optimizer!r}")
    if batch_size is not None and batch_size > n_total:
        raise InputError("train.batch_size", f"must be <= the {n_total} samples, got {batch_size}")
    return {"optimizer": optimizer, "steps": steps, "momentum": momentum,
            "integrator": integrator, "twin": twin, "batch_size": batch_size}


def train_settings(case, overrides: dict | None = None) -> TrainSettings:
    """Validate the case's ``[train]`` table (plus ``overrides``) and fill in defaults."""

    data = case.section("train")
    data.update(overrides or {})
    t = Table(data, "train", KEYS)
    d = case.dim
    net = _network_choices(t, case)
    model, width, dtype = net["model"], net["width"], net["dtype"]
    R = t.number("R", net["R_default"], low=0.0, low_open=True)
    sampling = t.choice("sampling", "grid", ("grid", "random"))
    per_axis = math.ceil(2 * R / net["spacing_default"])
    samples = t.integer("samples", per_axis if sampling == "grid" else per_axis**d, low=2)
    n_total = samples**d if sampling == "grid" else samples
    optimizer_keys = _optimizer_choices(t, model, n_total)
    optimizer = optimizer_keys["optimizer"]
    device = resolve_device(t.get("device", "auto"))
    rows_default = default_block_rows(width if model == "fourier" else 4 * width, device)
    return TrainSettings(
        model=model, width=width, backend=net["backend"], nufft_tol=net["nufft_tol"],
        depth=t.integer("depth", 2, low=1), hidden=t.integer("hidden", 256, low=1),
        activation=t.choice("activation", "tanh", tuple(ACTIVATIONS)),
        parametrization=t.choice("parametrization", "ntk", PARAMETRIZATIONS),
        train_w=net["train_w"], twin=optimizer_keys["twin"], f0=net["f0"], R=R,
        sampling=sampling, samples=samples, optimizer=optimizer,
        integrator=optimizer_keys["integrator"],
        rtol=t.number("rtol", 1e-4, low=1e-12, high=0.1),
        lr=t.number("lr", None, low=0.0, low_open=True, allow_none=True),
        lr_fraction=t.number("lr_fraction", 0.5, low=0.0, high=1.0, low_open=True),
        min_steps=_min_steps(t, optimizer),
        momentum=optimizer_keys["momentum"], batch_size=optimizer_keys["batch_size"],
        weight_decay=t.number("weight_decay", 0.01, low=0.0),
        steps=optimizer_keys["steps"], reports=t.integer("reports", max(2, case.times.size), low=2),
        seed=t.integer("seed", 0, low=0), dtype=dtype, device=device,
        measure_points=t.integer("measure_points", None, low=3, allow_none=True),
        transform=t.choice("transform", "grid", ("grid", "samples")),
        probe_points=t.integer("probe_points", DEFAULT_PROBE[d], low=2),
        checkpoint_every=t.integer("checkpoint_every", 1000, low=1),
        divergence_factor=t.number("divergence_factor", 10.0, low=1.0),
        block_rows=t.integer("block_rows", rows_default, low=1), compile=net["compile"],
        dim_of_samples=d,
    )
