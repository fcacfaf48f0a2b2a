"""``freqdyn train``: train a case's network in PDE time and measure its error transform.

The loss is L = (α/2N) Σ_i (f(x_i) − g(x_i))² with α the case's loss scale: a mean of
squares that estimates (α/2)∫_{box}(f − g)² dx / (2R)^d (with ``f0 = "centered"``, f
stands for f − f₀ throughout).  Steps map to PDE time by :func:`freqdyn.nets.schedule.
pde_time` (docs/theory.md §8); the ``[train]`` table is read by
:func:`freqdyn.nets.settings.train_settings`.

The run goes through the one training loop (:class:`freqdyn.nets.loop.TrainingLoop`)
with these callbacks: the run's constants (η, report steps, θ₀, NTK at θ₀, loss limit),
the report measurements (û(ξ, τ) and the parameter drift at each report step), the loss
history with its divergence limit, and, for minibatch SGD, the batch order.  Checkpoints
are written at each report and every ``checkpoint_every`` steps; a run started again into
the same folder resumes from the newest one (and says so), giving the same result, bit for
bit on the CPU, as an uninterrupted run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

import freqdyn.memory as memory
from freqdyn import time_budget
from freqdyn.errors import InputError
from freqdyn.inputs.fourier import nudft, relative_l2, tensor_grid
from freqdyn.nets.cost import TrainingCost, timed, training_cost
from freqdyn.nets.data_training import data_errors, data_samples, evaluate_everywhere
from freqdyn.nets.lfp_net import LFP_MODELS
from freqdyn.nets.loop import Callback, Checkpoints, LossGuard, TrainingLoop
from freqdyn.nets.measure import (
    analytic_kernel,
    as_float64,
    error_transform,
    evaluate_on_grid,
    lfp_kernel,
    measurement_axis,
    ntk_comparison,
    parameter_drift,
    probe_points,
)
from freqdyn.nets.passes import NetworkPass, sample_layout
from freqdyn.nets.rkc import ChebyshevFlow
from freqdyn.nets.schedule import check_learning_rate, pde_time, schedule, time_mapping_text
from freqdyn.nets.settings import TrainSettings, train_settings
from freqdyn.nets.setup import (
    build_model,
    build_optimizer,
    independent_units,
    training_memory,
    training_samples,
)
from freqdyn.nets.twin import LinearTwin
from freqdyn.progress import say
from freqdyn.results import (
    UNITS_U_HAT,
    FolderLock,
    frequency_dataset,
    write_dataset,
    xi_dims,
)


@dataclass
class TrainResult:
    """What :func:`train` returns: the measured dataset and where it was written."""

    dataset: object
    measured: Path
    steps: int
    seconds: float
    resumed_from: int | None = None
    #: ``training.png`` when :func:`freqdyn.runs.training.train_to` drew it
    figure: Path | None = None


class RunConstants(Callback):
    """What a run fixes at θ₀ and keeps through resumes (η, schedule, θ₀, NTK₀, limits)."""

    def __init__(self, values: dict):
        self.values = values

    def state_dict(self):
        return self.values

    def load_state_dict(self, state):
        self.values = state


class Reports(Callback):
    """At each report step: the measured û(ξ, τ) and the drift ‖θ_τ − θ₀‖/‖θ₀‖."""

    def __init__(self, report_steps, measure):
        self.report_steps, self.measure = set(report_steps), measure
        self.records: list[dict] = []

    def on_state(self, loop, step):
        if step in self.report_steps and step not in {r["step"] for r in self.records}:
            counters = getattr(loop.optimizer, "counters", None)  # a flow integrator's
            self.records.append({**self.measure(step), "gradients": step if counters is None
                                 else int(counters["evaluations"])})

    def state_dict(self):
        return self.records

    def load_state_dict(self, state):
        self.records = list(state)


class Clock(Callback):
    """Seconds spent in training steps, over this process and the earlier ones."""

    def __init__(self):
        self.before, self.start, self.start_step, self.steps_here = 0.0, None, 0, 0

    def on_start(self, loop):
        self.start, self.start_step = time.perf_counter(), loop.step

    def seconds_here(self) -> float:
        return time.perf_counter() - self.start if self.start is not None else 0.0

    def on_end(self, loop):
        self.steps_here = loop.step - self.start_step

    def state_dict(self):
        return {"seconds": self.before + self.seconds_here()}

    def load_state_dict(self, state):
        self.before = state["seconds"]


class Batches(Callback):
    """Minibatches of a fresh permutation per epoch, drawn from the loop's generator."""

    def __init__(self, n: int, size: int, generator: torch.Generator):
        self.n, self.size, self.generator = n, size, generator
        self.order, self.pos = None, 0

    def next(self) -> torch.Tensor:
        if self.order is None or self.pos + self.size > self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.generator), 0
        idx = self.order[self.pos:self.pos + self.size]
        self.pos += self.size
        return idx

    def state_dict(self):
        return {"order": self.order, "pos": self.pos}

    def load_state_dict(self, state):
        self.order, self.pos = state["order"], state["pos"]


