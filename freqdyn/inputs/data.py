"""A target read from the user's data: samples on a grid (d = 1, 2, 3) or 1D (x, y) pairs.

```toml
[target]
data = "signal.npy"        # relative to the case file's folder
extent = [[0.0, 1.0]]      # x of the first and last sample on each axis (default [0, 1])
holdout = { stride = 2 }   # train on every 2nd sample per axis, test on the rest
normalize = "none"         # "none" | "mean" | "standard" | "max" (images: y / 255)
                           # | "max-mean" (y / 255, less the training mean)
```

Training loss (docs/theory.md §13): the box integral ½∫(f − g)² dx taken as the Riemann
sum ½ Σ_i h (f(x_i) − y_i)² over the training samples, with h the training cell volume:

* on a grid of spacings Δ_k, h = Π_k (s Δ_k) for stride s, and Π_k Δ_k · n / n_train for
  a random fraction held out;
* for scattered x, h = (x_last − x_first)/(n − 1) · n / n_train.

so that one unit of time means the same on an analytic and a data case.  ``holdout`` is
``{ stride = s }`` (test: every other sample, or with ``test = "offset"`` only the
sub-grid shifted by s/2 on every axis, as Tancik et al. 2020), or ``{ fraction = f,
seed = 0 }`` (a random fraction f held out).  Normalisation uses the training samples'
statistics only, so nothing of the held-out samples leaks into training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.inputs.data_files import FIELD, RawSignal, check_pairs, read_sample, read_signal
from freqdyn.inputs.fourier import nudft, tensor_grid
from freqdyn.inputs.target import TARGET_RANGE, magnitude_peaks

TARGET_KEYS = {"data", "key", "extent", "holdout", "normalize", "alpha", "peaks"}
NORMALIZATIONS = ("none", "mean", "standard", "max", "max-mean")
MIN_SAMPLES_PER_AXIS = 4


@dataclass(frozen=True, eq=False)
class DataTarget:
    """Samples y_i at points x_i, split into training and held-out samples.

    ``values`` has the grid's shape (or (n,) for scattered ``x``); ``train`` and ``test``
    are disjoint boolean masks of the same shape (samples in neither are unused).
    Coordinates: ``axes`` (a uniform axis per dimension) on a grid, ``x`` (n,) for
    scattered 1D samples.
    """

    path: Path
    dim: int
    values: np.ndarray
    train: np.ndarray
    test: np.ndarray
    axes: list | None
    x: np.ndarray | None
    normalize: str
    holdout: dict
    sha256: str
    mode: str
    is_data = True

    @property
    def text(self) -> str:
        return str(self.path)

    @property
    def on_grid(self) -> bool:
        return self.axes is not None

    @property
    def n_train(self) -> int:
        return int(self.train.sum())

    @property
    def n_test(self) -> int:
        return int(self.test.sum())

    def points(self) -> np.ndarray:
        """Every sample's x, shape (n, d), in the flat (C) order of ``values``."""
        if self.on_grid:
            return tensor_grid(self.axes).reshape(-1, self.dim)
        return self.x.reshape(-1, 1)

    def spacing(self) -> np.ndarray:
        """Δ_k of the full grid (scattered: the mean spacing), shape (d,)."""
        if self.on_grid:
            return np.array([a[1] - a[0] for a in self.axes])
        return np.array([(self.x[-1] - self.x[0]) / (self.x.size - 1)])

    @property
    def sample_volume(self) -> float:
        """The full grid's cell volume Π_k Δ_k."""
        return float(np.prod(self.spacing()))

    @property
    def cell_volume(self) -> float:
        """h of the training loss ½ Σ h (f − y)² (module docstring)."""
        if self.holdout["kind"] == "stride":
            return self.sample_volume * self.holdout["stride"] ** self.dim
        return self.sample_volume * self.values.size / self.n_train

    @property
    def training_nyquist(self) -> float:
        """The training grid's Nyquist frequency 1/(2 h_k), least over the axes, with h_k =
        Δ_k (h/Π Δ)^{1/d} the training spacing (s Δ_k for a stride s)."""
        step = self.spacing() * (self.cell_volume / self.sample_volume) ** (1 / self.dim)
        return float(np.min(0.5 / step))

    @property
    def radius(self) -> float:
        """Max-norm radius of the samples' box about 0."""
        return float(np.max(np.abs(self.points())))

    def __call__(self, x):
        raise InputError(FIELD, "has values only at its samples, not at other x; this tool "
                                "needs an expression target g")

    def dft_axes(self) -> list[np.ndarray]:
        """The data's DFT frequencies per axis, increasing (cycles per unit of x)."""
        sizes = self.values.shape
        return [np.fft.fftshift(np.fft.fftfreq(n, d)) for n, d in zip(sizes, self.spacing(),
                                                                      strict=True)]

    def spectrum(self, values: np.ndarray) -> np.ndarray:
        """Σ_j Π Δ_k u_j e^{−2πi ξ·x_j} of samples ``values`` (..., *shape) on the DFT
        frequencies (convention B, the Riemann sum of û): an FFT on a grid, a direct sum
        (:func:`~freqdyn.inputs.fourier.nudft`) for scattered x."""
        d = self.dim
        if not self.on_grid:
            xi = self.dft_axes()[0]
            flat = values.reshape(-1, self.x.size)
            out = [nudft(v, self.x, self.sample_volume, xi) for v in flat]
            return np.reshape(out, values.shape[:-1] + (xi.size,))
        axes = tuple(range(values.ndim - d, values.ndim))
        out = np.fft.fftshift(np.fft.fftn(values, axes=axes), axes=axes) * self.sample_volume
        for k, (axis, xi) in enumerate(zip(self.axes, self.dft_axes(), strict=True)):
            shape = [1] * values.ndim
            shape[values.ndim - d + k] = xi.size
            out = out * np.exp(-2j * np.pi * xi * axis[0]).reshape(shape)  # x_0 ≠ 0
        return out

    def result_attrs(self) -> dict:
        """What every result of a data case records about its samples."""
        return {"data_file": str(self.path), "data_sha256": self.sha256,
                "data_shape": list(self.values.shape), "data_holdout": self.holdout,
                "data_normalize": self.normalize, "data_on_grid": self.on_grid,
                "error_transform": "Riemann sum over every sample of e = f - y, on the "
                                   "data's DFT frequencies"}

    def peaks(self, max_peaks: int = 8) -> np.ndarray:
        """The strongest local maxima of |ŷ| over the DFT frequencies, ξ_0 ≥ 0, by |ξ|."""
        mag = np.abs(self.spectrum(self.values))
        return magnitude_peaks(mag, self.dft_axes(), rtol=0.05, max_peaks=max_peaks,
                               strongest=True)


