"""Case files: one TOML file describes one network, target and frequency domain
(docs/theory.md §1, §2; every key in docs/cases.md).

```toml
name = "gaussian-1d"
[network]
dim = 1            # input dimension d: 1, 2 or 3
sigma_a = 0.7      # std of the outer weights a_j, b_j
kappa = 1.0        # output scale (optional, default 1)
loss_scale = 1.0   # α in L = (α/2) ∫ (f − g)² dx (optional, default 1)
[network.rho_w]    # density of the first-layer frequencies w
family = "gaussian"
scale = 1.0
[target]
g = "exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*cos(2*pi*2*x))"
[frequency]
bounds = [-6.0, 6.0]   # truncated frequency domain, per axis
times = [0.0, 0.5, 1.0, 2.0, 5.0]   # PDE times at which results are reported
points = 601           # ξ grid points per axis (optional)
```

Tools add their own tables (``[kernel_flow]``, ``[fem]``, ``[train]`` …); :class:`Case`
keeps them in ``sections`` for the tool that reads them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomli_w
from scipy import integrate

import freqdyn.memory as memory
from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.inputs.data import ARRAY_NAME, TARGET_KEYS, DataTarget, data_target
from freqdyn.inputs.data_files import RawSignal
from freqdyn.inputs.densities import Density, density_from_config
from freqdyn.inputs.fourier import tensor_grid
from freqdyn.inputs.target import Target, spectral_peaks

#: Top-level tables a case file may hold; a typo in a table name is an error, not a no-op.
KNOWN_TABLES = {"name", "description", "network", "target", "frequency", "kernel_flow",
                "fem", "train", "lfp"}
DEFAULT_POINTS = {1: 601, 2: 121, 3: 41}
#: Largest fraction of the target's spectral energy ∫|ĝ|² allowed outside the ξ domain.
MAX_TRUNCATED_TARGET_ENERGY = 1e-8


@dataclass(frozen=True, eq=False)
class Case:
    """A validated case: network, initialization density, target and frequency grid."""

    name: str
    text: str
    dim: int
    sigma_a: float
    kappa: float
    loss_scale: float
    rho_w: Density
    target: Target | DataTarget
    bounds: np.ndarray  # (d, 2)
    times: np.ndarray
    points: tuple[int, ...]
    peaks: np.ndarray  # (k, d) spectral peaks of |ĝ| in the half-space ξ0 ≥ 0
    truncation: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def is_data(self) -> bool:
        """The target is a user's samples (``[target] data``), not an expression."""
        return isinstance(self.target, DataTarget)

    @property
    def rate_factor(self) -> float:
        """κ²·α: every rate of the PDE is multiplied by this factor."""
        return self.kappa**2 * self.loss_scale

    def xi_axes(self) -> list[np.ndarray]:
        """The case's ξ grid axes (uniform, including the bounds)."""
        return [np.linspace(lo, hi, n) for (lo, hi), n in zip(self.bounds, self.points,
                                                               strict=True)]

    def xi_grid(self) -> np.ndarray:
        """ξ grid points, shape (n0, ..., n_{d-1}, d)."""
        return tensor_grid(self.xi_axes())

    def initial_error(self) -> np.ndarray:
        """û(ξ, 0) = f̂₀ − ĝ with f₀ = 0, on the case grid (complex)."""
        return -self.target.transform_on_grid(self.xi_axes())

    def section(self, name: str) -> dict:
        """A tool's table (``{}`` when absent)."""
        return dict(self.sections.get(name, {}))


def _bounds(freq: Table, dim: int) -> np.ndarray:
    raw = freq.get("bounds")
    if raw is None:
        raise InputError("frequency.bounds", "is required ([lo, hi] or one pair per axis)")
    try:
        arr = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise InputError("frequency.bounds", f"must be numbers, got {raw!r}") from None
    if arr.shape == (2,):
        arr = np.tile(arr, (dim, 1))
    if arr.shape != (dim, 2):
        raise InputError("frequency.bounds", f"must be [lo, hi] or {dim} pairs for d = {dim}, "
                                             f"got {raw!r}")
    if not np.all(np.isfinite(arr)) or not np.all(arr[:, 0] < arr[:, 1]):
        raise InputError("frequency.bounds", f"needs finite lo < hi on every axis, got {raw!r}")
    return arr


