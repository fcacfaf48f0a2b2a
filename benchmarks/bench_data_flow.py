"""Kernel flow on data: the Krylov route with FFT Toeplitz products against the dense one
(a script, not a test).

    python benchmarks/bench_data_flow.py [--signal 1000000] [--image 512] [--dense 4096]
                                         [--scattered 100000]

Five runs, each timed end to end (case built from an array, flow, errors, spectrum):

* a 1D signal of ``--signal`` samples on [0, 1] (two sines and noise), stride-2 holdout;
* a ``--image``² image (two plane waves and noise), stride-2 holdout;
* a 1D signal with ``--dense`` training samples, by both routes in the same process:
  both times and the largest relative difference of train and test MSE;
* ``--scattered`` uniformly random x on [0, 1] (20 % held out at random), by the Krylov
  route on NUFFT products, and ``--dense`` scattered training samples by both routes.

Gaussian ρ_w of scale 20 (1D) / 10 (2D), σ_a = 0.1, report times 0, 10, 100, 1000.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import freqdyn
from freqdyn.predict.data_flow import data_kernel_flow

TIMES = [0.0, 10.0, 100.0, 1000.0]


def _signal(shape, seed=0):
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    waves = sum(np.sin(2 * np.pi * (3 + 37 * k) * a) for k, a in enumerate(axes))
    return waves + 0.3 * np.sin(2 * np.pi * 40 * axes[0]) + 0.1 * rng.normal(size=shape)


def _case(values, scale):
    return freqdyn.data_case(values, holdout={"stride": 2}, sigma_a=0.1, times=TIMES,
                             rho_w={"family": "gaussian", "scale": scale})


def _scattered_case(n, scale, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 1.0, n))
    y = np.sin(2 * np.pi * 3 * x) + 0.3 * np.sin(2 * np.pi * 40 * x) + 0.1 * rng.normal(size=n)
    return freqdyn.data_case(y, x=x, holdout={"fraction": 0.2, "seed": 1}, sigma_a=0.1,
                             times=TIMES, rho_w={"family": "gaussian", "scale": scale})


def timed(values, scale, route="auto", case=None):
    start = time.perf_counter()
    ds = data_kernel_flow(case if case is not None else _case(values, scale), route=route)
    return time.perf_counter() - start, ds


def _compare(label, make, n):
    t_dense, dense = timed(None, None, "dense", case=make())
    t_fast, fast = timed(None, None, "krylov", case=make())
    rel = max(float(np.max(np.abs(fast[k].values - dense[k].values) / dense[k].values))
              for k in ("train_mse", "test_mse"))
    print(f"{n} {label} training samples: dense {t_dense:.2f} s, krylov {t_fast:.3f} s "
          f"({t_dense / t_fast:.0f}x), largest relative MSE difference {rel:.1e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signal", type=int, default=1_000_000)
    parser.add_argument("--image", type=int, default=512)
    parser.add_argument("--dense", type=int, default=4096)
    parser.add_argument("--scattered", type=int, default=100_000)
    args = parser.parse_args(argv)
    for label, values, scale in (("signal", _signal((args.signal,)), 20.0),
                                 ("image", _signal((args.image, args.image)), 10.0)):
        seconds, ds = timed(values, scale)
        info = ds.attrs["kernel_flow"]
        print(f"{label} {values.shape}: {seconds:.2f} s, route {info}, test MSE "
              f"{ds['test_mse'].values[-1]:.4g} at t = {TIMES[-1]:g}")
    seconds, ds = timed(None, None, case=_scattered_case(args.scattered, 20.0))
    print(f"scattered ({args.scattered},): {seconds:.2f} s, route {ds.attrs['kernel_flow']}, "
          f"test MSE {ds['test_mse'].values[-1]:.4g} at t = {TIMES[-1]:g}")
    _compare("grid", lambda: _case(_signal((2 * args.dense - 1,)), 20.0), args.dense)
    _compare("scattered", lambda: _scattered_case(round(args.dense / 0.8), 20.0), args.dense)


if __name__ == "__main__":
    main()
