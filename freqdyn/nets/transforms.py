"""The fast-transform pass of the 2-layer Fourier-feature network (docs/theory.md §8).

With c = κ m^{-1/2}, q_j = a_j − i b_j and samples x_i,

    f(x_i) = c Re Σ_j q_j e^{2πi w_j·x_i},

and with the scaled residual e_i = (α/N) c (f(x_i) − y_i) of L = (α/2N) Σ_i (f − y)²,

    S_j = Σ_i e_i e^{2πi w_j·x_i},    T_j^{(k)} = Σ_i e_i x_i^{(k)} e^{2πi w_j·x_i},
    ∂L/∂a_j = Re S_j,   ∂L/∂b_j = Im S_j,   ∂L/∂w_jk = 2π (b_j Re T_j^{(k)} − a_j Im T_j^{(k)}).

Both sums are non-uniform FFTs (FINUFFT; cuFINUFFT on a GPU is not wired in, the GPU uses
the dense pass), so a step costs O((n + m) log) and O(n + m) memory: no n×m matrix exists.

* **Grid samples** x_i = x₀ + i∘h (a tensor grid, i_k = 0 … n_k − 1): e^{2πi w·x_i} =
  e^{2πi w·x₀} Π_k e^{i i_k θ_k}, θ_k = 2π h_k w_k.  f is one type-1 transform with points
  θ_j (mod 2π) and strengths q_j e^{2πi w_j·x₀} e^{i ⌊n/2⌋·θ_j} (FINUFFT's modes run from
  −⌊n/2⌋); S and T are one type-2 transform of the d + 1 grids e and e·x^{(k)}.
* **Scattered samples** (random sampling, minibatches): type-3 transforms between the
  points 2π w_j and x_i.

The Jacobian products J v and Jᵀ u (for λ_max of the NTK Gram and the linearised twin) are
the same transforms: Jᵀu is the gradient formula with e = u, and

    (J v)_i = c Re F[v_a − i v_b]_i + 2πc Σ_k x_i^{(k)} Re F[(b + i a) v_{w,k}]_i,
    F[q]_i = Σ_j q_j e^{2πi w_j·x_i}.

The tolerance ``tol`` is FINUFFT's relative accuracy (1e-12 in float64 keeps trajectories
equal to the dense pass's to ≤ 1e-9 over 50 steps; float32 transforms reach about 1e-7).
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass

import finufft
import numpy as np
import torch

from freqdyn.inputs.fourier import tensor_grid
from freqdyn.nets.gram import top_eigenvalue


@dataclass(frozen=True)
class GridSamples:
    """A tensor grid x = x₀ + i∘h, i_k = 0 … n_k − 1 (C order, axis 0 slowest)."""

    x0: np.ndarray
    h: np.ndarray
    n: tuple[int, ...]

    @property
    def dim(self) -> int:
        return len(self.n)

    @property
    def size(self) -> int:
        return math.prod(self.n)

    def axes(self) -> list[np.ndarray]:
        return [x0 + h * np.arange(n) for x0, h, n in zip(self.x0, self.h, self.n, strict=True)]

    def points(self) -> np.ndarray:

        return tensor_grid(self.axes()).reshape(-1, self.dim)

    @classmethod
    def of_axis(cls, axis: np.ndarray, dim: int) -> GridSamples:
        """The tensor grid of one uniform ``axis`` in ``dim`` dimensions."""
        h = float(axis[1] - axis[0]) if axis.size > 1 else 1.0
        return cls(np.full(dim, float(axis[0])), np.full(dim, h), (int(axis.size),) * dim)


@dataclass(frozen=True)
class ScatteredSamples:
    """Arbitrary points (N, d)."""

    x: np.ndarray

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    @property
    def size(self) -> int:
        return self.x.shape[0]

    def points(self) -> np.ndarray:
        return self.x


def _complex_dtype(dtype) -> np.dtype:
    return np.complex64 if dtype in (torch.float32, np.float32) else np.complex128


def _finufft(call, *args, **kwargs):
    """A FINUFFT call; a Ctrl-C that ctypes wrapped into an ``ArgumentError`` while it
    converted the arguments is raised as the ``KeyboardInterrupt`` it is, so that the run
    stops as an interrupted run (checkpoint, exit code 130) and not with a traceback."""
    try:
        return call(*args, **kwargs)
    except ctypes.ArgumentError as exc:
        if isinstance(exc.__context__, KeyboardInterrupt) or "KeyboardInterrupt" in str(exc):
            raise KeyboardInterrupt from None
        raise


#: Fewest frequencies (units) for which the transforms use more than one thread.
SERIAL_BELOW = 2**16


class FourierTransforms:
    """FINUFFT plans for one sample layout, reused across steps.

    The frequencies w are set on a plan only when they differ from those it holds, so
    transforms at fixed frequencies (the linearised twin, random features) pay for the
    spreading set-up once.
    """

    def __init__(self, samples, dtype=torch.float64, tol: float = 1e-12,
                 threads: int | None = None):
        self.samples, self.tol = samples, float(tol)
        self.cdtype = _complex_dtype(dtype)
        self.rdtype = np.float32 if self.cdtype == np.complex64 else np.float64
        self.threads = threads or torch.get_num_threads()
        self.dim = samples.dim
        self._plans: dict = {}
        self._held: dict = {}  # plan key -> (the w it holds, the grid phase)
        if isinstance(samples, GridSamples):
            self.grid_x = [np.asarray(a, dtype=self.rdtype) for a in samples.axes()]
        else:
            self.x = np.ascontiguousarray(samples.x, dtype=self.rdtype)

    def set_points(self, samples: ScatteredSamples) -> None:
        """New scattered samples of the same dimension (minibatches): the plans are kept."""
        if not isinstance(samples, ScatteredSamples) or samples.dim != self.dim:
            raise ValueError("set_points takes scattered samples of the same dimension")
        self.samples = samples
        self.x = np.ascontiguousarray(samples.x, dtype=self.rdtype)
        self._held.clear()

    # -- plans -------------------------------------------------------------------------
    def _plan(self, kind: str, n_trans: int, points: int):
        """kind: "synthesis" or "analysis" (types 1 and 2 on a grid, type 3 otherwise); one
        thread below :data:`SERIAL_BELOW` frequencies, where threads cost more than they
        save (m = 2^14, n = 8192: 5.3 ms a step on one thread, 7.8 ms on two)."""
        threads = 1 if points < SERIAL_BELOW else self.threads
        key = (kind, n_trans, threads)
        if key not in self._plans:
            opts = {"nthreads": threads}
            if isinstance(self.samples, GridSamples):
                plan = finufft.Plan(1 if kind == "synthesis" else 2, tuple(self.samples.n),
                                    n_trans, eps=self.tol, isign=1, dtype=self.cdtype, **opts)
            else:
                plan = finufft.Plan(3, self.dim, n_trans, eps=self.tol, isign=1,
                                    dtype=self.cdtype, **opts)
            self._plans[key] = plan
        return self._plans[key]

    def _prepared(self, kind: str, n_trans: int, w: np.ndarray):
        """The plan of (kind, n_trans) with its points set for w, and the grid phase."""
        plan, key = self._plan(kind, n_trans, w.shape[0]), (kind, n_trans)
        held = self._held.get(key)
        if held is not None and held[0].shape == w.shape and np.array_equal(held[0], w):
            return plan, held[1]
        phase = None
        if isinstance(self.samples, GridSamples):
            theta, phase = self._grid_phases(w)
            _finufft(plan.setpts, *theta)
        else:
            freqs = [np.ascontiguousarray(2 * np.pi * w[:, k], dtype=self.rdtype)
                     for k in range(self.dim)]
            xs = [np.ascontiguousarray(self.x[:, k]) for k in range(self.dim)]
            src, tgt = (freqs, xs) if kind == "synthesis" else (xs, freqs)
            _finufft(plan.setpts, **dict(zip(("x", "y", "z"), src, strict=False)),
                        **dict(zip(("s", "t", "u"), tgt, strict=False)))
        self._held[key] = (np.array(w, copy=True), phase)
        return plan, phase

    def _grid_phases(self, w: np.ndarray):
        """(θ_k per axis wrapped to [−π, π), the phase e^{2πi w·x₀} e^{i⌊n/2⌋·θ}); computed
        once per w and shared by the synthesis and the analysis plans."""
        cached = getattr(self, "_phases", None)
        if cached is not None and cached[0].shape == w.shape and np.array_equal(cached[0], w):
            return cached[1], cached[2]
        theta, phase = self._compute_grid_phases(w)
        self._phases = (np.array(w, copy=True), theta, phase)
        return theta, phase

    def _compute_grid_phases(self, w: np.ndarray):
        s = self.samples
        theta = [np.ascontiguousarray(np.mod(2 * np.pi * s.h[k] * w[:, k] + np.pi, 2 * np.pi)
                                      - np.pi, dtype=self.rdtype) for k in range(self.dim)]
        arg = 2 * np.pi * (w @ s.x0) + sum((s.n[k] // 2) * theta[k].astype(np.float64)
                                           for k in range(self.dim))
        return theta, np.exp(1j * arg)

    # -- the two sums --------------------------------------------------------------------
    def synthesis(self, w: np.ndarray, q: np.ndarray) -> np.ndarray:
        """F[q]_i = Σ_j q_j e^{2πi w_j·x_i} for q (T, m) or (m,); returns (T, N) or (N,)."""
        q = np.asarray(q)
        many = q.ndim == 2
        qq = q if many else q[None]
        plan, phase = self._prepared("synthesis", qq.shape[0], w)
        if phase is not None:
            qq = qq * phase
        out = _finufft(plan.execute, np.ascontiguousarray(qq, dtype=self.cdtype))
        out = out.reshape(qq.shape[0], -1)
        return out if many else out[0]

    def analysis(self, w: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Σ_i e_i e^{2πi w_j·x_i} for e (T, N) or (N,) real or complex; returns (T, m)."""
        e = np.asarray(e)
        many = e.ndim == 2
        ee = e if many else e[None]
        plan, phase = self._prepared("analysis", ee.shape[0], w)
        if phase is not None:
            ee = ee.reshape(ee.shape[0], *self.samples.n)
        out = _finufft(plan.execute, np.ascontiguousarray(ee, dtype=self.cdtype))
        out = out.reshape(ee.shape[0], -1)
        if phase is not None:
            out = out * phase
        return out if many else out[0]

    def coordinate(self, k: int) -> np.ndarray:
        """x^{(k)} at every sample, (N,)."""
        if isinstance(self.samples, GridSamples):
            shape = [1] * self.dim
            shape[k] = -1
            return np.broadcast_to(self.grid_x[k].reshape(shape), self.samples.n).ravel()
        return self.x[:, k]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def forward(model, transforms: FourierTransforms) -> torch.Tensor:
    """f(x_i) at the samples of ``transforms`` (a tensor on the model's device)."""
    w, a, b = _np(model.w), _np(model.a), _np(model.b)
    c = model.kappa / math.sqrt(model.width)
    f = c * transforms.synthesis(w, a - 1j * b).real
    return torch.from_numpy(np.ascontiguousarray(f)).to(model.a.device, model.a.dtype)


