"""Image loaders: IDX files written byte by byte here, scikit-learn digits."""

import gzip
import struct

import numpy as np
import pytest

from freqdyn.errors import InputError
from freqdyn.grok.images import load_digits, load_mnist, read_idx, subsample_train


def idx_bytes(array: np.ndarray, code: int, fmt: str) -> bytes:
    """IDX encoding written independently of the reader: magic, sizes, big-endian data."""
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + struct.pack(f">{array.size}{fmt}", *array.ravel().tolist())


def write_mnist(folder, rng, n_train=6, n_test=4, gz=False):
    images = {"train": rng.integers(0, 256, (n_train, 3, 2)),
              "t10k": rng.integers(0, 256, (n_test, 3, 2))}
    labels = {"train": rng.integers(0, 10, n_train), "t10k": rng.integers(0, 10, n_test)}
    for split in ("train", "t10k"):
        for kind, array, dims in (("images", images[split], 3), ("labels", labels[split], 1)):
            data = idx_bytes(array.astype(np.uint8), 0x08, "B")
            name = folder / f"{split}-{kind}-idx{dims}-ubyte"
            if gz:
                (name.with_name(name.name + ".gz")).write_bytes(gzip.compress(data))
            else:
                name.write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_reads_back_what_was_written(tmp_path, gz):
    images, labels = write_mnist(tmp_path, np.random.default_rng(0), gz=gz)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (6, 6) and data.x_test.shape == (4, 6)
    assert np.array_equal(data.x_train * 255, images["train"].reshape(6, 6))
    assert np.array_equal(data.y_test, labels["t10k"])
    assert data.x_train.max() <= 1.0


@pytest.mark.parametrize(("code", "fmt", "dtype"), [
    (0x0B, "h", np.int16), (0x0C, "i", np.int32), (0x0D, "f", np.float32),
    (0x0E, "d", np.float64), (0x09, "b", np.int8)])
def test_idx_type_codes(tmp_path, code, fmt, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    path = tmp_path / "a.idx"
    path.write_bytes(idx_bytes(array, code, fmt))
    got = read_idx(path)
    assert got.dtype == dtype and np.array_equal(got, array)


def test_bad_idx_files_name_the_setting(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(InputError, match="not an IDX file") as info:
        read_idx(tmp_path / "bad")
    assert info.value.field == "settings.mnist_dir"
    short = idx_bytes(np.zeros((2, 2), np.uint8), 0x08, "B")[:-1]
    (tmp_path / "short").write_bytes(short)
    with pytest.raises(InputError, match="promises"):
        read_idx(tmp_path / "short")
    with pytest.raises(InputError, match="neither"):
        load_mnist(tmp_path)


def test_digits_split_and_subsample_are_seeded_and_disjoint():
    a, b = load_digits(1000, seed=3), load_digits(1000, seed=3)
    assert a.x_train.shape == (1000, 64) and a.x_test.shape == (797, 64)
    assert np.array_equal(a.x_train, b.x_train) and a.n_classes == 10
    assert 0.0 <= a.x_train.min() and a.x_train.max() == 1.0
    train_rows = {row.tobytes() for row in a.x_train}
    assert not any(row.tobytes() in train_rows for row in a.x_test)  # digits has no duplicates
    small = subsample_train(a, 100, seed=1)
    assert small.x_train.shape == (100, 64) and small.x_test is a.x_test
    with pytest.raises(InputError) as info:
        load_digits(1797, seed=0)
    assert info.value.field == "settings.n_train"