def run_fingerprint(case, settings: TrainSettings) -> str:
    """What a checkpoint must match to be resumed: the case text and the computed settings."""
    return json.dumps({"case": case.text, "train": settings.computation()}, sort_keys=True)


def train(case, out, *, resume: bool | None = None, overrides: dict | None = None,
          stop_after: int | None = None, progress: bool | None = None) -> TrainResult | None:
    """Train the case's network and write ``out/measured.nc``.

    The figure ``training.png`` is drawn by :func:`freqdyn.runs.training.train_to`
    (compute never imports figures).

    Reports at the case's ``[frequency] times`` (or, with ``steps``, at evenly spaced
    steps): the error transform û(ξ, τ), the drift ‖θ_τ − θ₀‖/‖θ₀‖, and the loss at every
    step.  ``resume``: None resumes when ``out/checkpoints`` holds a checkpoint of this run
    and starts afresh otherwise; True requires one; False refuses a folder that has one.
    ``stop_after`` ends the run (with a checkpoint) once that many steps are done in total
    and returns None.  Raises :class:`~freqdyn.errors.TrainingDiverged` if the loss
    becomes NaN/inf or exceeds ``divergence_factor`` times its initial value.
    """
    start_clock = time.perf_counter()
    out = Path(out)
    settings = train_settings(case, overrides)
    with FolderLock(out):
        checkpoints = Checkpoints(out / "checkpoints", run_fingerprint(case, settings),
                                  every=settings.checkpoint_every)
        have = bool(checkpoints.files())
        if resume is False and have:
            raise InputError("--out", f"{out} already holds checkpoints of a run; resume it "
                                      "(run the same command again) or choose another folder")
        if resume and not have:
            raise InputError("resume", f"no checkpoint in {checkpoints.folder}")
        return _train(case, settings, out, checkpoints, have, stop_after, progress,
                      start_clock)


def _samples(case, settings):
    """(x (N, d), y (N,), box volume V, transform layout or None, where in words)."""
    if case.is_data:  # the user's training samples (nets/data_training.py)
        x_np, y_np, volume, layout = data_samples(case)
        return x_np, y_np, volume, layout, f"the training samples of {case.target.path.name}"
    x_np = training_samples(case, settings)
    return (x_np, case.target(x_np), (2 * settings.R) ** case.dim, None,
            f"[-{settings.R:g}, {settings.R:g}]^{case.dim}")


def _loss_guard(constants, settings, batches, n, device) -> LossGuard:
    """The one divergence guard of a run: the loss may not exceed a limit (module text)."""
    # A batch mean of squares is at most N/B times the full mean: the limit scales with it.
    batch_factor = n / settings.batch_size if batches is not None else 1.0
    stability = constants["stability"]
    unstable = (batches is None and "lr_stability_bound" in stability
                and stability["lr"] > stability["lr_stability_bound"])
    if unstable:  # full-batch GD beyond the bound: the top mode grows, so any rise of the
        # loss above its initial value is the instability, not a transient (the run ends 3)
        limit, hint = (1 + 1e-6) * constants["loss_reference"], (  # (rounding of θ₀'s loss)
            f"(the initial loss: η = {stability['lr']:.4g} exceeds the stability bound "
            f"{stability['lr_stability_bound']:.4g}, so a rising loss is divergence) "
            "Lower train.lr below the bound; ")
    else:
        limit, hint = (settings.divergence_factor * batch_factor * constants["loss_reference"],
                       "(train.divergence_factor × the initial loss) Lower train.lr; ")
    return LossGuard(limit=max(limit, np.finfo(float).tiny),
                     check_every=1 if device.type == "cpu" else 64, keep=True, hint=hint)


