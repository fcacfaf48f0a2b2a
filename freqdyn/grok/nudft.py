"""Input-frequency spectra of sampled functions: the non-uniform DFT of the frequency view.

Convention (Zhou–Zhang–Xu, the frequency view of grokking; angular frequency, no 2π):

    F[f](k) = (1/n) Σ_{j=1}^{n} f(x_j) exp(−i k x_j),

for n samples f(x_j) at scattered points x_j and any frequency grid k (radians per unit
of x).  With this normalisation sin(6x) sampled evenly over a period has |F(6)| = 1/2.
For d-dimensional inputs the transform runs along a unit direction d (the projection
method of Xu et al.):

    F_d[f](k) = (1/n) Σ_j f(x_j) exp(−i k (d·x_j)),

with d the first principal component of a reference data set or a user direction.

This normalisation differs from :func:`freqdyn.inputs.fourier.nudft`, which serves the PDE
side (convention B, cycles per unit, quadrature weights); both evaluate the one exponential
sum :func:`freqdyn.inputs.fourier.exponential_sum`, in two ways:

* ``"direct"``: the O(n·K) sum, in chunks of frequencies so that the exponential matrix
  stays below :data:`freqdyn.inputs.fourier.CHUNK_ELEMENTS` complex entries;
* ``"fast"``: the FINUFFT library — type 1 when the frequency grid is uniform (the points
  are rescaled and wrapped to [−π, π), exact because the exponent is periodic on such a
  grid), type 3 (nonuniform to nonuniform) otherwise — at the requested relative
  tolerance ``eps``.

``method="auto"`` picks the fast path when n·K ≥ :data:`freqdyn.inputs.fourier.FAST_THRESHOLD`.

Two freqdyn additions (not in the paper, which compares spectra by eye):

* Δ_F(k) = |F[h](k) − F[y](k)| / |F[y](k)|, the frequency-principle relative error of
  Xu et al., evaluated at the peaks of |F[y]| (:func:`relative_error_at_peaks`);
* the train-vs-test spectral mismatch: the fraction of the training-set target spectrum's
  power Σ_k |F_train[y](k)|² that lies outside the support of the test (true) spectrum,
  where its amplitude is below 10 % of its maximum (:func:`spectral_mismatch`).  0 means
  the training set shows only the true frequencies; aliasing by sparse, non-uniform
  sampling raises it.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from freqdyn.errors import InputError
from freqdyn.inputs.fourier import METHODS, exponential_sum


def _as_points(x, field: str) -> np.ndarray:
    points = np.asarray(x, dtype=float)
    if points.ndim != 1 or points.size == 0:
        raise InputError(field, f"expected a non-empty 1-D array of points, got shape "
                               f"{points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError(field, "points must be finite")
    return points


def _as_values(values, n: int) -> np.ndarray:
    vals = np.asarray(values)
    if vals.ndim not in (1, 2) or vals.shape[0] != n:
        raise InputError("values", f"expected shape ({n},) or ({n}, outputs), got {vals.shape}")
    if not np.all(np.isfinite(vals)):
        raise InputError("values", "values must be finite")
    return vals.astype(complex)


def nudft(x, values, k, *, method: str = "auto", eps: float = 1e-12,
          threads: int | None = None) -> np.ndarray:
    """F[f](k) = (1/n) Σ_j f(x_j) exp(−i k x_j) at 1-D points x (n,) and frequencies k (K,).

    ``values`` has shape (n,) or (n, m) for m outputs (each column transformed); the
    result has shape (K,) or (K, m), complex.  k is angular (radians per unit of x).
    ``method`` is "direct", "fast" (FINUFFT at relative tolerance ``eps``) or "auto";
    ``threads`` caps FINUFFT's threads (None: the library's default).
    """
    if method not in METHODS:
        raise InputError("method", f"expected one of {METHODS}, got {method!r}")
    if not (0 < eps < 1):
        raise InputError("eps", f"expected a tolerance in (0, 1), got {eps}")
    points = _as_points(x, "x")
    freqs = _as_points(k, "k")
    vals = _as_values(values, points.size)
    sums = exponential_sum(points, vals.reshape(points.size, -1), freqs, method=method,
                           eps=eps, threads=threads) / points.size
    return sums[:, 0] if vals.ndim == 1 else sums


def principal_direction(data) -> np.ndarray:
    """Unit first principal direction of the rows of ``data`` (n, d), centred, by SVD.

    The sign is fixed deterministically: the entry of largest magnitude is positive (the
    first such entry on ties).  Degenerate data (e.g. the full hypercube, whose covariance
    is the identity) has no preferred direction; use a user direction there.
    """
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise InputError("data", f"expected an (n ≥ 2, d) array, got shape {arr.shape}")
    centred = arr - arr.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    if singular[0] == 0:
        raise InputError("data", "all rows are equal: no principal direction")
    direction = vt[0]
    if direction[np.argmax(np.abs(direction))] < 0:
        direction = -direction
    return direction


def unit_direction(direction, dim: int) -> np.ndarray:
    """``direction`` as a unit vector of length ``dim`` (InputError naming ``direction``)."""
    d = np.asarray(direction, dtype=float)
    if d.shape != (dim,):
        raise InputError("direction", f"expected {dim} entries, got shape {d.shape}")
    norm = np.linalg.norm(d)
    if not np.isfinite(norm) or norm == 0:
        raise InputError("direction", "must be a finite non-zero vector")
    return d / norm


def projected_nudft(x, values, k, direction, **options) -> np.ndarray:
    """F_d[f](k) = (1/n) Σ_j f(x_j) exp(−i k (d·x_j)) for points x (n, dim).

    ``direction`` is normalised to unit length; pass :func:`principal_direction` of the
    reference data for the PCA projection.  Other keywords go to :func:`nudft`.
    """
    points = np.asarray(x, dtype=float)
    if points.ndim != 2:
        raise InputError("x", f"expected an (n, dim) array of points, got shape {points.shape}")
    d = unit_direction(direction, points.shape[1])
    return nudft(points @ d, values, k, **options)


def amplitude(spectrum) -> np.ndarray:
    """|F(k)|, the amplitude spectrum (same units as the sampled function)."""
    return np.abs(np.asarray(spectrum))


def spectral_peaks(spectrum, *, rel_height: float = 0.1) -> np.ndarray:
    """Indices of the peaks of |F(k)| (1-D) at least ``rel_height`` × the largest amplitude.

    A peak is a local maximum of the amplitude (scipy.signal.find_peaks); an end point of
    the grid counts when it exceeds its single neighbour, since k = 0 or the last grid
    frequency may carry the largest component.
    """
    amp = amplitude(spectrum)
    if amp.ndim != 1 or amp.size == 0:
        raise InputError("spectrum", f"expected a non-empty 1-D spectrum, got shape {amp.shape}")
    top = amp.max()
    if top == 0:
        return np.array([], dtype=int)
    padded = np.concatenate(([-np.inf], amp, [-np.inf]))
    found, _ = find_peaks(padded, height=rel_height * top)
    return found - 1


def relative_error_at_peaks(output_spectrum, target_spectrum, peaks) -> np.ndarray:
    """Δ_F(k) = |F[h](k) − F[y](k)| / |F[y](k)| at the indices ``peaks`` (freqdyn addition).

    Dimensionless; 0 when the output matches the target at that frequency, 1 when the
    output has no component there.
    """
    out = np.asarray(output_spectrum)
    target = np.asarray(target_spectrum)
    if out.shape != target.shape:
        raise InputError("output_spectrum", f"shape {out.shape} differs from the target's "
                                           f"{target.shape}")
    idx = np.asarray(peaks, dtype=int)
    denom = np.abs(target[idx])
    if np.any(denom == 0):
        raise InputError("peaks", "the target spectrum vanishes at a listed peak")
    return np.abs(out[idx] - target[idx]) / denom


def spectral_mismatch(train_spectrum, test_spectrum, *, rel_height: float = 0.1) -> float:
    """Fraction of the training-set power Σ_k |F_train(k)|² outside the true spectrum's support.

    The support is where the test (true) amplitude reaches ``rel_height`` × its maximum:
    the peak itself for a line spectrum (sin 6x on integer k), the whole band of a broad
    peak (parity along the diagonal).  Dimensionless in [0, 1]; a freqdyn addition
    measuring how much spurious (aliased) content the training sample adds.
    """
    train = amplitude(train_spectrum)
    test = amplitude(test_spectrum)
    if train.shape != test.shape or train.ndim != 1:
        raise InputError("train_spectrum", f"expected a 1-D spectrum of the test spectrum's "
                                          f"shape {test.shape}, got {train.shape}")
    power = train**2
    total = power.sum()
    if total == 0 or test.max() == 0:
        return 0.0
    support = test >= rel_height * test.max()
    return float(power[~support].sum() / total)
