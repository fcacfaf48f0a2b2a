"""Data targets: every format read as documented, every bad file refused in one line (exit 2)."""

import numpy as np
import pytest
from PIL import Image

import freqdyn
from freqdyn.cli import main
from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case

CASE = """
name = "data"
[network]
dim = {dim}
sigma_a = 0.1
[network.rho_w]
family = "gaussian"
scale = 8.0
[target]
data = "{file}"
{extra}
[frequency]
times = [0.0, 10.0, 100.0]
"""


def _case(tmp_path, file, dim=1, extra=""):
    path = tmp_path / "case.toml"
    path.write_text(CASE.format(dim=dim, file=file, extra=extra))
    return path


def _signal(n=64):
    x = np.linspace(0.0, 1.0, n)
    return np.sin(2 * np.pi * 3 * x) + 0.5 * np.cos(2 * np.pi * 11 * x)


def test_npy_grid_with_stride_holdout(tmp_path):
    np.save(tmp_path / "s.npy", _signal(65))
    case = load_case(_case(tmp_path, "s.npy", extra="holdout = { stride = 2 }"))
    t = case.target
    assert case.is_data and t.on_grid and (t.n_train, t.n_test) == (33, 32)
    assert t.cell_volume == pytest.approx(2 / 64)  # the training grid's spacing 2Δ
    assert np.array_equal(t.values, _signal(65))  # values as given
    np.testing.assert_allclose(case.bounds, [[-32.0, 32.0]])  # ±1/(2Δ)
    assert np.any(np.abs(case.peaks[:, 0] - 3.0) < 0.5)


def test_fraction_holdout_is_seeded_and_normalisation_uses_training_samples(tmp_path):
    np.save(tmp_path / "s.npy", _signal() + 5.0)
    extra = 'holdout = { fraction = 0.25, seed = 3 }\nnormalize = "mean"'
    a = load_case(_case(tmp_path, "s.npy", extra=extra)).target
    b = load_case(_case(tmp_path, "s.npy", extra=extra)).target
    assert np.array_equal(a.train, b.train) and a.n_test == 16
    assert a.values[a.train].mean() == pytest.approx(0.0, abs=1e-12)
    assert a.cell_volume == pytest.approx(1 / 63 * 64 / 48)


def test_offset_test_grid_as_tancik(tmp_path):
    np.save(tmp_path / "s.npy", np.outer(_signal(16), _signal(16)))
    t = load_case(_case(tmp_path, "s.npy", dim=2,
                        extra='holdout = { stride = 2, test = "offset" }')).target
    assert t.train[::2, ::2].all() and t.test[1::2, 1::2].all()
    assert t.n_train == t.n_test == 64 and not (t.train & t.test).any()


def test_csv_one_and_two_columns(tmp_path):
    y = _signal(40)
    np.savetxt(tmp_path / "y.csv", y, header="y", comments="")
    one = load_case(_case(tmp_path, "y.csv")).target
    assert one.on_grid and np.allclose(one.values, y)
    x = np.sort(np.random.default_rng(0).uniform(0, 2, 40))
    np.savetxt(tmp_path / "xy.csv", np.column_stack([x, y]), delimiter=",")
    two = load_case(_case(tmp_path, "xy.csv")).target
    assert not two.on_grid and np.allclose(two.x, x)
    even = np.linspace(0, 2, 40)
    np.savetxt(tmp_path / "even.csv", np.column_stack([even, y]), delimiter=",")
    assert load_case(_case(tmp_path, "even.csv")).target.on_grid  # even x: a grid