def _refuse(path: Path, problem: str) -> InputError:
    return InputError(FIELD, f"{str(path)!r} {problem}")


def _check_values(path: Path, raw: RawSignal, dim: int) -> np.ndarray:
    values = raw.values
    if values.dtype.kind == "c":
        raise _refuse(path, "holds complex numbers; the target must be real")
    if values.dtype.kind not in "biuf":
        raise _refuse(path, f"holds {values.dtype} values, not numbers")
    values = values.astype(float)
    if values.size == 0:
        raise _refuse(path, "is empty: no samples")
    if values.ndim != dim:
        hint = " (a flat array: y.ravel())" if dim == 1 else ""
        raise _refuse(path, f"has shape {values.shape}: {values.ndim} axes, but the case has "
                            f"[network] dim = {dim}{hint}")
    if min(values.shape) < MIN_SAMPLES_PER_AXIS:
        raise _refuse(path, f"has shape {values.shape}; every axis needs at least "
                            f"{MIN_SAMPLES_PER_AXIS} samples")
    bad = ~np.isfinite(values)
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), values.shape)
        raise _refuse(path, f"holds {int(bad.sum())} NaN or infinite value(s), the first at "
                            f"index {tuple(int(i) for i in where)}; fill or drop them")
    if np.ptp(values) == 0:
        raise _refuse(path, f"is constant (every sample is {values.flat[0]:g}): nothing to "
                            "learn")
    peak = float(np.max(np.abs(values)))
    if not TARGET_RANGE[0] <= peak <= TARGET_RANGE[1]:
        raise _refuse(path, f"reaches |y| = {peak:.3g}; losses square it, so freqdyn takes "
                            f"{TARGET_RANGE[0]:g} <= max|y| <= {TARGET_RANGE[1]:g}: rescale "
                            "the data")
    return values


def _extent(tgt: Table, raw: RawSignal, shape, dim: int) -> list[np.ndarray] | None:
    if raw.x is not None:
        if "extent" in tgt:
            raise InputError("target.extent", "is taken from the x column of a two-column "
                                              "file; drop extent")
        return None
    given = tgt.get("extent", [[0.0, 1.0]] * dim)
    try:
        arr = np.asarray(given, dtype=float)
    except (TypeError, ValueError):
        raise InputError("target.extent", f"must be numbers, got {given!r}") from None
    if arr.shape == (2,) and dim == 1:
        arr = arr.reshape(1, 2)
    if arr.shape != (dim, 2):
        raise InputError("target.extent", f"must hold {dim} pair(s) [first, last], one per "
                                          f"axis of the d = {dim} data, got {given!r}")
    if not np.all(np.isfinite(arr)) or not np.all(arr[:, 0] < arr[:, 1]):
        raise InputError("target.extent", f"needs finite first < last on every axis, got "
                                          f"{given!r}")
    return [np.linspace(lo, hi, n) for (lo, hi), n in zip(arr, shape, strict=True)]


