"""Committee-machine toy model of lazy-to-rich grokking (Kumar, Bordelon, Gershman, Pehlevan).

Model, with readouts fixed to one and weights ``W = (w_1, ..., w_N)`` (rows), ``w_i ∈ R^D``:

    f(W, x) = (α/N) Σ_i φ(w_i·x),   φ(h) = h + (ε/2) h²,

trained on the **centered** predictor f̃(x) = f(W, x) − f(W₀, x) (or on f itself) with the
mean-squared error L = (1/P) Σ_μ (f̃(x_μ) − y_μ)² by full-batch gradient descent at learning
rate ``lr = η₀ N / α²``.  The factor N undoes the 1/N output scaling (mean-field
parametrization), the 1/α² keeps df/dt at t = 0 independent of α.  Kumar et al. write the rule
as η = η₀/α² "times N for 1/N models"; the two statements are the same rule.

Teacher: x ~ N(0, I_D / D), β ~ N(0, I_D), y = s (β·x)².  The paper's main task T1 is s = 1/2;
its sweep convention T1' (x ~ N(0, I_D), pre-activation w·x/√D, y = (β·x/√D)²) is the same
problem with s = 1, so both are one generator with ``target_scale = s``.

Sufficient statistics: w̄ = (1/N) Σ_i w_i and M = (1/N) Σ_i w_i w_iᵀ, so that
f(x) = α w̄·x + (αε/2) xᵀ M x.  The centered predictor has the same form with the *effective*
statistics w̄ − w̄₀ and M − M₀.  For Gaussian x the population loss is exactly

    L = ¼ (2s|β|²/D − αε Tr M/D)²                 (variance error)
      + 1/(2D²) ‖αε M − 2s ββᵀ‖_F²                (misalignment error)
      + α² |w̄|² / D                               (power in linear modes),

with (w̄, M) the effective statistics (Kumar et al. 2024, App. B, written there for s = 1/2).

Kernel.  Under lr = η₀N/α² one GD step moves the outputs by Δf = −(2η₀/P) K r on any point,
with r the training residuals and

    K(x, x') = (x·x') [1 + ε w̄·(x + x') + ε² xᵀ M x'],      K₀(x, x') = x·x' + ε² (x·x')²,

the empirical NTK divided by α²/N (actual, not effective, statistics) and its infinite-width
value at initialization (w̄ = 0, M = I).  Kernel gradient descent with K₀ is therefore the
N → ∞, α → ∞ (lazy) limit of the network's dynamics, step for step.

All functions accept leading batch dimensions ``...`` (configurations trained in lock-step);
per-configuration scalars (α, ε, η₀) are tensors of shape ``...``.  Units: losses are squared
label units; steps are full-batch GD steps ("epochs").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from freqdyn.errors import InputError
from freqdyn.nets.loop import Callback, TrainingLoop
from freqdyn.predict.kernel_flow import kernel_descent


@dataclass(frozen=True)
class TeacherTask:
    """Quadratic single-index teacher y = s (β·x)² with x ~ N(0, I_D / D).

    Shapes: ``beta (..., D)``, ``x_train (..., P, D)``, ``y_train (..., P)``,
    ``x_test (..., P_test, D)``, ``y_test (..., P_test)``; ``target_scale`` is s.
    """

    beta: torch.Tensor
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    target_scale: float

    @property
    def dim(self) -> int:
        return self.beta.shape[-1]

    @property
    def n_train(self) -> int:
        return self.x_train.shape[-2]


def teacher_target(x: torch.Tensor, beta: torch.Tensor, target_scale: float) -> torch.Tensor:
    """y = s (β·x)² for points x (..., P, D) and teacher β (..., D)."""
    return target_scale * (x @ beta.unsqueeze(-1)).squeeze(-1) ** 2


def teacher_task(dim: int, n_train: int, n_test: int, generator: torch.Generator, *,
                 target_scale: float = 0.5, dtype=torch.float64) -> TeacherTask:
    """Draw β ~ N(0, I_D), then the training and test inputs x ~ N(0, I_D / D), in that order."""
    for name, val in (("dim", dim), ("n_train", n_train), ("n_test", n_test)):
        if int(val) != val or val < 1:
            raise InputError(f"settings.{name}", f"must be a positive integer, got {val!r}")
    if not target_scale > 0:
        raise InputError("settings.target_scale", f"must be positive, got {target_scale!r}")
    beta = torch.randn(dim, generator=generator, dtype=dtype)
    x_train = torch.randn(n_train, dim, generator=generator, dtype=dtype) / dim**0.5
    x_test = torch.randn(n_test, dim, generator=generator, dtype=dtype) / dim**0.5
    return TeacherTask(beta, x_train, teacher_target(x_train, beta, target_scale),
                       x_test, teacher_target(x_test, beta, target_scale), target_scale)


def stack_tasks(tasks: Sequence[TeacherTask]) -> TeacherTask:
    """Stack equally sized tasks along a new leading batch dimension."""
    scales = {t.target_scale for t in tasks}
    if len(scales) != 1:
        raise InputError("settings.target_scale", "stacked tasks must share one target scale")
    return TeacherTask(*(torch.stack([getattr(t, k) for t in tasks])
                         for k in ("beta", "x_train", "y_train", "x_test", "y_test")),
                       scales.pop())


def activation(h: torch.Tensor, eps) -> torch.Tensor:
    """φ(h) = h + (ε/2) h²."""
    return h + 0.5 * eps * h**2


def sufficient_statistics(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w̄, M) = ((1/N) Σ w_i, (1/N) Σ w_i w_iᵀ) for W (..., N, D)."""
    n = weights.shape[-2]
    return weights.mean(-2), weights.transpose(-1, -2) @ weights / n


