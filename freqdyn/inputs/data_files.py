"""Readers of a user's signal file: one array of samples and, for a CSV of pairs, their x.

Formats (by extension; a file that is not what its extension says is refused):

* ``.npy``: one array; ``.npz``: the array under ``key`` (or the only one);
* ``.csv`` / ``.txt``: one column y (samples on a grid), or two columns x, y (1D samples,
  x strictly increasing); a first line that is not numbers is a header and skipped;
* ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``: an image read by Pillow.  Grayscale
  (mode L, 8 bit, or I;16, 16 bit) is read as given; RGB is converted to grayscale by
  ITU-R 601-2 luma (L = 0.299 R + 0.587 G + 0.114 B, Pillow's ``convert("L")``); an
  alpha channel is refused unless ``alpha = "ignore"`` drops it.  Row 0 is the image's
  top row, the first axis (x0) runs down the rows, the second (x1) along them.

A name ``sample:NAME`` reads a signal bundled with an installed package instead of a file
(:data:`SAMPLES`): ``sample:eeg`` is channel ``key`` (0–3, default 0) of matplotlib's
``eeg.dat``, 800 samples of an EEG recording (float64, shipped in matplotlib's
``mpl-data/sample_data``, under matplotlib's licence); ``sample:camera`` (512 × 512, CC0)
and ``sample:text`` (172 × 448, public domain) are scikit-image's 8-bit grayscale images
``skimage.data.camera()`` and ``text()``, the two classes (natural, text) of Tancik et
al. 2020.

Every problem is one :class:`~freqdyn.errors.InputError` naming the field ``target.data``,
the file and what is wrong.  Sizes are checked from the header before the samples load.
"""

from __future__ import annotations

import importlib.util
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, UnidentifiedImageError

from freqdyn.errors import InputError

FIELD = "target.data"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
TABLE_SUFFIXES = {".csv", ".txt"}
ARRAY_SUFFIXES = {".npy", ".npz"}
#: Largest number of samples a data file may hold (a 10⁸-sample signal is 0.8 GB).
MAX_SAMPLES = 100_000_000
#: Largest sample value of each image depth, for ``normalize = "max"``.
IMAGE_MAX = {"L": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0}


@dataclass(frozen=True)
class RawSignal:
    """The samples as read: ``values`` (grid, any ndim) or ``x``, ``values`` (1D pairs)."""

    values: np.ndarray
    x: np.ndarray | None = None  # the x column of a two-column CSV
    full_scale: float | None = None  # the largest value the format holds (images)
    mode: str = "array"


def _refuse(path: Path, problem: str) -> InputError:
    return InputError(FIELD, f"{str(path)!r} {problem}")


def _check_size(path: Path, shape) -> None:
    count = int(np.prod(shape, dtype=np.int64))
    if count > MAX_SAMPLES:
        raise _refuse(path, f"holds {count:.3g} samples (shape {tuple(shape)}), more than the "
                            f"{MAX_SAMPLES:.0e} freqdyn reads; subsample or crop it")


def _read_npy(path: Path, key: str | None) -> RawSignal:
    if path.suffix == ".npy":
        if key is not None:
            raise InputError("target.key", "is for .npz files; a .npy holds one array")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise _refuse(path, f"is not a .npy array file ({exc})") from None
        _check_size(path, array.shape)
        return RawSignal(np.array(array))
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise _refuse(path, f"is not a .npz archive ({exc})") from None
    with archive:
        names = list(archive.files)
        if key is None and len(names) != 1:
            raise InputError("target.key", f"{str(path)!r} holds {names}; name the array with "
                                           "key = \"...\"")
        key = names[0] if key is None else key
        if key not in names:
            raise InputError("target.key", f"{key!r} is not in {str(path)!r}; it holds {names}")
        try:
            return RawSignal(np.array(archive[key]))
        except ValueError as exc:
            raise _refuse(path, f"array {key!r} cannot be read ({exc})") from None


def _read_table(path: Path) -> RawSignal:
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise _refuse(path, "is not a text table (it holds binary data)") from None
    rows = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if rows and not _is_numeric_row(rows[0]):
        rows = rows[1:]  # a header
    if not rows:
        raise _refuse(path, "is empty: no rows of numbers")
    try:
        table = np.array([[float(v) for v in _split(row)] for row in rows])
    except ValueError as exc:
        bad = next(i for i, row in enumerate(rows) if not _is_numeric_row(row))
        raise _refuse(path, f"row {bad + 1} is not numbers ({exc})") from None
    if table.ndim != 2 or table.shape[1] not in (1, 2):
        width = {len(_split(r)) for r in rows}
        raise _refuse(path, f"must have one column (y) or two (x, y); rows have {sorted(width)}")
    if table.shape[1] == 1:
        return RawSignal(table[:, 0], mode="table")
    return RawSignal(table[:, 1], x=table[:, 0], mode="table")