def _centred(case, settings, model, net, x, x_np, y, y_np, layout):
    """(θ₀ in float64 or None, y, y_np): with ``f0 = "centered"`` θ₀ (rebuilt from the seed,
    also on resume) fixes the shifted targets g + f₀ on the training samples (and, in
    :func:`_measurement`, on the measurement grid)."""
    if settings.f0 != "centered":
        return None, y, y_np
    initial = as_float64(model)
    f0 = net.evaluate()
    y = y + f0.to(y.dtype)
    y_np = y_np + (f0.double().cpu().numpy() if settings.dtype == "float64" else
                   NetworkPass(initial, _as64(settings), x_np, x.double(),
                               case.dim, layout).evaluate().cpu().numpy())
    return initial, y, y_np


def _twin(case, settings, model, initial, x_np, y_np, lr, report_steps, axis, g_grid):
    """The run's linearised twin (:mod:`freqdyn.nets.twin`), or None (off, or a data case:
    the twin measures on an expression's grid).  θ₀ is rebuilt from the seed, so a resumed
    run's twin starts from the same model."""
    if not settings.twin or case.is_data:
        return None
    return LinearTwin(as_float64(model) if initial is None else initial,
                      sample_layout(settings, x_np, case.dim), y_np, case.loss_scale,
                      lambda params: build_optimizer(params, settings, lr), report_steps,
                      axis, g_grid, case.xi_axes())


def _measurement(case, settings, model, initial, constants, x_np, y_np, volume):
    """(measure(step) → the report's record, the measurement axis, g on its grid or None):
    what is measured at each report (û, or the data MSEs and spectrum; the drift)."""
    axis = measurement_axis(case, settings.R, points=constants["measure_points"])
    if case.is_data:
        f0_all = None if initial is None else evaluate_everywhere(initial, case.target)
        g_grid = None
    else:
        g_grid = case.target(tensor_grid([axis] * case.dim))
        if initial is not None:
            g_grid = g_grid + evaluate_on_grid(initial, axis, case.dim)

    def measure(step):
        if case.is_data:
            errors = data_errors(model, case.target, f0_all)
        elif settings.transform == "samples":
            errors = {"u_hat": _sample_transform(model, case, x_np, y_np, volume)}
        else:
            errors = {"u_hat": error_transform(model, case, axis, g_grid)}
        drift, drift_w = parameter_drift(model, constants["initial"])
        return {"step": step, **errors, "drift": drift, "drift_w": drift_w}

    return measure, axis, g_grid