def _holdout_masks(tgt: Table, shape) -> tuple[np.ndarray, np.ndarray, dict]:
    """The training and test masks and the holdout's description."""
    hold = tgt.table("holdout", {"stride", "test", "fraction", "seed"})
    if not hold.data:
        return np.ones(shape, dtype=bool), np.zeros(shape, dtype=bool), {"kind": "none"}
    if "stride" in hold and "fraction" in hold:
        raise InputError("target.holdout", "give stride or fraction, not both")
    if "stride" in hold:
        stride = hold.integer("stride", low=2)
        test = hold.choice("test", "rest", ("rest", "offset"))
        grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
        train = np.logical_and.reduce([g % stride == 0 for g in grids])
        tested = (np.logical_and.reduce([g % stride == stride // 2 for g in grids])
                  if test == "offset" else ~train)
        return train, tested, {"kind": "stride", "stride": stride, "test": test}
    fraction = hold.number("fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    seed = hold.integer("seed", 0, low=0)
    size = int(np.prod(shape))
    held = max(1, round(fraction * size))
    order = np.random.default_rng(seed).permutation(size)
    train = np.ones(size, dtype=bool)
    train[order[:held]] = False
    train = train.reshape(shape)
    return train, ~train, {"kind": "fraction", "fraction": fraction, "seed": seed}


def _normalise(tgt: Table, values: np.ndarray, train: np.ndarray, raw: RawSignal):
    how = tgt.choice("normalize", "none", NORMALIZATIONS)
    if how == "mean":
        return values - values[train].mean(), how
    if how == "standard":
        std = values[train].std()
        if std == 0:
            raise InputError("target.normalize", "the training samples are constant; "
                                                 "'standard' would divide by 0")
        return (values - values[train].mean()) / std, how
    if how in ("max", "max-mean"):
        if raw.full_scale is None:
            raise InputError("target.normalize", f"'max' divides by an image format's largest "
                                                 f"value; {raw.mode} data have none: use "
                                                 "'none', 'mean' or 'standard'")
        scaled = values / raw.full_scale
        return (scaled - scaled[train].mean() if how == "max-mean" else scaled), how
    return values, how


#: The ``data`` name of a case built from an array (:func:`freqdyn.data_case`).
ARRAY_NAME = "<array>"


def data_target(tgt: Table, dim: int, folder: Path, array: RawSignal | None = None
                ) -> DataTarget:
    """The :class:`DataTarget` of a ``[target]`` table with ``data``; paths are relative to
    ``folder`` (the case file's).  ``array`` gives the samples instead of a file."""
    tgt.refuse_unknown(TARGET_KEYS)
    name = tgt.get("data")
    if not isinstance(name, str) or not name.strip():
        raise InputError(FIELD, f"must be a file name, got {name!r}")
    key = tgt.get("key")
    if key is not None and not isinstance(key, str):
        raise InputError("target.key", f"must be a string, got {key!r}")
    alpha = tgt.choice("alpha", "refuse", ("refuse", "ignore"))
    if array is not None:
        path, raw = Path(ARRAY_NAME), array
    elif name.startswith("sample:"):
        path, raw = Path(name), read_sample(name.removeprefix("sample:"), key)
    else:
        path = (folder / Path(name).expanduser()).resolve()
        raw = read_signal(path, key, alpha)
    if raw.x is not None and dim != 1:
        raise _refuse(path, f"holds (x, y) pairs, which are 1D; the case has d = {dim}")
    values = _check_values(path, raw, dim)
    if raw.x is not None:
        check_pairs(path, raw.x, values.size)
    axes = _extent(tgt, raw, values.shape, dim)
    if raw.x is not None and _is_uniform(raw.x):
        axes = [np.linspace(raw.x[0], raw.x[-1], raw.x.size)]  # evenly spaced x: a grid
    train, test, holdout = _holdout_masks(tgt, values.shape)
    if train.sum() < MIN_SAMPLES_PER_AXIS:
        raise InputError("target.holdout", f"leaves {int(train.sum())} training samples; "
                                           "hold out fewer")
    values, how = _normalise(tgt, values, train, raw)
    digest = hashlib.sha256(np.ascontiguousarray(raw.values)).hexdigest()
    return DataTarget(path=path, dim=dim, values=values, train=train, test=test, axes=axes,
                      x=None if axes is not None else raw.x, normalize=how, holdout=holdout,
                      sha256=digest, mode=raw.mode)


def _is_uniform(x: np.ndarray) -> bool:
    steps = np.diff(x)
    return bool(np.ptp(steps) <= 1e-9 * np.abs(steps).mean())

