"""Frequency view of grokking: data constructions, closed-form spectra, tiny end-to-end runs."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.decomposition import PCA

from freqdyn.errors import InputError
from freqdyn.grok.frequency_view import (
    aliasing_points,
    frequency_mlp,
    hypercube,
    loss_events,
    split_indices,
    train_probed,
)
from freqdyn.grok.nudft import nudft, projected_nudft
from freqdyn.runs.experiment import load_experiment
from freqdyn.runs.runner import run_experiment

ROOT = Path(__file__).resolve().parents[2]



def _parity_spectrum_exact(k, bits):
    """|F_d[Π x_i](k)| on the full cube along d = 1/√bits: |sin(k/√bits)|^bits, from
    F = Π_i ½ Σ_{x_i=±1} x_i e^{−i k x_i/√bits} = (−i sin(k/√bits))^bits."""
    return np.abs(np.sin(np.asarray(k) / np.sqrt(bits))) ** bits

def write_tiny_mnist(folder: Path, n_train: int, n_test: int) -> None:
    """The four MNIST IDX files (uint8, 3×2 images), written byte by byte."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        for kind, shape in (("images", (n, 3, 2)), ("labels", (n,))):
            array = rng.integers(0, 10 if kind == "labels" else 256, shape).astype(np.uint8)
            header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
            dims = len(shape)
            (folder / f"{split}-{kind}-idx{dims}-ubyte").write_bytes(header + array.tobytes())


def test_aliasing_set_plants_the_k1_alias_of_the_spec_table():
    x = aliasing_points(65, "non-uniform")
    grid = np.linspace(-np.pi, np.pi, 10000)
    gap1 = np.abs(np.sin(grid) - np.sin(6 * grid))
    # the first 20 points are the 20 grid points closest to the sin x / sin 6x crossings
    assert np.all(np.abs(np.sin(x[:20]) - np.sin(6 * x[:20])) <= np.sort(gap1)[19])
    assert np.allclose(x[30:], np.linspace(-np.pi, np.pi, 35))
    amp = np.abs(nudft(x, np.sin(6 * x), np.arange(9.0)))
    # the paper's "our run" setting (docs/grokking/frequency-view.md), extras evenly spaced
    assert np.allclose(amp, [0, 0.206, 0.060, 0.012, 0.141, 0.026, 0.537, 0.034, 0.147],
                       atol=6e-4)
    uniform = aliasing_points(65, "uniform")
    assert np.abs(nudft(uniform, np.sin(6 * uniform), [1.0]))[0] < 1e-12
    rand = aliasing_points(65, "non-uniform", extras="random", seed=4)
    assert np.array_equal(rand, aliasing_points(65, "non-uniform", extras="random", seed=4))
    assert np.isin(rand[30:], grid).all()
    with pytest.raises(InputError) as info:
        aliasing_points(65, "non-uniform", extras="sobol")
    assert info.value.field == "settings.extras"


def test_parity_spectrum_on_the_full_cube_is_the_closed_form():
    cube = hypercube(10)
    assert cube.shape == (1024, 10) and np.unique(cube, axis=0).shape[0] == 1024
    k = np.linspace(0, 2 * np.pi, 101)
    got = np.abs(projected_nudft(cube, np.prod(cube, axis=1), k, np.ones(10)))
    assert np.allclose(got, _parity_spectrum_exact(k, 10), atol=1e-13)
    assert _parity_spectrum_exact(np.pi * np.sqrt(10) / 2, 10) == pytest.approx(1.0)


def test_split_is_seeded_disjoint_and_complete():
    train, test = split_indices(1024, 0.2, seed=7)
    assert train.size == 205 and test.size == 819
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1024))
    assert np.array_equal(train, split_indices(1024, 0.2, seed=7)[0])
    assert not np.array_equal(train, split_indices(1024, 0.2, seed=8)[0])


def test_init_scale_multiplies_every_parameter_of_the_default_law():
    base = frequency_mlp(3, 20, 2, 4, "relu", 1.0, seed=5)
    big = frequency_mlp(3, 20, 2, 4, "relu", 8.0, seed=5)
    for p, q in zip(base.parameters(), big.parameters(), strict=True):
        assert torch.allclose(8 * p, q)
    first = base[0]
    assert first.weight.abs().max() <= 1 / np.sqrt(3) and first.weight.abs().max() > 0.5
    sin_net = frequency_mlp(1, 4, 1, 1, "sin", 0.5, seed=5)
    assert isinstance(sin_net[1], torch.nn.Module) and sin_net[1](torch.tensor(0.5)) == \
        pytest.approx(np.sin(0.5))