def _train(case, settings, out, checkpoints, resume, stop_after, progress, start_clock):
    device, dtype = torch.device(settings.device), settings.torch_dtype
    x_np, y_np, volume, layout, where = _samples(case, settings)
    x = torch.from_numpy(x_np).to(device, dtype)
    y = torch.from_numpy(y_np).to(device, dtype)
    n = x.shape[0]
    alpha = case.loss_scale
    label = f"train {case.name}"

    if settings.model == "fourier" or settings.model in LFP_MODELS:
        memory.require("train.width", training_memory(settings, case.dim),
                       f"training m = {settings.width} units in d = {case.dim}",
                       "use a smaller train.width")
    model = build_model(case, settings)
    net = NetworkPass(model, settings, x_np, x, case.dim, layout)
    say(f"{label}: m = {settings.width}, {n} samples on {where}, {net.backend} pass, "
        f"{settings.dtype}, {settings.device}", progress)
    initial, y, y_np = _centred(case, settings, model, net, x, x_np, y, y_np, layout)
    probe = probe_points(case, min(settings.R, case.target.radius) / 2, settings.probe_points)

    if resume:
        saved, _ = checkpoints.load_latest(map_location=device)
        constants = saved["callbacks"][0]
    else:
        say(f"{label}: set-up (λ_max of the NTK Gram, the schedule, NTK at θ₀)", progress)
        constants = _constants(case, settings, model, net, y, probe, volume)
    lr, report_steps = constants["lr"], constants["report_steps"]
    total = report_steps[-1]
    checkpoints.at = frozenset(report_steps)
    say(f"{label}: η = {lr:.4g}, {total} steps to τ = "
        f"{float(pde_time(total, lr, volume, settings.momentum)):.4g}", progress)

    measure, axis, g_grid = _measurement(case, settings, model, initial, constants, x_np,
                                         y_np, volume)
    batch_gen = torch.Generator().manual_seed(settings.seed + 1)
    batches = Batches(n, settings.batch_size, batch_gen) if settings.optimizer == "sgd" else None
    guard = _loss_guard(constants, settings, batches, n, device)
    reports, clock = Reports(report_steps, measure), Clock()
    callbacks = [RunConstants(constants), reports, guard, clock]
    twin = _twin(case, settings, model, initial, x_np, y_np, lr, report_steps, axis, g_grid)
    if twin is not None:
        callbacks.append(twin)
    if batches is not None:
        callbacks.append(batches)
    def objective(step):
        return net.loss_and_grad(y, alpha, None if batches is None else batches.next().to(device))

    _hold_to_budget(case, settings, constants, volume, net, y, measure, twin, reports,
                    saved["step"] if resume else 0, label, progress)

    optimizer = _stepper(model, settings, constants, lr, volume)
    loop = TrainingLoop(model, optimizer, objective, steps=total,
                        callbacks=callbacks, checkpoints=checkpoints,
                        generators=[batch_gen], label=label, progress=progress)
    done = loop.run(resume=resume, stop_after=stop_after)
    if done < total:
        return None
    _require_finite(model)
    guard.pending.append(torch.tensor(_full_loss(net, y, alpha)))
    guard.flush(loop)  # the loss of the final state, checked like the others
    losses = np.array(guard.history)
    records = sorted(reports.records, key=lambda r: r["step"])
    steps_arr = np.array([r["step"] for r in records])
    times = pde_time(steps_arr, lr, volume, settings.momentum)
    if settings.steps is None and settings.optimizer in ("gd", "sgd"):
        times = case.times.copy()  # exact by construction of the schedule
    attrs = _result_attrs(case, settings, constants, model, net, probe, optimizer, loop,
                          clock, total, volume, n, axis, device)
    variables, u_hat = _result_variables(case, settings, records, steps_arr, losses, lr,
                                         volume, total, twin)
    if twin is not None:
        attrs["twin_final_loss"] = twin.loss()
    if case.is_data:
        attrs.update(case.target.result_attrs(), twin="not run on data cases")
    ds = frequency_dataset(case, u_hat, "network", times=times, variables=variables,
                           attrs=attrs, xi_axes=case.target.dft_axes() if case.is_data
                           else None)
    path = write_dataset(ds, out / "measured.nc")
    return TrainResult(dataset=ds, measured=path, steps=total,
                       seconds=time.perf_counter() - start_clock,
                       resumed_from=loop.resumed_from)


def _timed_cost(case, settings, constants, volume, net, y, measure,
                twin) -> tuple[TrainingCost, dict]:
    """(The run's cost (:mod:`freqdyn.nets.cost`) from one timed gradient, twin gradient
    and measurement, the measurement of θ₀ itself)."""
    def gradient():
        for p in net.model.parameters():
            p.grad = None
        loss = net.loss_and_grad(y, case.loss_scale)
        if loss.requires_grad:
            loss.backward()

    seconds = min(timed(gradient), timed(gradient))  # the second without the warm-up
    for p in net.model.parameters():
        p.grad = None
    if settings.optimizer == "sgd":
        seconds *= settings.batch_size / y.shape[0]
    first = {}
    measure_seconds = timed(lambda: first.update(measure(0)))
    cost = training_cost(settings, constants, volume, seconds,
                         0.0 if twin is None else timed(twin.gradient), measure_seconds)
    return cost, first


#: What a run refused by its time budget may change.
TIME_ADVICE = ("lower train.width or the times, use train.integrator = \"rkc\" for "
               "full-batch gd, or raise --max-minutes")


def _hold_to_budget(case, settings, constants, volume, net, y, measure, twin, reports,
                    done: int, label: str, progress) -> None:
    """Say the run's cost and refuse it when it does not fit ``--max-minutes``.  The timed
    measurement of θ₀ is the run's first report (so timing it costs nothing)."""
    cost, first = _timed_cost(case, settings, constants, volume, net, y, measure, twin)
    left = 1.0 - done / max(int(constants["report_steps"][-1]), 1)
    say(f"{label}: {cost.line()}" + (f"; {left:.0%} of it left" if done else ""), progress)
    time_budget.require_time(left * cost.seconds, f"training {case.name} at m = {settings.width}",
                             TIME_ADVICE)
    if not done:
        reports.records.append({**first, "gradients": 0})