def loss_and_grad(model, transforms: FourierTransforms, y: torch.Tensor,
                  loss_scale: float = 1.0) -> torch.Tensor:
    """L = (α/2N) Σ_i (f(x_i) − y_i)² and its exact gradient in each ``.grad`` (module text)."""
    w, a, b = _np(model.w), _np(model.a), _np(model.b)
    n = transforms.samples.size
    c = model.kappa / math.sqrt(model.width)
    resid = c * transforms.synthesis(w, a - 1j * b).real - _np(y)
    e = (loss_scale / n) * c * resid
    if model.train_w:
        stack = np.stack([e] + [e * transforms.coordinate(k) for k in range(model.w.shape[1])])
        sums = transforms.analysis(w, stack)
        s, t = sums[0], sums[1:]
    else:
        s, t = transforms.analysis(w, e), None
    device, dtype = model.a.device, model.a.dtype

    def tensor(v):
        return torch.from_numpy(np.ascontiguousarray(v)).to(device, dtype)

    model.a.grad, model.b.grad = tensor(s.real), tensor(s.imag)
    if t is not None:
        model.w.grad = tensor((2 * np.pi) * (b * t.real - a * t.imag).T)
    loss = 0.5 * (loss_scale / n) * float(resid @ resid)
    return torch.tensor(loss, dtype=dtype, device=device)


