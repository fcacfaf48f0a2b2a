"""Train Fourier-feature networks on a case and measure their error transform in PDE time.

A ``[train]`` table in the case file configures the run; every key is optional:

=================== ================================================================
key                 meaning (default)
=================== ================================================================
model               ``"fourier"``: the 2-layer model of the theory; ``"fourier-mlp"``:
                    Fourier features followed by an MLP (``"fourier"``)
width               number m of first-layer frequencies (16384 in 1D, 4096 in 2D,
                    1024 in 3D)
depth, hidden       MLP hidden layers and their width (2, 256)
activation          MLP activation: tanh, relu, gelu, sin, softplus (``"tanh"``)
parametrization     MLP parametrisation: ``"ntk"`` or ``"standard"`` (``"ntk"``)
train_w             train the frequencies w (true); false = random Fourier features
f0                  the initial output: ``"zero"`` (antisymmetric doubling, f₀ ≡ 0 with
                    m/2 independent units), ``"centered"`` (train f − f₀ with all m
                    units independent, see :func:`centered_targets`) or ``"random"``
                    (``"zero"``)
R                   half-width of the training box [−R, R]^d (the kernel-flow default:
                    twice the target window, and the window plus several kernel widths)
sampling            ``"grid"`` (cell-centred uniform grid) or ``"random"`` (uniform)
samples             grid points per axis, or the number of random points (grid: the
                    kernel-flow spacing, which resolves ρ_w and the ξ domain)
optimizer           ``"gd"`` (full batch), ``"sgd"`` (minibatches), ``"adam"``, ``"adamw"``
lr                  learning rate η; for gd/sgd an upper bound, lowered so that every
                    reported time is a whole number of steps (lr_fraction × 2(1+μ)/λ_max)
lr_fraction         default η as a fraction of the stability bound (0.5)
momentum            heavy-ball momentum μ for gd/sgd (0)
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
divergence_factor   stop when the loss exceeds this times its initial value (10)
block_rows          rows per block of the closed-form pass (from the device)
compile             run the closed-form pass through torch.compile (false): faster on
                    GPUs at large n·m, slower on CPUs; costs a compilation per shape
=================== ================================================================

The loss is L = (α/2N) Σ_i (f(x_i) − g(x_i))² with α the case's loss scale: a mean of
squares that estimates (α/2)∫_{box}(f − g)² dx / (2R)^d (with ``f0 = "centered"``, f
stands for f − f₀ throughout).  :func:`pde_time` maps steps
to PDE time; everything else lives in :func:`train`.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from freqdyn.errors import InputError, TrainingDiverged
from freqdyn.inputs.fourier import tensor_grid
from freqdyn.nets.fourier import (
    ACTIVATIONS,
    PARAMETRIZATIONS,
    FourierFeatureMLP,
    FourierFeatureNetwork,
    default_block_rows,
)
from freqdyn.nets.measure import (
    analytic_kernel,
    as_float64,
    empirical_kernel,
    error_transform,
    evaluate_on_grid,
    gram_lambda_max,
    measurement_axis,
    ntk_comparison,
    nudft,
    parameter_drift,
    probe_points,
)
from freqdyn.predict.kernel_flow import default_settings as kernel_flow_settings
from freqdyn.results import atomic_write, frequency_dataset, write_dataset

MODELS = ("fourier", "fourier-mlp")
#: Initial-output choices of the ``f0`` key (see the module docstring).
F0_CHOICES = ("zero", "centered", "random")
OPTIMIZERS = ("gd", "sgd", "adam", "adamw")
DEFAULT_WIDTH = {1: 16384, 2: 4096, 3: 1024}
DEFAULT_PROBE = {1: 41, 2: 11, 3: 5}
#: A learning rate beyond this multiple of the stability bound is refused.
REFUSE_FACTOR = 4.0
#: Most steps a run may need to hit the reported times exactly.
MAX_STEPS = 50_000_000
#: Checkpoint files kept (newest first).
KEEP_CHECKPOINTS = 3
CHECKPOINT_VERSION = 1


class StabilityWarning(UserWarning):
    """The learning rate exceeds the gradient-descent stability bound."""


# ---------------------------------------------------------------------------------------
# PDE time
# ---------------------------------------------------------------------------------------


def pde_time(steps, lr: float, box_volume: float, momentum: float = 0.0):
    """PDE time τ reached after ``steps`` optimizer steps of size ``lr``.

        τ = η k / ((1 − μ) (2R)^d)

    Derivation.  Training minimises L = (α/2N) Σ_i (f(x_i) − y_i)² over N samples
    that fill the box of volume V = (2R)^d uniformly, so (1/N)Σ_i ≈ V^{-1}∫ dx (exact
    for the cell-centred grid, N h^d = V; unbiased for uniform random samples).
    Linearised in the parameters (NTK regime), one GD step changes the error by

        u_{k+1}(x) − u_k(x) = −η ∇_θf(x)·∇_θL = −(ηα/N) Σ_i Θ(x, x_i) u_k(x_i)
                            ≈ −(η/V) α ∫ Θ(x, x') u_k(x') dx',

    with Θ the NTK of the network as built (it already carries κ²).  freqdyn's PDE
    time t is defined by ∂_t u = −α ∫ Θ u dx' (the kernel-flow reference and the PDE
    ∂_t û = κ²α[σ_a²∇·(ρ_w∇û) − ρ_w û]), so one step advances t by η/V: τ = ηk/V.
    A mean-of-squares loss without the ½ (PyTorch's MSE) would double τ; a sum
    instead of a mean would multiply it by N.  Heavy-ball momentum μ makes the step
    η/(1 − μ) once the velocity has settled (after ~1/(1 − μ) steps), so τ is then
    asymptotic.  Minibatch SGD has the same mean step.  Adaptive optimisers (Adam)
    rescale each coordinate, so for them τ is only a nominal clock.
    """
    return np.asarray(steps, dtype=float) * lr / ((1.0 - momentum) * box_volume)


def time_quantum(times) -> Fraction:
    """The largest g with every time an integer multiple of g (times as exact decimals)."""
    fracs = []
    for t in np.asarray(times, dtype=float):
        frac = Fraction(repr(float(t)))
        if frac.denominator > 10**9:
            raise InputError("frequency.times", f"time {t!r} has too many digits to be hit "
                                               "exactly by whole steps")
        fracs.append(frac)
    positive = [f for f in fracs if f > 0]
    if not positive:
        return Fraction(1)
    num = 0
    den = 1
    for f in positive:
        den = den * f.denominator // math.gcd(den, f.denominator)
    for f in positive:
        num = math.gcd(num, f.numerator * (den // f.denominator))
    return Fraction(num, den)


def report_schedule(times, lr_max: float, box_volume: float, momentum: float = 0.0):
    """(η, steps at each time) with η ≤ ``lr_max`` and τ(steps_i) = times_i exactly.

    The PDE step Δτ = η/((1 − μ)V) is the largest g/q ≤ Δτ_max, q a positive integer
    and g the time quantum, so that every t_i = (t_i/g)·q·Δτ is a whole number of steps.
    """
    g = time_quantum(times)
    dtau_max = lr_max / ((1.0 - momentum) * box_volume)
    q = max(1, math.ceil(float(g) / dtau_max))
    steps = [int(Fraction(repr(float(t))) / g * q) for t in np.asarray(times, dtype=float)]
    if steps[-1] > MAX_STEPS:
        raise InputError("train.lr", f"reaching t = {times[-1]:g} needs {steps[-1]} steps at "
                                    f"η = {lr_max:.3g} (limit {MAX_STEPS}); raise lr or "
                                    "shorten the times")
    dtau = float(g) / q
    return dtau * (1.0 - momentum) * box_volume, steps


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSettings:
    """The resolved ``[train]`` table (see the module docstring)."""

    model: str
    width: int
    depth: int
    hidden: int
    activation: str
    parametrization: str
    train_w: bool
    f0: str
    R: float
    sampling: str
    samples: int
    optimizer: str
    lr: float | None
    lr_fraction: float
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


_KEYS = {"model", "width", "depth", "hidden", "activation", "parametrization", "train_w",
         "f0", "R", "sampling", "samples", "optimizer", "lr", "lr_fraction", "momentum",
         "batch_size", "weight_decay", "steps", "reports", "seed", "dtype", "device",
         "measure_points", "transform", "probe_points", "checkpoint_every",
         "divergence_factor", "block_rows", "compile"}


def _int(table, key, default, minimum=1):
    val = table.get(key, default)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, int) or val < minimum:
        raise InputError(f"train.{key}", f"must be an integer >= {minimum}, got {val!r}")
    return val


def _float(table, key, default, low=0.0, high=math.inf, strict_low=True):
    val = table.get(key, default)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
        raise InputError(f"train.{key}", f"must be a finite number, got {val!r}")
    if (val <= low if strict_low else val < low) or val >= high:
        lo = "(" if strict_low else "["
        raise InputError(f"train.{key}", f"must be in {lo}{low:g}, {high:g}), got {val!r}")
    return float(val)


def _choice(table, key, default, options):
    val = table.get(key, default)
    if val not in options:
        raise InputError(f"train.{key}", f"must be one of {list(options)}, got {val!r}")
    return val


def resolve_device(name: str) -> str:
    """``auto`` → ``cuda`` when a CUDA device is present, else ``cpu``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError("train.device", f"must be auto, cpu, cuda or cuda:N, got {name!r}")\
            from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError("train.device", f"must be auto, cpu, cuda or cuda:N, got {name!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device", f"{name!r} requested but no CUDA device is present")
    return name


def train_settings(case, overrides: dict | None = None) -> TrainSettings:
    """Validate the case's ``[train]`` table (plus ``overrides``) and fill in defaults."""
    table = case.section("train")
    table.update(overrides or {})
    unknown = set(table) - _KEYS
    if unknown:
        raise InputError("train", f"unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    d = case.dim
    kf = kernel_flow_settings(case)
    model = _choice(table, "model", "fourier", MODELS)
    width = _int(table, "width", DEFAULT_WIDTH[d])
    f0 = _choice(table, "f0", "zero", F0_CHOICES)
    if model == "fourier" and f0 == "zero" and width % 2:
        raise InputError("train.width", f"must be even with f0 = 'zero', got {width}")
    train_w = table.get("train_w", True)
    if not isinstance(train_w, bool):
        raise InputError("train.train_w", f"must be true or false, got {train_w!r}")
    compile_ = table.get("compile", False)
    if not isinstance(compile_, bool):
        raise InputError("train.compile", f"must be true or false, got {compile_!r}")
    if compile_ and model != "fourier":
        raise InputError("train.compile", f"applies to model 'fourier' only, not {model!r}")
    R = _float(table, "R", kf.R)
    sampling = _choice(table, "sampling", "grid", ("grid", "random"))
    default_samples = math.ceil(2 * R / kf.spacing) if sampling == "grid" else \
        math.ceil(2 * R / kf.spacing) ** d
    samples = _int(table, "samples", default_samples)
    n_total = samples**d if sampling == "grid" else samples
    optimizer = _choice(table, "optimizer", "gd", OPTIMIZERS)
    steps = _int(table, "steps", None)
    if optimizer in ("adam", "adamw") and steps is None:
        raise InputError("train.steps", f"is required with optimizer {optimizer!r}: adaptive "
                                       "steps have no PDE-time mapping")
    momentum = _float(table, "momentum", 0.0, 0.0, 1.0, strict_low=False)
    if momentum and optimizer not in ("gd", "sgd"):
        raise InputError("train.momentum", f"applies to gd and sgd, not {optimizer!r}")
    batch_size = _int(table, "batch_size", max(1, n_total // 8) if optimizer == "sgd" else None)
    if batch_size is not None and optimizer != "sgd":
        raise InputError("train.batch_size", f"applies to sgd only, not {optimizer!r}")
    if batch_size is not None and batch_size > n_total:
        raise InputError("train.batch_size", f"must be <= the {n_total} samples, got {batch_size}")
    device = resolve_device(table.get("device", "auto"))
    dtype = _choice(table, "dtype", "float64", ("float64", "float32"))
    rows_default = default_block_rows(width if model == "fourier" else 4 * width, device)
    return TrainSettings(
        model=model, width=width,
        depth=_int(table, "depth", 2), hidden=_int(table, "hidden", 256),
        activation=_choice(table, "activation", "tanh", tuple(ACTIVATIONS)),
        parametrization=_choice(table, "parametrization", "ntk", PARAMETRIZATIONS),
        train_w=train_w, f0=f0, R=R, sampling=sampling, samples=samples,
        optimizer=optimizer, lr=_float(table, "lr", None),
        lr_fraction=_float(table, "lr_fraction", 0.5, 0.0, 1.0 + 1e-12),
        momentum=momentum, batch_size=batch_size,
        weight_decay=_float(table, "weight_decay", 0.01, 0.0, strict_low=False),
        steps=steps, reports=_int(table, "reports", max(2, case.times.size), minimum=2),
        seed=_int(table, "seed", 0, minimum=0), dtype=dtype, device=device,
        measure_points=_int(table, "measure_points", None, minimum=3),
        transform=_choice(table, "transform", "grid", ("grid", "samples")),
        probe_points=_int(table, "probe_points", DEFAULT_PROBE[d], minimum=2),
        checkpoint_every=_int(table, "checkpoint_every", 1000),
        divergence_factor=_float(table, "divergence_factor", 10.0, 1.0),
        block_rows=_int(table, "block_rows", rows_default), compile=compile_,
    )


# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------


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
    the trainer then subtracts its initial output (:func:`centered_targets`).
    """
    gen = torch.Generator().manual_seed(settings.seed)
    f0 = "random" if settings.f0 == "centered" else settings.f0
    if settings.model == "fourier":
        model = FourierFeatureNetwork.from_case(case, settings.width, gen, f0=f0,
                                                dtype=settings.torch_dtype,
                                                train_w=settings.train_w)
    else:
        model = FourierFeatureMLP.from_case(
            case, settings.width, gen, depth=settings.depth, hidden=settings.hidden,
            activation=settings.activation, parametrization=settings.parametrization,
            f0=f0, dtype=settings.torch_dtype, train_w=settings.train_w)
    return model.to(settings.device)


def independent_units(settings: TrainSettings) -> int:
    """Independent frequency draws of the 2-layer network: m/2 when doubled (f0 = "zero"),
    else m (centred or random)."""
    return settings.width // 2 if settings.f0 == "zero" else settings.width


@torch.no_grad()
def centered_targets(initial_model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Targets y + f(x; θ₀) that make training f train f − f₀ (``f0 = "centered"``).

    The centred model is f_c(x; θ) = f(x; θ) − f(x; θ₀) with θ₀ frozen, so f_c ≡ 0 at
    initialisation while all m units stay independent (doubling keeps only m/2 draws).
    Since f(x; θ₀) does not depend on θ,

        (α/2N) Σ_i (f_c(x_i; θ) − y_i)² = (α/2N) Σ_i (f(x_i; θ) − [y_i + f(x_i; θ₀)])²

    with the same gradient, the same NTK ∇_θf·∇_θf and so the same PDE; the error
    u = f_c − g = f − (g + f₀) is measured the same way, against the shifted target.
    ``initial_model`` must hold θ₀; f₀ is evaluated in its own precision, so the
    initial training residual is −y up to the rounding of one addition.
    """
    return y + initial_model.evaluate(x).to(y.dtype)


def build_optimizer(model, settings: TrainSettings, lr: float) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if settings.optimizer in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr, momentum=settings.momentum)
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr, weight_decay=settings.weight_decay)


def stability_bound(lam_max: float, momentum: float = 0.0) -> float:
    """Largest stable GD learning rate, 2(1 + μ)/λ_max (heavy ball; 2/λ_max for μ = 0)."""
    return 2.0 * (1.0 + momentum) / lam_max


def check_learning_rate(lr: float, lam_max: float, momentum: float = 0.0) -> dict:
    """Compare η with the stability bound; warn beyond it, refuse beyond 4× it.

    Returns the numbers recorded with the result: the bound, λ_max and, for the top
    Gram mode, the per-step GD factor 1 − ηλ against the gradient-flow factor e^{−ηλ}.
    """
    bound = stability_bound(lam_max, momentum)
    info = {"lr": lr, "gram_lambda_max": lam_max, "lr_stability_bound": bound,
            "top_mode_gd_factor": 1.0 - lr * lam_max,
            "top_mode_flow_factor": math.exp(-lr * lam_max)}
    if lr > REFUSE_FACTOR * bound:
        raise InputError("train.lr", f"η = {lr:.4g} is {lr / bound:.1f}× the stability bound "
                                    f"2(1+μ)/λ_max = {bound:.4g} (λ_max = {lam_max:.4g} of the "
                                    f"NTK Gram (α/N)JJᵀ on the training samples); refused "
                                    f"beyond {REFUSE_FACTOR:g}×")
    if lr > bound:
        warnings.warn(f"learning rate η = {lr:.4g} exceeds the stability bound "
                      f"2(1+μ)/λ_max = {bound:.4g} (λ_max = {lam_max:.4g}): the top NTK mode "
                      f"grows by |1 − ηλ| = {abs(1 - lr * lam_max):.3g} per step; expect "
                      "divergence", StabilityWarning, stacklevel=2)
    return info


def progress_enabled() -> bool:
    """Progress bars unless FREQDYN_NO_PROGRESS=1 or stderr is not a terminal."""
    return os.environ.get("FREQDYN_NO_PROGRESS", "") != "1" and sys.stderr.isatty()


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


def _atomic_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def checkpoint_files(folder: Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first."""
    return sorted(Path(folder).glob("step-*.pt"))


def _write_checkpoint(folder: Path, state: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{state['step']:010d}.pt"
    _atomic_save(state, path)
    for old in checkpoint_files(folder)[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`train` returns: the dataset and where it was written."""

    dataset: object
    measured: Path
    figure: Path | None
    steps: int
    seconds: float


def _settings_record(settings: TrainSettings) -> dict:
    return asdict(settings)


def train(case, out, *, resume: bool = False, overrides: dict | None = None,
          stop_after: int | None = None, progress: bool | None = None,
          figure: bool = True) -> TrainResult | None:
    """Train the case's network and write ``out/measured.nc`` (+ ``training.png``).

    Reports at the case's ``[frequency] times`` (or, with ``steps``, at evenly spaced
    steps): the error transform û(ξ, τ), the drift ‖θ_τ − θ₀‖/‖θ₀‖, and the loss
    at every step.  Checkpoints go to ``out/checkpoints`` at each report and every
    ``checkpoint_every`` steps (atomic writes, the newest three kept); ``resume``
    continues from the newest one and gives the same result, bit for bit on the CPU,
    as an uninterrupted run.  ``stop_after`` ends the run (after a checkpoint) once
    that many steps are done in total and returns None.  Raises
    :class:`TrainingDiverged` if the loss becomes NaN/inf or exceeds
    ``divergence_factor`` times its initial value; the last checkpoint then holds the
    last good state.
    """
    start_clock = time.perf_counter()
    out = Path(out)
    ckpt_dir = out / "checkpoints"
    settings = train_settings(case, overrides)
    device, dtype = torch.device(settings.device), settings.torch_dtype
    x_np = training_samples(case, settings)
    y_np = case.target(x_np)
    x = torch.from_numpy(x_np).to(device, dtype)
    y = torch.from_numpy(y_np).to(device, dtype)
    n = x.shape[0]
    volume = (2 * settings.R) ** case.dim
    alpha = case.loss_scale

    model = build_model(case, settings)
    # f0 = "centered": θ₀ (rebuilt from the seed, also on resume) fixes the shifted
    # targets g + f₀ on the training samples and, below, on the measurement grid.
    initial = as_float64(model) if settings.f0 == "centered" else None
    if initial is not None:
        y = centered_targets(model, x, y)
        y_np = centered_targets(initial, torch.from_numpy(x_np).to(device),
                                torch.from_numpy(y_np).to(device)).cpu().numpy()
    probe = probe_points(case, min(settings.R, case.target.radius) / 2, settings.probe_points)
    analytic = analytic_kernel(case, probe, settings.train_w) if settings.model == "fourier" \
        else None

    if resume:
        files = checkpoint_files(ckpt_dir)
        if not files:
            raise InputError("resume", f"no checkpoint in {ckpt_dir}")
        state = torch.load(files[-1], map_location=device, weights_only=False)
        if state["case_toml"] != case.text:
            raise InputError("resume", f"the case differs from the one of the run in {out}")
        if state["settings"] != _settings_record(settings):
            diff = {k: (v, _settings_record(settings)[k]) for k, v in state["settings"].items()
                    if _settings_record(settings).get(k) != v}
            raise InputError("resume", f"[train] settings differ from the run's: {diff}")
        model.load_state_dict(state["model"])
        lr, report_steps, info = state["lr"], state["report_steps"], state["stability"]
    else:
        if checkpoint_files(ckpt_dir):
            raise InputError("out", f"{out} already holds checkpoints; resume the run or "
                                   "choose another folder")
        lam = gram_lambda_max(model, x, alpha, max(settings.block_rows, 256))
        lr, report_steps = _schedule(case, settings, lam, volume)
        info = check_learning_rate(lr, lam, settings.momentum) if settings.optimizer in \
            ("gd", "sgd") else {"lr": lr, "gram_lambda_max": lam}
        state = {
            "version": CHECKPOINT_VERSION, "case_toml": case.text,
            "settings": _settings_record(settings), "lr": lr, "report_steps": report_steps,
            "stability": info, "step": 0,
            "initial": {k: v.detach().to("cpu", torch.float64).clone()
                        for k, v in model.named_parameters()},
            "losses": [], "records": [], "batch_rng": None, "optimizer": None,
            "ntk_start": empirical_kernel(model, probe), "train_seconds": 0.0,
            "loss_reference": _full_loss(model, x, y, alpha, settings),
            # the grid is fixed at the start (from θ₀'s frequencies): a resumed run
            # must measure on the same points
            "measure_points": measurement_axis(case, settings.R, model,
                                               settings.measure_points).size,
        }

    optimizer = build_optimizer(model, settings, lr)
    if state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    batch_gen = torch.Generator().manual_seed(settings.seed + 1)
    if state["batch_rng"] is not None:
        batch_gen.set_state(state["batch_rng"])
    total = report_steps[-1]
    axis = measurement_axis(case, settings.R, points=state["measure_points"])
    g_grid = case.target(tensor_grid([axis] * case.dim))
    if initial is not None:
        g_grid = g_grid + evaluate_on_grid(initial, axis, case.dim)
    losses = torch.zeros(total + 1, dtype=torch.float64, device=device)
    if state["losses"]:
        losses[:len(state["losses"])] = torch.as_tensor(state["losses"], dtype=torch.float64)
    # Divergence threshold: divergence_factor × the full-batch loss at θ₀, times N/B
    # for minibatches (a batch mean of squares is at most N/B times the full mean).
    batch_factor = n / settings.batch_size if settings.optimizer == "sgd" else 1.0
    loss_limit = settings.divergence_factor * batch_factor * max(state["loss_reference"],
                                                                   np.finfo(float).tiny)
    checked = len(state["losses"])
    check_every = 1 if device.type == "cpu" else 64
    records = state["records"]
    step = state["step"]
    train_seconds = state["train_seconds"]
    order = None
    batch_pos = 0
    if settings.optimizer == "sgd":
        order, batch_pos = state.get("batch_order"), state.get("batch_pos", 0)

    def measure(k):
        u_hat = (_sample_transform(model, case, x_np, y_np, volume)
                 if settings.transform == "samples" else error_transform(model, case, axis, g_grid))
        drift, drift_w = parameter_drift(model, state["initial"])
        records.append({"step": k, "u_hat": u_hat, "drift": drift, "drift_w": drift_w})

    def snapshot(k):
        nonlocal checked
        if checked < k:
            _check_losses(losses, checked, k, loss_limit, ckpt_dir)
            checked = k
        for p in model.parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(f"parameters became NaN/inf before step {k}; "
                                       f"last good checkpoint: {_latest(ckpt_dir)}")
        state.update(step=k, model=model.state_dict(), optimizer=optimizer.state_dict(),
                     batch_rng=batch_gen.get_state(), losses=losses[:k].cpu().tolist(),
                     records=records, train_seconds=train_seconds + time.perf_counter() - t0,
                     batch_order=order, batch_pos=batch_pos)
        _write_checkpoint(ckpt_dir, state)

    compile_kw = {"compiled": True} if settings.compile else {}
    show = progress_enabled() if progress is None else progress
    from tqdm import tqdm

    bar = tqdm(total=total, initial=step, disable=not show, unit="step",
               desc=f"train {case.name}", dynamic_ncols=True)
    update_every = max(1, total // 500)
    t0 = time.perf_counter()
    reported = {r["step"] for r in records}
    resumed_at = step if resume else None
    report_set = set(report_steps)
    try:
        while True:
            if step in report_set and step not in reported:
                measure(step)
                reported.add(step)
            if step == total:
                break
            due = step in report_set or step % settings.checkpoint_every == 0 or \
                step == stop_after
            if due and step != resumed_at:
                snapshot(step)
            if step == stop_after:
                return None
            if settings.optimizer == "sgd":
                if order is None or batch_pos + settings.batch_size > n:
                    order = torch.randperm(n, generator=batch_gen)
                    batch_pos = 0
                idx = order[batch_pos:batch_pos + settings.batch_size].to(device)
                batch_pos += settings.batch_size
                loss = model.loss_and_grad(x[idx], y[idx], alpha, settings.block_rows,
                                           **compile_kw)
            else:
                loss = model.loss_and_grad(x, y, alpha, settings.block_rows, **compile_kw)
            losses[step] = loss
            optimizer.step()
            step += 1
            if step - checked >= check_every:
                _check_losses(losses, checked, step, loss_limit, ckpt_dir)
                checked = step
            if step % update_every == 0 or step == total:
                bar.set_postfix(loss=f"{float(losses[step - 1]):.3e}",
                                tau=f"{float(pde_time(step, lr, volume, settings.momentum)):.4g}")
                bar.update(step - bar.n)
    finally:
        bar.close()
    train_seconds += time.perf_counter() - t0
    with torch.no_grad():
        losses[total] = _full_loss(model, x, y, alpha, settings)
    _check_losses(losses, checked, total + 1, loss_limit, ckpt_dir)
    ntk_end = empirical_kernel(model, probe)
    snapshot_state = dict(state)
    snapshot_state.update(step=total, model=model.state_dict(), optimizer=optimizer.state_dict(),
                          batch_rng=batch_gen.get_state(), losses=losses.cpu().tolist(),
                          records=records, train_seconds=train_seconds,
                          batch_order=order, batch_pos=batch_pos)
    _write_checkpoint(ckpt_dir, snapshot_state)

    records = sorted(records, key=lambda r: r["step"])
    steps_arr = np.array([r["step"] for r in records])
    times = pde_time(steps_arr, lr, volume, settings.momentum)
    if settings.steps is None and settings.optimizer in ("gd", "sgd"):
        times = case.times.copy()  # exact by construction of the schedule
    loss_np = losses.cpu().numpy()
    attrs = {
        "train": _settings_record(settings), "stability": info, "box_volume": volume,
        "samples_total": n, "width": model.width,
        "time_mapping": _time_mapping_text(settings),
        "ntk_start_vs_end_relative_frobenius": float(
            np.linalg.norm(ntk_end - state["ntk_start"]) / np.linalg.norm(state["ntk_start"])),
        "device": _device_name(device), "torch_version": str(torch.__version__),
        "train_seconds": train_seconds, "steps_per_second": total / max(train_seconds, 1e-12),
        "measure_points_per_axis": int(axis.size), "transform": settings.transform,
    }
    if analytic is not None:
        independent = independent_units(settings)
        attrs["ntk_start"] = ntk_comparison(state["ntk_start"], analytic, independent)
        attrs["ntk_end"] = ntk_comparison(ntk_end, analytic, independent)
    variables = {
        "loss": (("step",), loss_np),
        "loss_time": (("step",), pde_time(np.arange(total + 1), lr, volume, settings.momentum)),
        "drift": (("time",), np.array([r["drift"] for r in records])),
        "drift_w": (("time",), np.array([r["drift_w"] for r in records])),
        "report_step": (("time",), steps_arr),
    }
    u_hat = np.stack([r["u_hat"] for r in records])
    ds = frequency_dataset(case, u_hat, "network", times=times, variables=variables,
                           attrs=attrs)
    path = write_dataset(ds, out / "measured.nc")
    fig_path = None
    if figure:
        from freqdyn.plots import save_figure
        from freqdyn.plots.training import training_figure

        fig_path = save_figure(training_figure(ds), out / "training.png")
    return TrainResult(dataset=ds, measured=path, figure=fig_path, steps=total,
                       seconds=time.perf_counter() - start_clock)


def _schedule(case, settings: TrainSettings, lam: float, volume: float):
    """(η, report steps) from the settings and the Gram's λ_max."""
    if settings.lr is not None:
        lr_max = settings.lr
    elif settings.optimizer in ("gd", "sgd"):
        lr_max = settings.lr_fraction * stability_bound(lam, settings.momentum)
    else:
        lr_max = 1e-3
    if settings.steps is not None:
        steps = np.unique(np.round(np.linspace(0, settings.steps, settings.reports)).astype(int))
        return lr_max, [int(s) for s in steps]
    return report_schedule(case.times, lr_max, volume, settings.momentum)


def _check_losses(losses, start, stop, limit, ckpt_dir) -> None:
    """Raise :class:`TrainingDiverged` if a loss in [start, stop) is NaN/inf or > ``limit``."""
    chunk = losses[start:stop].cpu().numpy()
    bad = np.nonzero(~np.isfinite(chunk) | (chunk > limit))[0]
    if bad.size:
        k = start + int(bad[0])
        for path in checkpoint_files(ckpt_dir):  # they hold θ_k or later: not good
            if int(path.stem.split("-")[1]) >= k:
                path.unlink()
        raise TrainingDiverged(
            f"training diverged at step {k}: loss {chunk[bad[0]]:.4g} exceeds the limit "
            f"{limit:.4g} (train.divergence_factor × the initial loss). Lower train.lr; "
            f"last good checkpoint: {_latest(ckpt_dir)}")


def _latest(folder: Path) -> str:
    files = checkpoint_files(folder)
    return str(files[-1]) if files else "none"


def _full_loss(model, x, y, alpha, settings) -> float:
    f = model.evaluate(x, settings.block_rows)
    r = (f - y).double()
    return float(0.5 * alpha * r.dot(r) / x.shape[0])


def _sample_transform(model, case, x_np, y_np, volume) -> np.ndarray:
    """û by the direct sum over the training samples, weight (2R)^d/N each."""
    m64 = as_float64(model)
    dev = next(m64.parameters()).device
    f = m64.evaluate(torch.from_numpy(x_np).to(dev)).cpu().numpy()
    xi = tensor_grid(case.xi_axes()).reshape(-1, case.dim)
    u_hat = nudft(f - y_np, x_np, volume / x_np.shape[0], xi)
    return u_hat.reshape(tuple(case.points))


def _time_mapping_text(settings: TrainSettings) -> str:
    base = "tau = lr * step / ((1 - momentum) * (2R)^d) for loss (alpha/2N) sum (f - g)^2"
    if settings.optimizer in ("adam", "adamw"):
        return base + "; nominal only: adaptive optimiser, no PDE-time mapping"
    if settings.momentum:
        return base + "; asymptotic for heavy-ball momentum"
    return base + "; exact for gradient descent in the NTK limit"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


__all__ = ["TrainSettings", "TrainResult", "TrainingDiverged", "StabilityWarning",
           "build_model", "centered_targets", "check_learning_rate", "independent_units",
           "pde_time", "report_schedule", "stability_bound", "train", "train_settings",
           "training_samples"]