#: Largest sigma_a and kappa, and 1/smallest kappa: the PDE's coefficients κ²σ_a² stay
#: far from overflow.
SCALE_LIMIT = 1e6
#: Latest PDE time: κ²α ρ_w t and its square stay finite for every admitted ρ_w.
TIME_LIMIT = 1e12


def _times(freq: Table) -> np.ndarray:
    t = np.asarray(freq.numbers("times", low=0.0))
    if t.size and t[-1] > TIME_LIMIT:
        raise InputError("frequency.times", f"reaches t = {t[-1]:.3g}; freqdyn takes PDE "
                                            f"times up to {TIME_LIMIT:g}")
    if np.any(np.diff(t) <= 0):
        raise InputError("frequency.times", f"must be strictly increasing, got {t.tolist()}")
    if t[0] != 0:
        raise InputError("frequency.times", f"must start at 0 (ratios and errors are measured "
                                            f"against t = 0), got {t.tolist()}; add 0.0")
    return t


#: Bytes per ξ grid point and stored time (a complex128 û), and the work arrays of that
#: size a prediction or measurement holds besides one per time: the memory estimate every
#: command makes of its case grid before it starts.
GRID_BYTES_PER_POINT = 16.0
GRID_WORK_ARRAYS = 8


def _points(freq: Table, dim: int) -> tuple[int, ...]:
    raw = freq.get("points", DEFAULT_POINTS[dim])
    points = tuple(raw) if isinstance(raw, list) else (raw,) * dim
    if len(points) != dim or any(isinstance(p, bool) or not isinstance(p, int) or p < 3
                                 for p in points):
        per_axis = "" if dim == 1 else f", or a list of {dim} such integers, one per axis"
        raise InputError("frequency.points", f"is the number of ξ grid points per axis: an "
                                             f"integer >= 3{per_axis}; got {raw!r} (the "
                                             f"default is {DEFAULT_POINTS[dim]})")
    return points


def _peaks(tgt: Table, target: Target, bounds: np.ndarray, dim: int) -> np.ndarray:
    if "peaks" not in tgt:
        return target.peaks() if isinstance(target, DataTarget) else spectral_peaks(target,
                                                                                  bounds)
    raw = tgt.get("peaks")
    try:
        peaks = np.asarray(raw, dtype=float).reshape(-1, dim)
    except (TypeError, ValueError):
        raise InputError("target.peaks", f"must be a list of frequencies ({dim} per peak), "
                                         f"got {raw!r}") from None
    if peaks.size == 0 or not np.all(np.isfinite(peaks)):
        raise InputError("target.peaks", f"must be a non-empty list of finite frequencies, "
                                         f"got {raw!r}")
    outside = ~np.all((peaks >= bounds[:, 0]) & (peaks <= bounds[:, 1]), axis=1)
    if outside.any():
        raise InputError("target.peaks", f"peak {peaks[outside][0].tolist()} lies outside the "
                                         f"frequency bounds {bounds.tolist()}; move it inside "
                                         "or widen frequency.bounds")
    return peaks


def _rho_mass_inside(rho: Density, bounds: np.ndarray) -> float:
    """∫ ρ_w over the ξ box, by adaptive quadrature (d = 1) or Gauss–Legendre grids."""
    if rho.dim == 1:
        lo, hi = bounds[0]
        breaks = [p for p in (0.0, *np.ravel(rho.center)) if lo < p < hi]
        f = lambda t: float(rho.density(np.array([[t]]))[0])  # noqa: E731
        return integrate.quad(f, lo, hi, points=breaks or None, limit=500)[0]
    nodes, weights = np.polynomial.legendre.leggauss({2: 300, 3: 80}[rho.dim])
    axes, wts = [], []
    for lo, hi in bounds:
        axes.append(0.5 * (hi - lo) * nodes + 0.5 * (hi + lo))
        wts.append(0.5 * (hi - lo) * weights)
    w_grid = tensor_grid(axes)
    wt = wts[0]
    for extra in wts[1:]:
        wt = np.multiply.outer(wt, extra)
    return float(np.sum(rho.density(w_grid) * wt))