def jacobian_transpose(model, transforms: FourierTransforms, u: np.ndarray) -> np.ndarray:
    """Jᵀu = Σ_i u_i ∂f(x_i)/∂θ as one flat vector (the order of model.parameters())."""
    w, a, b = _np(model.w), _np(model.a), _np(model.b)
    c = model.kappa / math.sqrt(model.width)
    d = w.shape[1]
    parts = {}
    if model.train_w:
        sums = transforms.analysis(w, np.stack([u] + [u * transforms.coordinate(k)
                                                      for k in range(d)]))
        s, t = sums[0], sums[1:]
        parts["w"] = (2 * np.pi * c) * (b * t.real - a * t.imag).T
    else:
        s = transforms.analysis(w, u)
    parts["a"], parts["b"] = c * s.real, c * s.imag
    return np.concatenate([parts[name].ravel() for name, _ in model.named_parameters()])


def jacobian(model, transforms: FourierTransforms, v: np.ndarray) -> np.ndarray:
    """J v = Σ_θ ∂f(x_i)/∂θ v_θ at every sample, for a flat v (model.parameters() order)."""
    w, a, b = _np(model.w), _np(model.a), _np(model.b)
    c = model.kappa / math.sqrt(model.width)
    m, d = w.shape
    pieces, pos = {}, 0
    for name, p in model.named_parameters():
        pieces[name] = v[pos:pos + p.numel()].reshape(p.shape)
        pos += p.numel()
    rows = [pieces["a"] - 1j * pieces["b"]]
    if model.train_w:
        rows += [(b + 1j * a) * pieces["w"][:, k] for k in range(d)]
    syn = transforms.synthesis(w, np.stack(rows)).real
    out = c * syn[0]
    if model.train_w:
        for k in range(d):
            out = out + (2 * np.pi * c) * transforms.coordinate(k) * syn[1 + k]
    return out