def check_pairs(path: Path, x: np.ndarray, count: int) -> None:
    """Refuse x that is not finite, strictly increasing and one per sample."""
    if x.ndim != 1 or x.size != count:
        raise _refuse(path, f"has {x.size} x for {count} samples; give one x per sample")
    if not np.all(np.isfinite(x)):
        raise _refuse(path, "has NaN or infinite x")
    steps = np.diff(x)
    if np.any(steps == 0):
        at = int(np.argmax(steps == 0))
        raise _refuse(path, f"has the duplicate x = {x[at]:g} (samples {at + 1}, {at + 2}); "
                            "average or drop repeated samples")
    if np.any(steps < 0):
        at = int(np.argmax(steps < 0))
        raise _refuse(path, f"has x not sorted: x = {x[at]:g} then {x[at + 1]:g} (sample "
                            f"{at + 2}); sort the samples by x")


def _split(row: str) -> list[str]:
    return [v for v in row.replace(",", " ").replace(";", " ").split() if v]


def _is_numeric_row(row: str) -> bool:
    try:
        [float(v) for v in _split(row)]
    except ValueError:
        return False
    return bool(_split(row))


def _read_image(path: Path, alpha: str) -> RawSignal:
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        raise _refuse(path, f"is not an image Pillow can read ({exc})") from None
    with image:
        _check_size(path, image.size)
        mode = image.mode
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
            if alpha != "ignore":
                raise _refuse(path, f"has an alpha channel (mode {mode}); set target.alpha = "
                                    "\"ignore\" to drop it, or save the image without one")
            image = image.convert("RGB" if mode in ("RGBA", "PA", "P") else "L")
            mode = image.mode
        if mode in ("RGB", "P", "CMYK", "YCbCr"):
            image = image.convert("L")
            mode = "L"
        if mode not in IMAGE_MAX and mode not in ("I", "F"):
            raise _refuse(path, f"has the image mode {mode}, which freqdyn does not read; "
                                "save it as 8- or 16-bit grayscale or RGB")
        values = np.asarray(image, dtype=float)
    return RawSignal(values, full_scale=IMAGE_MAX.get(mode), mode=f"image {mode}")


def _eeg(key: str | None) -> RawSignal:
    channel = "0" if key is None else key
    if channel not in ("0", "1", "2", "3"):
        raise InputError("target.key", f"sample:eeg has channels '0' to '3', got {key!r}")
    spec = importlib.util.find_spec("matplotlib")  # located, not imported: compute
    path = Path(spec.origin).parent / "mpl-data" / "sample_data" / "eeg.dat"  # draws nothing
    return RawSignal(np.fromfile(path, dtype=float).reshape(800, 4)[:, int(channel)],
                     mode="sample eeg")


def _skimage(name: str):
    def read(key: str | None) -> RawSignal:
        if key is not None:
            raise InputError("target.key", f"sample:{name} is one image; drop key")
        return RawSignal(np.asarray(getattr(skimage.data, name)(), dtype=float),
                         full_scale=255.0, mode=f"sample {name} (8-bit grayscale)")
    return read


#: Signals bundled with installed packages, by the name after ``sample:``.
SAMPLES = {"eeg": _eeg, "camera": _skimage("camera"), "text": _skimage("text")}


def read_sample(name: str, key: str | None) -> RawSignal:
    """The bundled signal ``sample:NAME`` (:data:`SAMPLES`)."""
    if name not in SAMPLES:
        raise InputError(FIELD, f"'sample:{name}' is not a bundled signal; known: "
                                f"{', '.join('sample:' + k for k in SAMPLES)}")
    return SAMPLES[name](key)


def read_signal(path: Path, key: str | None = None, alpha: str = "refuse") -> RawSignal:
    """The samples of ``path`` (format by extension, see the module docstring)."""
    if not path.exists():
        raise _refuse(path, "not found (a relative path is read from the case file's folder)")
    if not path.is_file():
        raise _refuse(path, "is a folder, not a data file")
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return _read_npy(path, key)
    if key is not None:
        raise InputError("target.key", "is for .npz files only")
    if suffix in TABLE_SUFFIXES:
        return _read_table(path)
    if suffix in IMAGE_SUFFIXES:
        return _read_image(path, alpha)
    known = sorted(ARRAY_SUFFIXES | TABLE_SUFFIXES | IMAGE_SUFFIXES)
    raise _refuse(path, f"has the extension {suffix or '(none)'!r}; freqdyn reads "
                        f"{', '.join(known)}")
