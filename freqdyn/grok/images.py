"""Image data for the frequency view of grokking: MNIST from IDX files, scikit-learn digits.

MNIST cannot be downloaded by freqdyn; :func:`load_mnist` reads the four standard IDX
files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each raw or ``.gz``) from a folder the user gives.  The default
image experiment uses scikit-learn's digits instead (1797 images of 8×8 pixels with
values 0…16, shipped inside the package; :func:`load_digits`).

Both return an :class:`ImageData` with pixels scaled to [0, 1] (MNIST: /255, digits: /16),
flattened to one row per image, and integer labels 0…9.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freqdyn.errors import InputError

#: IDX type codes (third byte of the magic number) → big-endian numpy dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class ImageData:
    """A labelled image set: rows of pixels in [0, 1] and labels 0…9, split train/test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (raw, or gzip-compressed when the name ends .gz).

    Format: two zero bytes, a type code (:data:`IDX_DTYPES`), the number of dimensions
    r, then r big-endian uint32 sizes and the data in C order, big-endian.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise InputError("settings.mnist_dir", f"cannot read {path.name}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise InputError("settings.mnist_dir", f"{path.name} is not an IDX file (bad magic "
                                              f"number {raw[:4].hex()})")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise InputError("settings.mnist_dir", f"{path.name} holds {len(raw)} bytes, its "
                                              f"header promises {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise InputError("settings.mnist_dir", f"{folder} has neither {stem} nor {stem}.gz")


def _rows(images: np.ndarray) -> np.ndarray:
    """(count, height, width) uint8 images → (count, height·width) floats in [0, 1]."""
    return images.reshape(images.shape[0], -1).astype(np.float64) / 255.0


def load_mnist(folder: str | Path) -> ImageData:
    """MNIST (or any IDX set with the same file names) from ``folder``; pixels / 255."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("settings.mnist_dir", f"{folder} is not a folder")
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise InputError("settings.mnist_dir", f"{split} images {images.shape} and labels "
                                                  f"{labels.shape} do not match")
    return ImageData(name="mnist", x_train=_rows(arrays["train_images"]),
                     y_train=arrays["train_labels"].astype(np.int64),
                     x_test=_rows(arrays["test_images"]),
                     y_test=arrays["test_labels"].astype(np.int64))


def load_digits(n_train: int, seed: int) -> ImageData:
    """scikit-learn's 8×8 digits (1797 images), pixels / 16, split at random.

    ``n_train`` images (drawn without replacement with numpy's default_rng(seed)) form
    the training set, the rest the test set.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise InputError("settings.dataset", "the digits need scikit-learn: pip install "
                                             "'freqdyn[grok]'") from None

    bunch = sklearn_digits()
    total = bunch.data.shape[0]
    if not 0 < n_train < total:
        raise InputError("settings.n_train", f"must be in 1…{total - 1} for digits, "
                                            f"got {n_train}")
    order = np.random.default_rng(seed).permutation(total)
    x, y = bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)
    train, test = order[:n_train], order[n_train:]
    return ImageData(name="digits", x_train=x[train], y_train=y[train], x_test=x[test],
                     y_test=y[test])


def subsample_train(data: ImageData, n_train: int, seed: int) -> ImageData:
    """The first ``n_train`` of a seeded permutation of the training images (e.g. MNIST-1000)."""
    if not 0 < n_train <= data.x_train.shape[0]:
        raise InputError("settings.n_train", f"must be in 1…{data.x_train.shape[0]}, "
                                            f"got {n_train}")
    keep = np.random.default_rng(seed).permutation(data.x_train.shape[0])[:n_train]
    return ImageData(name=data.name, x_train=data.x_train[keep], y_train=data.y_train[keep],
                     x_test=data.x_test, y_test=data.y_test)