def gram_lambda_max(model, transforms: FourierTransforms, loss_scale: float = 1.0,
                    tol: float = 1e-3) -> float:
    """λ_max of (α/N) J Jᵀ on the samples, by Lanczos with transform products."""

    n = transforms.samples.size

    def product(u):
        return (loss_scale / n) * jacobian(model, transforms,
                                           jacobian_transpose(model, transforms, np.ravel(u)))

    return top_eigenvalue(product, n, tol)


def empirical_ntk(model, x: np.ndarray, chunk: int = 1 << 15) -> np.ndarray:
    """Θ̂(x, x') = ∇_θf(x)·∇_θf(x') of the 2-layer network in closed form, points (P, d).

    Per unit: cos_j cos'_j + sin_j sin'_j (a, b) + 4π² x·x′ g_j g'_j with
    g_j = b_j cos_j − a_j sin_j (w), times κ²/m; summed over blocks of ``chunk`` units so
    that the memory is O(P·chunk), never P × parameters.
    """
    w, a, b = (_np(t).astype(np.float64) for t in (model.w, model.a, model.b))
    x = np.asarray(x, dtype=np.float64).reshape(-1, w.shape[1])
    out = np.zeros((x.shape[0], x.shape[0]))
    xx = x @ x.T
    for s in range(0, w.shape[0], chunk):
        phase = 2 * np.pi * x @ w[s:s + chunk].T
        cos, sin = np.cos(phase), np.sin(phase)
        out += cos @ cos.T + sin @ sin.T
        if model.train_w:
            g = b[s:s + chunk] * cos - a[s:s + chunk] * sin
            out += 4 * np.pi**2 * xx * (g @ g.T)
    return (model.kappa**2 / w.shape[0]) * out
