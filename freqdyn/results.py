"""The one result schema for predicted and measured frequency dynamics.

An :class:`xarray.Dataset`, saved as netCDF (h5netcdf engine):

* dims ``time`` and ``xi`` (d = 1) or ``xi0``, ``xi1``[, ``xi2``];
* coordinates ``time`` (PDE time units: the t of ∂_t û = κ²α[σ_a²∇·(ρ_w∇û) − ρ_w û])
  and the ξ axes (cycles per unit of x);
* variables ``u_hat_real``, ``u_hat_imag``: the error transform û = f̂ − ĝ;
* attributes ``case_toml`` (the full case text), ``case_name``, ``freqdyn_version``,
  ``fourier_convention``, ``method`` (what produced it), plus method-specific ones.

Producers may add variables (for example a truncation-error estimate over ``time``).
Files are written atomically: to a temporary file in the same folder, then renamed.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from freqdyn._version import __version__
from freqdyn.errors import InputError
from freqdyn.inputs.fourier import CONVENTION

SCHEMA_VARIABLES = ("u_hat_real", "u_hat_imag")


def xi_dims(dim: int) -> tuple[str, ...]:
    """Names of the frequency dimensions: ``("xi",)`` or ``("xi0", "xi1"[, "xi2"])``."""
    return ("xi",) if dim == 1 else tuple(f"xi{i}" for i in range(dim))


#: Units of û = F[f − g] (convention B, docs/theory.md §2).
UNITS_U_HAT = "unit of g times (unit of x)^d"


def frequency_dataset(case, u_hat: np.ndarray, method: str, *, times=None, xi_axes=None,
                      variables: dict | None = None, attrs: dict | None = None) -> xr.Dataset:
    """Build the schema dataset for ``u_hat`` of shape (time, *xi) on the case grid.

    ``variables`` maps extra names to ``(dims, values)``; ``attrs`` adds attributes
    (non-string values are stored as JSON text).
    """
    times = case.times if times is None else np.asarray(times, dtype=float)
    xi_axes = case.xi_axes() if xi_axes is None else xi_axes
    dims = ("time", *xi_dims(case.dim))
    u_hat = np.asarray(u_hat)
    expected = (times.size, *(a.size for a in xi_axes))
    if u_hat.shape != expected:
        raise ValueError(f"u_hat has shape {u_hat.shape}, expected {expected} (time, *xi)")
    coords = {"time": ("time", times, {"units": "PDE time", "long_name": "time t"})}
    for name, axis in zip(xi_dims(case.dim), xi_axes, strict=True):
        coords[name] = (name, np.asarray(axis), {"units": "cycles per unit x",
                                                 "long_name": f"frequency {name}"})
    data = {
        "u_hat_real": (dims, u_hat.real.astype(float),
                       {"long_name": "real part of the error transform u_hat = F[f - g]",
                        "units": UNITS_U_HAT}),
        "u_hat_imag": (dims, u_hat.imag.astype(float),
                       {"long_name": "imaginary part of the error transform u_hat = F[f - g]",
                        "units": UNITS_U_HAT}),
    }
    for key, spec in (variables or {}).items():
        vdims, values, *rest = spec
        meta = dict(rest[0]) if rest else {}
        if not {"long_name", "units"} <= set(meta):  # every number in a file says what it is
            raise ValueError(f"result variable {key!r} needs a long_name and units")
        data[key] = (vdims, np.asarray(values), meta)
    all_attrs = {
        "Conventions": "CF-1.10",
        "title": f"freqdyn {method} result for case {case.name}",
        "case_name": case.name,
        "case_toml": case.text,
        "freqdyn_version": __version__,
        "fourier_convention": CONVENTION,
        "method": method,
        "peaks": json.dumps(np.asarray(case.peaks).tolist()),
        "truncation": json.dumps(case.truncation),
    }
    for key, val in (attrs or {}).items():
        all_attrs[key] = str(val) if isinstance(val, str) else json.dumps(val)
    return xr.Dataset(data, coords=coords, attrs=all_attrs)


def to_json(value):
    """``value`` as plain JSON data: the one sanitiser of every report freqdyn writes.

    numpy scalars and arrays become numbers and lists; NaN (an undefined number, or an
    event that never happened) becomes null; ±inf (e.g. a frequency that is never
    learned) becomes the string "inf" / "-inf"; tuples become lists.
    """
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``to_json(data)`` atomically, indented, to ``path``."""
    text = json.dumps(to_json(data), indent=1, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def u_hat(ds: xr.Dataset) -> xr.DataArray:
    """The complex error transform û of a schema dataset."""
    return ds["u_hat_real"] + 1j * ds["u_hat_imag"]


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary file, then it is renamed.

    The temporary file lives in the same folder (so the rename is atomic) and keeps the
    suffix of ``path`` (so writers that infer the format from it work); it gets the usual
    permissions, not mkstemp's private 0600.  A failed write leaves ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to netCDF atomically (temporary file + rename in the same folder)."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def read_dataset(path: str | Path) -> xr.Dataset:
    """Load a result file fully into memory and check it follows the schema."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    missing = [v for v in SCHEMA_VARIABLES if v not in ds]
    if missing or "time" not in ds.dims:
        raise ValueError(f"{path}: not a freqdyn result file (missing {missing or ['time']})")
    return ds


def peaks_of(ds: xr.Dataset) -> np.ndarray:
    """The target's spectral peaks stored with a result, shape (k, d)."""
    return np.asarray(json.loads(ds.attrs.get("peaks", "[]")), dtype=float)


def peak_ratios(ds: xr.Dataset, peaks: np.ndarray | None = None) -> np.ndarray:
    """|û(ω_k, t)| / |û(ω_k, 0)| at the peaks ω_k (linear interpolation), shape (k, time);
    NaN for a peak whose initial amplitude is 0 (nothing there to learn)."""
    peaks = peaks_of(ds) if peaks is None else np.asarray(peaks, dtype=float)
    dims = [d for d in ds["u_hat_real"].dims if d != "time"]
    values = u_hat(ds)
    out = []
    for peak in peaks.reshape(-1, len(dims)):
        at = values.interp({name: float(c) for name, c in zip(dims, peak, strict=True)})
        mag = np.abs(at.values)
        out.append(mag / mag[0] if mag[0] > 0 else np.full(mag.shape, np.nan))
    return np.array(out).reshape(-1, ds.sizes["time"])


def check_output_folder(folder: str | Path, field: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be made: a file, a path under
    a file, or a place that takes no new folder (no permission, /proc, a read-only disk).
    Nothing is created: the test folder made inside the nearest existing ancestor is
    removed again.  Every command checks its ``--out`` with this first."""
    folder = Path(folder)
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        where = "is a file" if ancestor == folder else f"lies under the file {ancestor}"
        raise InputError(field, f"{folder} {where}, not a folder; choose another output "
                                "folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".freqdyn-check-", dir=ancestor))
    except OSError as exc:
        raise InputError(field, f"cannot make a folder in {ancestor} ({exc.strerror}); "
                                "choose an output folder you can write to") from None
    return folder


class FolderLock:
    """Refuse a second freqdyn run writing into the same output folder at the same time.

    An exclusive ``flock`` on ``<folder>/.freqdyn.lock`` for the life of the run; the
    file records the holder's pid.  Taking the lock removes the hidden temporaries of
    atomic writes (``.name.*.tmp.ext``) that a killed run left in the folder.  The
    operating system releases the lock when the process ends, however it ends, so a
    killed run never leaves the folder locked.
    """

    def __init__(self, folder: str | Path, field: str = "--out"):
        self.folder, self.field, self.handle = Path(folder), field, None

    def __enter__(self):
        check_output_folder(self.folder, self.field)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / ".freqdyn.lock", "a+")  # noqa: SIM115 - held open
        except PermissionError:
            raise InputError(self.field, f"cannot write into {self.folder} (permission "
                                         "denied); choose a folder you can write to") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise InputError(self.field, f"another freqdyn run (pid {holder}) is writing into "
                                         f"{self.folder}; wait for it or choose another "
                                         "folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        # temporaries of an atomic write that a killed run left behind (no run holds the
        # folder now, so none of them is being written)
        for stale in [*self.folder.glob(".*.tmp*"), *self.folder.glob("*/.*.tmp*")]:
            stale.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc):

        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
        return False


def at_times(ds: xr.Dataset, times) -> xr.Dataset:
    """``ds`` at ``times`` only, each one of its own times exactly (a prediction made once
    on a finer grid, read at the case's report times)."""
    times = np.asarray(times, dtype=float)
    have = ds["time"].values
    index = np.minimum(np.searchsorted(have, times), have.size - 1)
    if not np.array_equal(have[index], times):
        raise ValueError(f"times {times[have[index] != times]} are not among the dataset's")
    return ds.isel(time=index)