def output_from_statistics(w_bar: torch.Tensor, second: torch.Tensor, x: torch.Tensor,
                           alpha, eps) -> torch.Tensor:
    """f(x) = α w̄·x + (αε/2) xᵀ M x for statistics (w̄ (..., D), M (..., D, D)) at x (..., P, D)."""
    alpha, eps = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (alpha, eps))
    linear = (x @ w_bar.unsqueeze(-1)).squeeze(-1)
    quadratic = ((x @ second) * x).sum(-1)
    return alpha[..., None] * (linear + 0.5 * eps[..., None] * quadratic)


@dataclass(frozen=True)
class LossDecomposition:
    """The three terms of the exact population loss (each of shape ``...``)."""

    variance: torch.Tensor
    misalignment: torch.Tensor
    linear: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.variance + self.misalignment + self.linear


def loss_decomposition(w_bar: torch.Tensor, second: torch.Tensor, beta: torch.Tensor,
                       alpha, eps, target_scale: float) -> LossDecomposition:
    """Exact E_x[(y − f)²] for f = α w̄·x + (αε/2) xᵀMx, y = s(β·x)², x ~ N(0, I/D).

    variance = ¼ (2s|β|²/D − αε Tr M / D)², misalignment = ‖αεM − 2sββᵀ‖_F² / (2D²),
    linear = α²|w̄|²/D.  Pass the effective statistics (w̄ − w̄₀, M − M₀) for a centered model.
    """
    alpha, eps = (torch.as_tensor(v, dtype=beta.dtype, device=beta.device) for v in (alpha, eps))
    d = beta.shape[-1]
    teacher = 2 * target_scale * beta.unsqueeze(-1) * beta.unsqueeze(-2)
    learned = (alpha * eps)[..., None, None] * second
    variance = 0.25 * ((teacher.diagonal(dim1=-2, dim2=-1).sum(-1)
                        - learned.diagonal(dim1=-2, dim2=-1).sum(-1)) / d) ** 2
    misalignment = ((learned - teacher) ** 2).sum((-2, -1)) / (2 * d**2)
    linear = alpha**2 * (w_bar**2).sum(-1) / d
    return LossDecomposition(variance, misalignment, linear)