def _target_energy_inside(target: Target, bounds: np.ndarray) -> float:
    n = {1: 4001, 2: 301, 3: 81}[target.dim]
    axes = [np.linspace(lo, hi, n) for lo, hi in bounds]
    g_hat = target.transform_on_grid(axes)
    weights = [np.full(n, (hi - lo) / (n - 1)) for lo, hi in bounds]
    for w in weights:
        w[0] *= 0.5
        w[-1] *= 0.5
    wt = weights[0]
    for extra in weights[1:]:
        wt = np.multiply.outer(wt, extra)
    return float(np.sum(np.abs(g_hat) ** 2 * wt))


def _expression_target(tgt: Table, freq: Table, dim: int):
    """g from ``[target] g``: the target, the ξ bounds and the spectral energy left out."""
    tgt.refuse_unknown({"g", "peaks"})
    if not isinstance(tgt.get("g"), str):
        names = "x" if dim == 1 else ", ".join(f"x{i}" for i in range(dim))
        raise InputError("target.g", f"is required: an expression in {names}, or data = "
                                     "\"FILE\" for samples")
    target = Target(tgt.get("g"), dim)
    bounds = _bounds(freq, dim)
    energy_in = _target_energy_inside(target, bounds)
    truncated_energy = max(0.0, 1.0 - energy_in / target.l2_norm_squared())
    if truncated_energy > MAX_TRUNCATED_TARGET_ENERGY:
        raise InputError(
            "frequency.bounds",
            f"too small: the domain {bounds.tolist()} leaves out a fraction "
            f"{truncated_energy:.2e} of the target's spectral energy ∫|ĝ|² dξ "
            f"(allowed {MAX_TRUNCATED_TARGET_ENERGY:.0e}); widen it",
        )
    return target, bounds, truncated_energy


def _data_target(tgt: Table, freq: Table, dim: int, path: Path | None, array=None):
    """Samples from ``[target] data`` (:mod:`freqdyn.inputs.data`); the ξ bounds default to
    the full grid's Nyquist band ±1/(2Δ_k)."""
    if "g" in tgt:
        raise InputError("target.g", "give g (an expression) or data (a file), not both")
    target = data_target(tgt, dim, path.parent if path is not None else Path.cwd(), array)
    nyquist = 0.5 / target.spacing()
    bounds = (_bounds(freq, dim) if "bounds" in freq
              else np.stack([-nyquist, nyquist], axis=1))
    return target, bounds, float("nan")


def data_case(values, *, times, rho_w: dict, sigma_a: float, extent=None, x=None,
              holdout: dict | None = None, normalize: str = "none", name: str = "data",
              dim: int | None = None, **tables) -> Case:
    """A data case from an array: ``values`` on a grid (d = its ndim), or 1D with ``x``.

        >>> case = data_case(y, extent=[[0, 1]], holdout={"stride": 2}, sigma_a=0.1,
        ...                  rho_w={"family": "gaussian", "scale": 10.0},
        ...                  times=[0, 10, 100])

    The same validation as a case file (:func:`load_case`) with ``[target] data =
    "<array>"``; results record the samples' SHA-256 in ``data_sha256``.  ``tables``
    adds tool tables (``train = {...}``, ``kernel_flow = {...}``).
    """
    values = np.asarray(values)
    dim = dim or (1 if x is not None else values.ndim)
    target = {"data": ARRAY_NAME, "normalize": normalize}
    if extent is not None:
        target["extent"] = np.asarray(extent, dtype=float).tolist()
    if holdout:
        target["holdout"] = dict(holdout)
    table = {"name": name, "network": {"dim": dim, "sigma_a": sigma_a, "rho_w": dict(rho_w)},
             "target": target, "frequency": {"times": [float(t) for t in times]}, **tables}
    raw = RawSignal(values, x=None if x is None else np.asarray(x, dtype=float))
    return case_from_dict(table, text=tomli_w.dumps(table), default_name=name, array=raw)