def estimate_training(case, overrides: dict | None = None) -> TrainingCost:
    """The cost of training ``case`` with ``overrides`` from the start, without training:
    the run's own set-up (θ₀, λ_max, the schedule) and timed single calls."""
    settings = train_settings(case, overrides)
    device, dtype = torch.device(settings.device), settings.torch_dtype
    x_np, y_np, volume, layout, _ = _samples(case, settings)
    x = torch.from_numpy(x_np).to(device, dtype)
    y = torch.from_numpy(y_np).to(device, dtype)
    model = build_model(case, settings)
    net = NetworkPass(model, settings, x_np, x, case.dim, layout)
    initial, y, y_np = _centred(case, settings, model, net, x, x_np, y, y_np, layout)
    probe = probe_points(case, min(settings.R, case.target.radius) / 2, settings.probe_points)
    constants = _constants(case, settings, model, net, y, probe, volume)
    measure, axis, g_grid = _measurement(case, settings, model, initial, constants, x_np,
                                         y_np, volume)
    twin = _twin(case, settings, model, initial, x_np, y_np, constants["lr"],
                 constants["report_steps"], axis, g_grid)
    return _timed_cost(case, settings, constants, volume, net, y, measure, twin)[0]


def require_networks_fit(jobs, what: str) -> None:
    """With a time budget (``--max-minutes``): estimate each ``(case, overrides, count)``
    once (:func:`estimate_training`) and refuse their total, before any of them trains,
    when it does not fit.  Without a budget nothing is estimated here (each run still says
    its own cost as it starts)."""
    if time_budget.seconds_left() is None or not jobs:
        return
    total = sum(count * estimate_training(case, overrides).seconds
                for case, overrides, count in jobs)
    say(f"{what}: about {time_budget.duration(total)} of training in all")
    time_budget.require_time(total, what, TIME_ADVICE)


def _stepper(model, settings, constants: dict, lr: float, volume: float):
    """The flow integrator (``integrator = "rkc"``: :class:`ChebyshevFlow` on the Gram's
    λ_max) or the optimizer of ``settings``."""
    if settings.integrator == "rkc":
        return ChebyshevFlow(model.parameters(), macro_step=lr / volume, scale=volume,
                             radius=volume * constants["stability"]["gram_lambda_max"],
                             rtol=settings.rtol)
    return build_optimizer(model, settings, lr)


def _require_finite(model) -> None:
    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise InputError("train", "parameters are NaN/inf at the end of training")


def _result_attrs(case, settings, constants, model, net, probe, optimizer, loop, clock, total,
                  volume, n, axis, device) -> dict:
    """measured.nc's attributes: the settings, the stability check, the clocks and counts,
    and the NTK at θ₀ and at the end against the analytic kernel."""
    seconds_here = clock.seconds_here()
    train_seconds = clock.before + seconds_here
    ntk_end = net.ntk(probe)
    attrs = {
        "train": settings.record(), "stability": constants["stability"], "box_volume": volume,
        "samples_total": n, "width": model.width, "time_mapping": time_mapping_text(settings),
        "ntk_start_vs_end_relative_frobenius": float(
            np.linalg.norm(ntk_end - constants["ntk_start"])
            / np.linalg.norm(constants["ntk_start"])),
        "device": _device_name(device), "torch_version": str(torch.__version__),
        "train_seconds": train_seconds, "integrator": settings.integrator,
        "gradient_evaluations": (int(optimizer.counters["evaluations"])
                                 if settings.integrator == "rkc" else int(total)),
        "rkc": (json.dumps({k: optimizer.counters[k] for k in ("accepted", "rejected",
                                                                "max_stages")})
                if settings.integrator == "rkc" else ""),
        "steps_per_second": (clock.steps_here / seconds_here if clock.steps_here
                             else total / max(train_seconds, 1e-12)),
        "resumed_from_step": -1 if loop.resumed_from is None else loop.resumed_from,
        "measure_points_per_axis": int(axis.size), "transform": settings.transform,
        "backend": net.backend,
    }
    if settings.model == "fourier" or net.lfp:
        analytic = (analytic_kernel(case, probe, settings.train_w) if not net.lfp
                    else lfp_kernel(case, settings, probe))
        independent = independent_units(settings)
        attrs["ntk_start"] = ntk_comparison(constants["ntk_start"], analytic, independent)
        attrs["ntk_end"] = ntk_comparison(ntk_end, analytic, independent)
    return attrs