def test_loss_events_on_hand_made_curves():
    steps = np.arange(0, 100, 10)
    test = np.array([1.0, 1.2, 1.3, 1.25, 1.1, 0.9, 0.5, 0.1, 0.1, 0.1])
    train = np.array([1.0, 0.6, 0.5, 0.5, 0.5, 0.4, 0.2, 0.05, 0.01, 0.01])
    ev = loss_events(steps, train, test, rise_tolerance=0.05)
    assert ev["test_peak_step"] == 20 and ev["test_rise"] == pytest.approx(0.3)
    assert ev["test_fall_step"] == 50 and ev["train_fall_step"] == 10 and ev["delay"] == 40
    assert ev["grokked"] and ev["max_gap"] == pytest.approx(0.8)
    assert loss_events(steps, train, test, 0.05, fall_level=0.2)["test_fall_step"] == 70
    control = loss_events(steps, train, train + 0.01, rise_tolerance=0.05)
    assert not control["grokked"] and control["delay"] == 0
    never = loss_events(steps, train, np.linspace(1.0, 1.5, 10), rise_tolerance=0.05)
    assert never["test_fall_step"] is None and never["delay"] is None  # not reached: no time
    assert not never["test_fell"] and not never["grokked"]


def test_train_probed_takes_gradient_steps_and_records_output_spectra():
    """A linear model (depth 0): one full-batch SGD step has a closed form."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 20), rng.normal(size=20)
    model = frequency_mlp(1, 1, 0, 1, "relu", 1.0, seed=0)
    w0, b0 = model[0].weight.item(), model[0].bias.item()
    k = np.arange(4.0)
    run = train_probed(model, torch.optim.SGD(model.parameters(), lr=0.1), x_train=x,
                       y_train=y, x_test=x[:5], y_test=y[:5], steps=1, eval_every=1, seed=0,
                       device="cpu", spectra_fn=lambda a, b: {"s": nudft(x, a[:, 0], k)})
    residual = w0 * x + b0 - y  # d/dw mean(r²) = 2 mean(r x)
    w1 = w0 - 0.1 * 2 * np.mean(residual * x)
    b1 = b0 - 0.1 * 2 * np.mean(residual)
    assert model[0].weight.item() == pytest.approx(w1, rel=1e-5)
    assert model[0].bias.item() == pytest.approx(b1, rel=1e-5)
    assert run.log.eval_steps == [0, 1] and run.spectra["s"].shape == (2, 4)
    assert np.allclose(run.spectra["s"][1], nudft(x, w1 * x + b1, k), atol=1e-5)
    assert run.log.evals("train_loss")[0] == pytest.approx(np.mean(residual**2), rel=1e-5)


ALIASING = (ROOT / "validation/grokking/aliasing-sin6x.toml").read_text()


def test_aliasing_run_groks_only_on_the_sparse_nonuniform_set(tmp_path):
    torch.set_num_threads(1)
    exp = load_experiment("aliasing", text=ALIASING, seeds=[0], overrides={
        "steps": 1200, "eval_every": 50, "n_dense": 200, "n_test": 400,
        "snapshot_steps": [0, 1200]})
    result = run_experiment(exp, tmp_path, device="cpu")
    s = result.summary
    assert s["sparse_grokked"] == [True] and s["sparse_test_rise"][0] > 0.05
    assert s["dense_grokked"] == [False] and s["uniform_grokked"] == [False]
    assert s["sparse_delay"][0] >= 10 * max(s["dense_delay"][0], s["uniform_delay"][0], 50)
    assert s["train_k1_spurious"] == pytest.approx(0.2064, abs=1e-3) and s["test_k1"] < 1e-10
    # the "double origin": k = 1 stays on training points, goes on test points
    assert s["output_train_k1_final"][0] > 0.1 and s["output_test_k1_final"][0] < 0.05
    assert s["output_test_k1_at_peak"][0] > 0.1
    ds = xr.open_dataset(tmp_path / "result.nc")
    # step-0 spectrum equals the NUDFT of a freshly built network with the same seed
    net = frequency_mlp(1, 64, 3, 1, "sin", 0.5, seed=0)
    x_test = np.linspace(-np.pi, np.pi, 400)
    with torch.no_grad():
        h0 = net(torch.tensor(x_test, dtype=torch.float32)[:, None])[:, 0].double().numpy()
    want = np.abs(nudft(x_test, h0, np.arange(17.0)))
    got = ds.output_test_amplitude.sel(condition="sparse", seed=0, step=0).values
    assert np.allclose(got, want, atol=1e-6)
    assert ds.train_loss.dims == ("condition", "seed", "step")
    assert json.loads((tmp_path / "report.json").read_text())["claim_holds"] is True
    assert {p.name for p in result.figures} == {"losses.png", "functions.png", "spectra.png",
                                                "data_spectra.png"}
    ds.close()


PARITY = (ROOT / "validation/grokking/parity.toml").read_text()


def test_parity_run_records_the_subset_spectra(tmp_path):
    exp = load_experiment("parity", text=PARITY, seeds=[0, 1], overrides={
        "bits": 6, "width": 32, "steps": 20, "eval_every": 10, "fractions": [0.2, 0.5, 0.8],
        "n_k": 41})
    result = run_experiment(exp, tmp_path, device="cpu")
    ds = xr.open_dataset(tmp_path / "result.nc")
    cube = hypercube(6)
    labels = np.prod(cube, axis=1)
    s = cube @ (np.ones(6) / np.sqrt(6))
    k = ds.k.values
    for frac in (0.2, 0.5, 0.8):
        for seed in (0, 1):
            train, _ = split_indices(64, frac, seed)
            direct = np.abs(np.exp(-1j * np.outer(k, s[train])) @ labels[train]) / train.size
            got = ds.target_train_amplitude.sel(fraction=frac, seed=seed).values
            assert np.allclose(got, direct, atol=1e-12)
    low = k <= 1.9
    assert result.summary["full_low_freq_amplitude"] == pytest.approx(
        _parity_spectrum_exact(k[low], 6).mean(), abs=1e-12)
    by_frac = result.summary["train_low_freq_amplitude_by_fraction"]
    assert by_frac[0] > by_frac[2] > result.summary["full_low_freq_amplitude"]
    assert ds.output_full_amplitude.shape == (3, 2, 3, 41)
    assert all(isinstance(note, str) for note in result.summary["deviations"])
    ds.close()


DIGITS = (ROOT / "validation/grokking/digits-large-init.toml").read_text()


def test_image_run_projects_on_the_first_principal_component(tmp_path):
    exp = load_experiment("digits", text=DIGITS, seeds=[0], overrides={
        "n_train": 300, "width": 16, "depth": 1, "steps": 6, "eval_every": 3, "n_k": 30,
        "snapshot_steps": [0, 6]})
    result = run_experiment(exp, tmp_path, device="cpu")
    ds = xr.open_dataset(tmp_path / "result.nc")
    from freqdyn.grok.images import load_digits

    data = load_digits(300, 0)
    x_all = np.concatenate([data.x_train, data.x_test])
    y_all = np.eye(10)[np.concatenate([data.y_train, data.y_test])]
    d = PCA(n_components=1).fit(x_all).components_[0]  # sign is irrelevant for |F|
    k = ds.k.values
    direct = np.exp(-1j * np.outer(k, x_all @ d)) @ y_all / x_all.shape[0]
    want = np.sqrt(np.sum(np.abs(direct) ** 2, axis=1))
    assert np.allclose(ds.target_full_amplitude.sel(seed=0).values, want, atol=1e-10)
    s = result.summary
    # weights and biases ×8 in a one-hidden-layer ReLU net: the output grows by 8 to 64
    ratio = s["large_init_init_amplitude_ratio"][0] / s["default_init_init_amplitude_ratio"][0]
    assert 8 < ratio <= 64
    assert ds.train_acc.dims == ("arm", "seed", "step")
    ds.close()


def test_deviations_name_what_the_run_did_not_show():
    from freqdyn.grok.frequency_images import _image_deviations

    paper_like = {"large_init_max_acc_gap": [0.6], "large_init_final_train_acc": [1.0],
                  "large_init_final_test_acc": [0.95], "default_init_max_acc_gap": [0.02],
                  "default_init_early_low_band_error": [0.3],
                  "default_init_early_high_band_error": [0.9]}
    assert _image_deviations(paper_like) == []
    stuck = dict(paper_like, large_init_final_test_acc=[0.3])
    assert ["caught up" in note for note in _image_deviations(stuck)] == [True]


def test_mnist_experiment_file_runs_on_idx_files(tmp_path):
    from freqdyn.grok.frequency_images import _image_data

    write_tiny_mnist(tmp_path, n_train=40, n_test=20)
    text = (ROOT / "validation/grokking/mnist-large-init.toml").read_text()
    exp = load_experiment("mnist", text=text, seeds=[0], overrides={
        "mnist_dir": str(tmp_path), "n_train": 30, "width": 8, "depth": 1, "steps": 2,
        "eval_every": 1, "n_k": 20, "batch_size": 10, "snapshot_steps": [0, 2]})
    data = _image_data(exp, seed=0)
    assert data.name == "mnist" and data.x_train.shape == (30, 6) and data.x_test.shape == (20, 6)
    result = run_experiment(exp, tmp_path / "out", device="cpu")
    assert result.summary["dataset"] == "mnist"
    ds = xr.open_dataset(tmp_path / "out" / "result.nc")
    assert ds.train_acc.shape == (2, 1, 3)  # arms, seeds, evaluation steps 0, 1, 2
    ds.close()
    missing = load_experiment("mnist", text=text, overrides={"mnist_dir": str(tmp_path / "no")})
    with pytest.raises(InputError) as info:
        _image_data(missing, seed=0)
    assert info.value.field == "settings.mnist_dir"


def test_adamw_decays_the_weights_decoupled_from_the_gradient():
    """With a zero gradient one AdamW step multiplies every weight by 1 − lr·wd (Omnigrok's
    optimizer for the image runs); an unknown name is refused naming the field."""
    from freqdyn.grok.frequency_view import make_optimizer

    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer("adamw", model, 0.1, "settings.large_optimizer", weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.allclose(p, b * (1 - 0.1 * 0.5), atol=1e-7)
    with pytest.raises(InputError, match="settings.large_optimizer.*'adamw'"):
        make_optimizer("lion", model, 0.1, "settings.large_optimizer")