def read_toml(source: str | Path, text: str | None, kind: str) -> tuple[dict, str]:
    """Parse TOML ``text``, or the file ``source`` when ``text`` is None; errors name ``kind``."""
    if text is None:
        path = Path(source)
        if not path.is_file():
            raise InputError(kind, f"file {str(path)!r} not found")
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise InputError(kind, f"{str(path)!r} is not a text file (a TOML case is UTF-8 "
                                   "text)") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise InputError(kind, f"is not valid TOML: {exc}") from None


def load_case(source: str | Path, *, text: str | None = None) -> Case:
    """Read and validate a case file (or TOML ``text``, with ``source`` as its name)."""
    path = Path(source) if text is None else None
    data, text = read_toml(source, text, "case")
    return case_from_dict(data, text=text, path=path,
                          default_name=path.stem if path else str(source))


def case_from_dict(data: dict, *, text: str, path: Path | None = None,
                   default_name: str = "case", array: RawSignal | None = None) -> Case:
    """Validate a parsed case table; ``text`` is stored verbatim in every result.

    ``array`` holds a data case's samples when they come from memory, not a file."""
    top = Table(data, "", KNOWN_TABLES)
    name = top.string("name", default_name)
    net = top.table("network", {"dim", "sigma_a", "kappa", "loss_scale", "rho_w"},
                    required=True)
    dim = net.get("dim")
    if isinstance(dim, bool) or dim not in (1, 2, 3):
        raise InputError("network.dim", f"must be 1, 2 or 3, got {dim!r}")
    sigma_a = net.number("sigma_a", low=0.0, high=SCALE_LIMIT)
    kappa = net.number("kappa", 1.0, low=1.0 / SCALE_LIMIT, high=SCALE_LIMIT)
    loss_scale = net.number("loss_scale", 1.0, low=0.0, low_open=True)
    if "rho_w" not in net:
        raise InputError("network.rho_w", "table is required")
    rho_w = density_from_config(net.get("rho_w"), dim)

    tgt = top.table("target", {"g"} | TARGET_KEYS)
    if "frequency" not in top:
        raise InputError("frequency", "table is required (bounds, times)")
    freq = top.table("frequency", {"bounds", "times", "points"})
    times = _times(freq)
    points = _points(freq, dim)
    memory.require("frequency.points", GRID_BYTES_PER_POINT * float(np.prod(points))
                   * (times.size + GRID_WORK_ARRAYS),
                   f"the ξ grid of {' x '.join(map(str, points))} points at {times.size} times",
                   "use fewer frequency.points")
    if "data" in tgt:
        target, bounds, truncated_energy = _data_target(tgt, freq, dim, path, array)
    else:
        target, bounds, truncated_energy = _expression_target(tgt, freq, dim)
    rho_truncated = max(0.0, 1.0 - _rho_mass_inside(rho_w, bounds))
    peaks = _peaks(tgt, target, bounds, dim)

    sections = {k: v for k, v in data.items() if k not in {"name", "description", "network",
                                                           "target", "frequency"}}
    return Case(
        name=name, text=text, dim=dim, sigma_a=sigma_a, kappa=kappa, loss_scale=loss_scale,
        rho_w=rho_w, target=target, bounds=bounds, times=times, points=points, peaks=peaks,
        truncation={"rho_w_mass_outside": rho_truncated,
                    "target_energy_outside": truncated_energy},
        sections=sections, path=path,
    )