def _result_variables(case, settings, records, steps_arr, losses, lr, volume, total, twin):
    """measured.nc's variables (loss per step; drift, report step, the twin's û and the data
    MSEs per report) and the network's û per report."""
    variables = {
        "loss": (("step",), losses, {"long_name": "training loss (alpha/2N) sum (f - g)^2",
                                     "units": "1"}),
        "loss_time": (("step",), pde_time(np.arange(total + 1), lr, volume, settings.momentum),
                      {"long_name": "PDE time of each step", "units": "PDE time"}),
        "drift": (("time",), np.array([r["drift"] for r in records]),
                  {"long_name": "relative parameter drift |theta - theta0|/|theta0|",
                   "units": "1"}),
        "drift_w": (("time",), np.array([r["drift_w"] for r in records]),
                    {"long_name": "relative drift of the frequencies w", "units": "1"}),
        "report_step": (("time",), steps_arr, {"long_name": "optimizer step of each report",
                                               "units": "steps"}),
        "gradient_evaluations": (("time",), np.array([r.get("gradients", r["step"])
                                                      for r in records]),
                                 {"long_name": "gradient evaluations to reach each report",
                                  "units": "1"}),
    }
    u_hat = np.stack([r["u_hat"] for r in records])
    if twin is not None:
        twin_u = np.stack([r["u_hat"] for r in sorted(twin.records, key=lambda r: r["step"])])
        dims = ("time", *xi_dims(case.dim))
        text = "the linearised twin's error transform (docs/theory.md §12)"
        variables["twin_u_hat_real"] = (dims, twin_u.real, {"long_name": f"real part of {text}",
                                                            "units": UNITS_U_HAT})
        variables["twin_u_hat_imag"] = (dims, twin_u.imag, {"long_name": f"imaginary part of "
                                                            f"{text}", "units": UNITS_U_HAT})
        variables["rel_l2_twin_vs_net"] = (
            ("time",), relative_l2(twin_u, u_hat, axes=tuple(range(1, u_hat.ndim))),
            {"long_name": "|u_hat_twin - u_hat| / |u_hat| over xi: the beyond-linear part",
             "units": "1"})
    if case.is_data:
        for key in ("train_mse", "test_mse"):
            variables[key] = (("time",), np.array([r[key] for r in records]), {
                "long_name": f"the network's mean squared error over the "
                             f"{'training' if key == 'train_mse' else 'held-out'} samples",
                "units": "unit of y squared"})
    return variables, u_hat


def _constants(case, settings, model, net, y, probe, volume) -> dict:
    """The run's constants at θ₀: η and the report steps, θ₀, NTK₀, the loss at θ₀."""
    lam = net.gram_lambda_max(case.loss_scale)
    lr, report_steps = schedule(case, settings, lam, volume)
    info = check_learning_rate(lr, lam, settings.momentum) \
        if settings.optimizer in ("gd", "sgd") and settings.integrator == "steps" else \
        {"lr": lr, "gram_lambda_max": lam}
    return {"lr": lr, "report_steps": report_steps, "stability": info,
            "initial": {k: v.detach().to("cpu", torch.float64).clone()
                        for k, v in model.named_parameters()},
            "ntk_start": net.ntk(probe),
            "loss_reference": _full_loss(net, y, case.loss_scale),
            # the measurement grid is fixed at the start (from θ₀'s frequencies): a
            # resumed run must measure on the same points
            "measure_points": measurement_axis(case, settings.R, model,
                                               settings.measure_points).size}


def _full_loss(net, y, alpha) -> float:
    r = (net.evaluate() - y).double()
    return float(0.5 * alpha * r.dot(r) / y.shape[0])


def _as64(settings):

    return replace(settings, dtype="float64", nufft_tol=1e-13)


def _sample_transform(model, case, x_np, y_np, volume) -> np.ndarray:
    """û by the direct sum over the training samples, weight (2R)^d/N each."""
    m64 = as_float64(model)
    dev = next(m64.parameters()).device
    f = m64.evaluate(torch.from_numpy(x_np).to(dev)).cpu().numpy()
    xi = tensor_grid(case.xi_axes()).reshape(-1, case.dim)
    u_hat = nudft(f - y_np, x_np, volume / x_np.shape[0], xi)
    return u_hat.reshape(tuple(case.points))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