def population_loss_from_weights(weights: torch.Tensor, beta: torch.Tensor, alpha, eps,
                                 target_scale: float,
                                 reference: torch.Tensor | None = None) -> torch.Tensor:
    """Exact E_x[(y − f̃)²] from the individual neurons, by Gaussian moments (Isserlis).

    f̃ = (α/N) Σ_i [φ(w_i·x) − φ(w⁰_i·x)] (the second sum only when ``reference`` W₀ is given).
    With pre-activations h_j = u_j·x of covariance C_jk = u_j·u_k/D and h_β = β·x:
    E[φ(h_j)φ(h_k)] = C_jk + (ε²/4)(C_jj C_kk + 2C_jk²), E[h_β² φ(h_j)] = (ε/2)(C_ββ C_jj + 2C_βj²),
    E[y²] = 3 s² C_ββ².  Costs O(N²D); an independent check of ``loss_decomposition``.
    """
    alpha, eps = (torch.as_tensor(v, dtype=weights.dtype, device=weights.device)
                  for v in (alpha, eps))
    n, d = weights.shape[-2], weights.shape[-1]
    units, signs = weights, torch.ones(n, dtype=weights.dtype, device=weights.device)
    if reference is not None:
        units = torch.cat([weights, reference], dim=-2)
        signs = torch.cat([signs, -signs])
    cov = units @ units.transpose(-1, -2) / d
    cov_beta = (units @ beta.unsqueeze(-1)).squeeze(-1) / d
    var_beta = (beta**2).sum(-1) / d
    diag = cov.diagonal(dim1=-2, dim2=-1)
    e2 = eps[..., None, None] ** 2
    pair = cov + 0.25 * e2 * (diag.unsqueeze(-1) * diag.unsqueeze(-2) + 2 * cov**2)
    f_sq = (alpha / n) ** 2 * (signs @ pair @ signs)
    cross = 0.5 * eps[..., None] * (var_beta[..., None] * diag + 2 * cov_beta**2)
    y_f = target_scale * (alpha / n) * (cross @ signs)
    y_sq = 3 * target_scale**2 * var_beta**2
    return y_sq - 2 * y_f + f_sq


def ntk_gram(x1: torch.Tensor, x2: torch.Tensor, w_bar: torch.Tensor, second: torch.Tensor,
             eps) -> torch.Tensor:
    """K(x, x') = (x·x')[1 + ε w̄·(x + x') + ε² xᵀMx'], the empirical NTK over α²/N.

    x1 (..., P1, D), x2 (..., P2, D) → (..., P1, P2); (w̄, M) are the actual statistics.
    """
    eps = torch.as_tensor(eps, dtype=x1.dtype, device=x1.device)[..., None, None]
    dot = x1 @ x2.transpose(-1, -2)
    u1 = (x1 @ w_bar.unsqueeze(-1))
    u2 = (x2 @ w_bar.unsqueeze(-1)).transpose(-1, -2)
    return dot * (1 + eps * (u1 + u2) + eps**2 * (x1 @ second @ x2.transpose(-1, -2)))


def k0_gram(x1: torch.Tensor, x2: torch.Tensor, eps) -> torch.Tensor:
    """K₀(x, x') = x·x' + ε²(x·x')², the infinite-width NTK at initialization (over α²/N)."""
    dot = x1 @ x2.transpose(-1, -2)
    eps = torch.as_tensor(eps, dtype=x1.dtype, device=x1.device)[..., None, None]
    return dot + eps**2 * dot**2