def test_images_rgb_to_luma_16_bit_and_alpha(tmp_path):
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = np.arange(10) * 20
    rgb[..., 2] = 100
    Image.fromarray(rgb).save(tmp_path / "c.png")
    t = load_case(_case(tmp_path, "c.png", dim=2, extra='normalize = "max"')).target
    expected = np.asarray(Image.fromarray(rgb).convert("L"), float) / 255
    assert t.values.shape == (8, 10) and np.allclose(t.values, expected)
    centred = load_case(_case(tmp_path, "c.png", dim=2, extra='normalize = "max-mean"\n'
                              'holdout = { stride = 2 }')).target
    assert np.allclose(centred.values, expected - expected[::2, ::2].mean())  # training mean
    deep = (np.arange(80).reshape(8, 10) * 800).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    t16 = load_case(_case(tmp_path, "d.png", dim=2)).target
    assert np.array_equal(t16.values, deep.astype(float))  # 16 bit, as given
    rgba = np.dstack([rgb, np.full((8, 10), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="alpha channel"):
        load_case(_case(tmp_path, "a.png", dim=2))
    kept = load_case(_case(tmp_path, "a.png", dim=2, extra='alpha = "ignore"')).target
    assert np.allclose(kept.values, expected * 255)


def test_data_case_from_an_array_records_the_samples():
    y = _signal()
    case = freqdyn.data_case(y, extent=[[0, 2]], holdout={"stride": 2}, sigma_a=0.1,
                             rho_w={"family": "gaussian", "scale": 8.0}, times=[0, 1])
    assert case.target.n_train == 32 and case.target.spacing()[0] == pytest.approx(2 / 63)
    assert 'data = "<array>"' in case.text and len(case.target.sha256) == 64


def _bad_files(tmp_path):
    """(file name, writer, dim, extra keys, text the one line must hold)."""
    y = _signal()
    return [
        ("nan.npy", lambda p: np.save(p, np.where(np.arange(64) == 5, np.nan, y)), 1, "",
         "NaN or infinite value(s), the first at index (5,)"),
        ("inf.npy", lambda p: np.save(p, np.where(np.arange(64) == 2, np.inf, y)), 1, "",
         "NaN or infinite"),
        ("empty.npy", lambda p: np.save(p, np.zeros(0)), 1, "", "is empty"),
        ("flat.npy", lambda p: np.save(p, np.full(64, 2.0)), 1, "", "is constant"),
        ("two.npy", lambda p: np.save(p, np.outer(y, y)), 1, "", "2 axes, but the case has"),
        ("one.npy", lambda p: np.save(p, y), 2, "", "1 axes, but the case has [network] dim = 2"),
        ("short.npy", lambda p: np.save(p, y[:3]), 1, "", "at least 4 samples"),
        ("complex.npy", lambda p: np.save(p, y + 1j), 1, "", "complex"),
        ("text.npy", lambda p: p.write_text("hello"), 1, "", "is not a .npy array file"),
        ("text.png", lambda p: p.write_text("hello"), 2, "", "is not an image Pillow can read"),
        ("bin.csv", lambda p: p.write_bytes(b"\xff\xfe\x00\x81"), 1, "", "binary data"),
        ("unsorted.csv", lambda p: p.write_text("0,1\n2,3\n1,2\n3,1\n4,0\n"), 1, "",
         "x not sorted: x = 2 then 1"),
        ("dup.csv", lambda p: p.write_text("0,1\n1,3\n1,2\n3,1\n4,0\n"), 1, "",
         "duplicate x = 1"),
        ("wide.csv", lambda p: p.write_text("0,1,2\n1,3,4\n"), 1, "", "one column (y) or two"),
        ("s.npy", lambda p: np.save(p, y), 1, "extent = [[0.0, 1.0], [0.0, 1.0]]",
         "must hold 1 pair(s)"),
        ("s.npy", lambda p: np.save(p, y), 1, "extent = [1.0, 0.0]", "first < last"),
        ("s.npy", lambda p: np.save(p, y), 1, 'normalize = "max"', "'max' divides by"),
        ("s.npy", lambda p: np.save(p, y), 1, "holdout = { stride = 2, fraction = 0.5 }",
         "stride or fraction, not both"),
        ("s.wav", lambda p: p.write_text("x"), 1, "", "has the extension '.wav'"),
        ("missing.npy", lambda p: None, 1, "", "not found"),
        ("k.npz", lambda p: np.savez(p, a=y, b=y), 1, "", "name the array with key"),
    ]


@pytest.mark.parametrize("index", range(21))
def test_bad_data_is_one_line_and_exit_2(tmp_path, capsys, index):
    name, write, dim, extra, problem = _bad_files(tmp_path)[index]
    write(tmp_path / name)
    case = _case(tmp_path, name, dim=dim, extra=extra)
    assert main(["solve", str(case), "--method", "kernel-flow", "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and problem in err, err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_expression_and_data_together_are_refused(tmp_path):
    np.save(tmp_path / "s.npy", _signal())
    with pytest.raises(InputError, match="not both"):
        load_case(_case(tmp_path, "s.npy", extra='g = "exp(-x**2)"'))


def test_paths_resolve_against_the_case_file(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "s.npy", _signal())
    case_path = tmp_path / "sub" / "case.toml"
    case_path.write_text(CASE.format(dim=1, file="s.npy", extra=""))
    monkeypatch.chdir(tmp_path)
    assert load_case("sub/case.toml").target.path == (tmp_path / "sub" / "s.npy").resolve()


@pytest.mark.parametrize("name, shape", [("camera", (512, 512)), ("text", (172, 448))])
def test_bundled_images_are_read_with_their_full_scale(tmp_path, name, shape):
    t = load_case(_case(tmp_path, f"sample:{name}", dim=2, extra='normalize = "max"')).target
    assert t.values.shape == shape and 0.0 <= t.values.min() < t.values.max() <= 1.0
    assert str(t.path) == f"sample:{name}"


def test_bundled_eeg_channels_and_unknown_samples(tmp_path):
    a = load_case(_case(tmp_path, "sample:eeg", extra='key = "1"')).target
    assert a.values.shape == (800,)
    with pytest.raises(InputError, match="channels '0' to '3'"):
        load_case(_case(tmp_path, "sample:eeg", extra='key = "7"'))
    with pytest.raises(InputError, match="not a bundled signal"):
        load_case(_case(tmp_path, "sample:nope"))
