"""The RKC2 flow integrator against gradient descent, in the same run (a script, not a test).

    python benchmarks/bench_rkc.py [--width 4096] [--rtol 1e-4] [--horizon T]

Two 2D cases, each trained twice from the same θ₀ to the same report times (the case
file's own, or those up to ``--horizon``): by GD at 0.9 of its stability bound
(``lr_fraction = 0.9``) and by ``integrator = "rkc"``.  Printed per
case: λ_max of the NTK Gram, the gradient evaluations and wall time of each, their ratios,
and the rel L²(ξ) difference between the two networks' error transforms at the last time
(GD's own distance to the flow is about its step error, (λt)²/(2k) for a mode of rate λ).

* ``gaussian-2d`` (pde/gaussian-2d.toml), t ≤ 5;
* ``uniform-2d`` (pde/uniform-2d.toml) on a wide sampled box, R = 16, t ≤ 40: the NTK's
  1 + 4π²σ_a² x·y factor makes λ_max grow with the box, so GD needs λ_max V t/1.8 steps
  and RKC about √(λ_max V t): their ratio grows like √t.  Per report time both counts
  are printed, so the ratio is read at every t in the one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.nets.train import train
from freqdyn.results import u_hat

ROOT = Path(__file__).resolve().parents[1]
CASES = {"gaussian-2d": ("pde/gaussian-2d.toml", {}),
         "uniform-2d wide box": ("pde/uniform-2d.toml", {"R": 16.0})}


def _run(case, folder, overrides):
    start = time.perf_counter()
    ds = train(case, folder, overrides=overrides, progress=False).dataset
    return ds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--horizon", type=float, default=None,
                        help="report times up to this one only (default: all of the case's)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-rkc-"))
    try:
        for name, (path, extra) in CASES.items():
            case = load_case(ROOT / path)
            times = case.times if args.horizon is None else \
                case.times[case.times <= args.horizon]
            case = replace(case, times=times)
            base = {"width": args.width, "f0": "centered", "twin": False, **extra}
            gd, gd_s = _run(case, scratch / f"{name}-gd", dict(base, lr_fraction=0.9))
            rkc, rkc_s = _run(case, scratch / f"{name}-rkc",
                              dict(base, integrator="rkc", rtol=args.rtol))
            n_gd, n_rkc = (int(d.attrs["gradient_evaluations"]) for d in (gd, rkc))
            lam = float(json.loads(gd.attrs["stability"])["gram_lambda_max"])
            gap = relative_l2(u_hat(rkc).values[-1], u_hat(gd).values[-1])
            print(f"{name}: m = {args.width}, t <= {times[-1]:g}, lambda_max = {lam:.4g}")
            print(f"  gd  (lr 0.9 x bound): {n_gd:7d} gradients, {gd_s:8.1f} s")
            print(f"  rkc (rtol {args.rtol:g}):  {n_rkc:7d} gradients, {rkc_s:8.1f} s "
                  f"({rkc.attrs['rkc']})")
            print(f"  ratio gd/rkc: {n_gd / n_rkc:.1f}x gradients, {gd_s / rkc_s:.1f}x wall; "
                  f"rel L2 rkc vs gd at t = {times[-1]:g}: {gap:.2e}")
            counts = zip(times[1:], gd["gradient_evaluations"].values[1:],
                         rkc["gradient_evaluations"].values[1:], strict=True)
            print("  per report time (gd / rkc gradients): " + ", ".join(
                f"t = {t:g}: {a} / {b} ({a / b:.1f}x)" for t, a, b in counts), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