def kernel_alignment(gram: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Kernel–label alignment, authors' code variant (Kumar et al. 2024).

    y_c = y − mean(y); K_c = K minus its column means; A = y_cᵀ K_c y_c / (‖K_c‖_F ‖y_c‖²).
    gram (..., n, n), labels (..., n) → (...).  Dimensionless, invariant to the kernel's scale.
    """
    yc = labels - labels.mean(-1, keepdim=True)
    kc = gram - gram.mean(-2, keepdim=True)
    num = (yc.unsqueeze(-2) @ kc @ yc.unsqueeze(-1)).squeeze((-2, -1))
    return num / (torch.linalg.matrix_norm(kc) * (yc**2).sum(-1))


def kernel_regression_losses(gram_train: torch.Tensor, gram_test_train: torch.Tensor,
                             y_train: torch.Tensor, y_test: torch.Tensor,
                             ridge: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test MSE of ŷ(x) = K(x, X)(K(X, X) + ridge·I)⁻¹ y (ridgeless by default)."""
    eye = torch.eye(gram_train.shape[-1], dtype=gram_train.dtype, device=gram_train.device)
    coef = torch.linalg.solve(gram_train + ridge * eye, y_train.unsqueeze(-1))
    train = ((gram_train @ coef).squeeze(-1) - y_train) ** 2
    test = ((gram_test_train @ coef).squeeze(-1) - y_test) ** 2
    return train.mean(-1), test.mean(-1)


def task_difficulty(gram_train: torch.Tensor, y_train: torch.Tensor) -> torch.Tensor:
    """yᵀ K(X, X)⁻¹ y (Kumar et al. 2024): ≫ 1 for a task the kernel finds hard; near the kernel
    limit it equals the parameter displacement |w − w₀|² needed to fit the labels."""
    coef = torch.linalg.solve(gram_train, y_train.unsqueeze(-1)).squeeze(-1)
    return (y_train * coef).sum(-1)


def kernel_descent_losses(gram_train: torch.Tensor, gram_test_train: torch.Tensor,
                          y_train: torch.Tensor, y_test: torch.Tensor, step_size,
                          steps: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/test MSE of kernel gradient descent f_{t+1} = f_t − s K (f_t − y), f_0 = 0.

    The error u = f − y on the training points follows u_t = (1 − sK)^t u_0 with u_0 = −y,
    and the test outputs f_t(x) = −K(x, X) V Λ⁻¹(1 − (1 − sΛ)^t)Vᵀ u_0: the one kernel
    engine, :func:`freqdyn.predict.kernel_flow.kernel_descent`.  With s = 2η₀/P this is
    the centered network's lazy (α → ∞) limit.  Returns two tensors (..., len(steps)).
    """

    s = torch.as_tensor(step_size, dtype=gram_train.dtype, device=gram_train.device)
    lam_max = torch.linalg.eigvalsh(gram_train)[..., -1]
    if bool((s * lam_max >= 2).any()):
        raise InputError("settings.eta0", "kernel gradient descent diverges: step × λ_max ≥ 2")
    u_train, f_test, _ = kernel_descent(gram_train, -y_train, np.asarray(steps), step=s,
                                        cross=gram_test_train)
    train = (u_train ** 2).mean(-1)
    test = ((f_test - y_test.unsqueeze(-2)) ** 2).mean(-1)
    return train, test


@dataclass
class CommitteeRun:
    """Curves logged by :func:`train_committee`: ``curves[key]`` has shape (..., len(steps)).

    Keys: ``train_loss``, ``test_loss`` (MSE on the finite sets), ``population_loss`` (exact,
    = sum of the three terms), ``variance_term``, ``misalignment_term``, ``linear_term``,
    ``param_norm`` (‖W‖_F), ``relative_change`` (‖W − W₀‖_F/‖W₀‖_F), and optionally
    ``twin_train_loss``, ``twin_test_loss``, ``twin_population_loss`` (linearised model),
    ``alignment`` (test-set NTK alignment), ``population_check`` (population loss from the
    individual neurons, independent of the decomposition).
    """

    steps: np.ndarray
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    weights: torch.Tensor | None = None


def _linear_model_terms(x: torch.Tensor, residual: torch.Tensor):
    """(g, A) = (Σ_μ r_μ x_μ, Σ_μ r_μ x_μ x_μᵀ), the two data contractions of the GD step."""
    g = (residual.unsqueeze(-2) @ x).squeeze(-2)
    a = x.transpose(-1, -2) @ (residual.unsqueeze(-1) * x)
    return g, a


def train_committee(task: TeacherTask, initial_weights: torch.Tensor, *, alpha, eps, eta0,
                    steps: int, log_steps: Sequence[int], centered: bool = True,
                    twin: bool = True, alignment: bool = True, check: bool = False,
                    label: str = "committee") -> CommitteeRun:
    """Full-batch GD on the committee machine, with its linearised twin in lock-step.

    One step, with residuals r_μ = f̃(x_μ) − y_μ and c = 2η₀/(αP):
        w_i ← w_i − c [Σ_μ r_μ x_μ + ε (Σ_μ r_μ x_μ x_μᵀ) w_i]
    (the exact gradient of the MSE at lr = η₀N/α²; two matrix products, no autograd).  The twin
    f_lin(W) = f(W₀) + ∇f(W₀)·(W − W₀) takes the same step with its own residuals and the
    initial features: δ_i ← δ_i − c[Σ r^lin_μ x_μ + ε (Σ r^lin_μ x_μ x_μᵀ) w⁰_i].  It is kept in
    its statistics δ̄ = (1/N)Σ δ_i and Q = (1/N)Σ w⁰_i δ_iᵀ, since f̃_lin = α δ̄·x + αε xᵀQx.

    The update is the loop's objective (no optimizer: the network and its twin step in
    lock-step on one closed-form update, batched over configurations (seeds, α, ε)); the
    curves are a loop callback at the logged states (t = 0 included).

    ``alpha``, ``eps``, ``eta0``: scalars or tensors of the batch shape of ``initial_weights``
    (..., N, D).  ``log_steps``: steps in [0, steps] at which to log.  ``check`` adds the
    O(N²D) neuron-level population loss at every logged step.  A progress bar named ``label``
    is shown as everywhere in freqdyn (:mod:`freqdyn.progress`).
    """
    dtype = initial_weights.dtype
    batch = initial_weights.shape[:-2]
    alpha, eps, eta0 = (torch.as_tensor(v, dtype=dtype, device=initial_weights.device)
                        .expand(batch).clone()
                        for v in (alpha, eps, eta0))
    log_steps = np.unique(np.asarray(log_steps, dtype=int))
    if log_steps.size == 0 or log_steps[0] < 0 or log_steps[-1] > steps:
        raise InputError("settings.log_steps", f"must lie in [0, {steps}]")
    dynamics = _CommitteeDynamics(task, initial_weights, alpha, eps, eta0, centered, twin)
    keys = ["train_loss", "test_loss", "population_loss", "variance_term", "misalignment_term",
            "linear_term", "param_norm", "relative_change"]
    keys += ["twin_train_loss", "twin_test_loss", "twin_population_loss"] * twin
    keys += ["alignment"] * alignment + ["population_check"] * check
    logger = _CommitteeLog(dynamics, log_steps, keys, alignment, check)
    holder = torch.nn.Module()
    holder.weights = torch.nn.Parameter(dynamics.weights, requires_grad=False)
    TrainingLoop(holder, None, dynamics.step, steps=steps, callbacks=[logger],
                 label=label).run()
    if not all(np.isfinite(v).all() for v in logger.curves.values()):
        raise InputError("settings.eta0", "gradient descent diverged (non-finite loss); "
                         "lower eta0")
    return CommitteeRun(log_steps, logger.curves, dynamics.weights)


class _CommitteeDynamics:
    """The committee's closed-form GD step and its twin's, on the loop's step counter."""

    def __init__(self, task, initial_weights, alpha, eps, eta0, centered: bool, twin: bool):
        self.task, self.initial, self.alpha, self.eps = task, initial_weights, alpha, eps
        self.centered, self.twin = centered, twin
        self.c = (2 * eta0 / (alpha * task.n_train))[..., None, None]
        self.weights = initial_weights.clone()
        self.w0_bar, self.m0 = sufficient_statistics(initial_weights)
        self.ref = (self.w0_bar, self.m0) if centered else \
            (torch.zeros_like(self.w0_bar), torch.zeros_like(self.m0))
        self.delta_bar, self.q = torch.zeros_like(self.w0_bar), torch.zeros_like(self.m0)
        self.norm0 = torch.linalg.matrix_norm(initial_weights)
        self.cache: dict = {}

    def state(self) -> dict:
        """Residuals and statistics at the current weights (cached until the next step)."""
        if self.cache:
            return self.cache
        x, y, alpha, eps = self.task.x_train, self.task.y_train, self.alpha, self.eps
        w_bar, second = sufficient_statistics(self.weights)
        eff_bar, eff_second = w_bar - self.ref[0], second - self.ref[1]
        out = {"w_bar": w_bar, "second": second, "eff_bar": eff_bar, "eff_second": eff_second,
               "residual": output_from_statistics(eff_bar, eff_second, x, alpha, eps) - y}
        if self.twin:
            lin_bar = self.delta_bar + self.w0_bar * (not self.centered)
            lin_second = self.q + self.q.transpose(-1, -2) + self.m0 * (not self.centered)
            out.update(lin_bar=lin_bar, lin_second=lin_second,
                       residual_lin=output_from_statistics(lin_bar, lin_second, x, alpha,
                                                           eps) - y)
        self.cache = out
        return out

    def step(self, t: int) -> torch.Tensor:
        """One GD update of the network and its twin; returns the training MSE before it."""
        st = self.state()
        x, eps_m = self.task.x_train, self.eps[..., None, None]
        g, a = _linear_model_terms(x, st["residual"])
        self.weights -= self.c * (g.unsqueeze(-2) + eps_m * (self.weights @ a))
        if self.twin:
            g_lin, a_lin = _linear_model_terms(x, st["residual_lin"])
            self.delta_bar = self.delta_bar - self.c[..., 0] * (g_lin + self.eps[..., None] * (
                a_lin @ self.w0_bar.unsqueeze(-1)).squeeze(-1))
            self.q = self.q - self.c * (self.w0_bar.unsqueeze(-1) * g_lin.unsqueeze(-2)
                                        + eps_m * (self.m0 @ a_lin))
        self.cache = {}
        return (st["residual"] ** 2).mean()


class _CommitteeLog(Callback):
    """The committee's curves at the logged steps (state after t updates, t = 0 included)."""

    def __init__(self, dynamics: _CommitteeDynamics, log_steps, keys, alignment, check):
        self.d, self.alignment, self.check = dynamics, alignment, check
        self.log_at = {int(t): j for j, t in enumerate(log_steps)}
        batch = dynamics.weights.shape[:-2]
        self.curves = {k: np.empty((*batch, len(log_steps))) for k in keys}

    def on_state(self, loop, step):
        if step not in self.log_at:
            return
        d, task, st = self.d, self.d.task, self.d.state()
        alpha, eps = d.alpha, d.eps
        f_test = output_from_statistics(st["eff_bar"], st["eff_second"], task.x_test, alpha,
                                        eps)
        parts = loss_decomposition(st["eff_bar"], st["eff_second"], task.beta, alpha, eps,
                                   task.target_scale)
        row = {"train_loss": (st["residual"] ** 2).mean(-1),
               "test_loss": ((f_test - task.y_test) ** 2).mean(-1),
               "population_loss": parts.total, "variance_term": parts.variance,
               "misalignment_term": parts.misalignment, "linear_term": parts.linear,
               "param_norm": torch.linalg.matrix_norm(d.weights),
               "relative_change": torch.linalg.matrix_norm(d.weights - d.initial) / d.norm0}
        if d.twin:
            f_lin_test = output_from_statistics(st["lin_bar"], st["lin_second"], task.x_test,
                                                alpha, eps)
            row["twin_train_loss"] = (st["residual_lin"] ** 2).mean(-1)
            row["twin_test_loss"] = ((f_lin_test - task.y_test) ** 2).mean(-1)
            row["twin_population_loss"] = loss_decomposition(
                st["lin_bar"], st["lin_second"], task.beta, alpha, eps, task.target_scale).total
        if self.alignment:
            gram = ntk_gram(task.x_test, task.x_test, st["w_bar"], st["second"], eps)
            row["alignment"] = kernel_alignment(gram, task.y_test)
        if self.check:
            row["population_check"] = population_loss_from_weights(
                d.weights, task.beta, alpha, eps, task.target_scale,
                reference=d.initial if d.centered else None)
        for k, v in row.items():
            self.curves[k][..., self.log_at[step]] = v.cpu().numpy()
