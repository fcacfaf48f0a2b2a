"""Trainer speed and the network–kernel-flow agreement (a script, not a test).

    python benchmarks/bench_train.py speed [--sizes 16384x8192,65536x128x128]
                                           [--dtypes float64,float32] [--devices cpu,cuda]
                                           [--seconds 3] [--threads N] [--dense-limit N]
    python benchmarks/bench_train.py lfp [--sizes 4096x820,65536x820] [--seconds 3]
    python benchmarks/bench_train.py validate [--cases gaussian-1d,uniform-1d]
                                              [--widths 2048,8192,32768] [--device auto]

``speed``: one full-batch gradient-descent step (loss, the gradient of w, a and b, the
SGD update) of the 2-layer Fourier-feature network with m units on a grid of n samples in
d = 1 (``m x n``) or d = 2 (``m x n1 x n2``), for each size, dtype and device, timed in the
same process:

* ``nufft`` — the transform pass (:mod:`freqdyn.nets.transforms`, FINUFFT type 1 and 2,
  tolerance 1e-12 in float64, 1e-6 in float32), the trainer's default on the CPU;
* ``closed-form`` — :meth:`FourierFeatureNetwork.loss_and_grad`, the dense pass over row
  blocks (cos and sin of the n×m phases once; the default before the transforms);
* ``autograd`` — the plain ``nn.Module`` forward, ½·mean squared error, ``backward``.

The dense passes are timed only where n·m ≤ ``--dense-limit`` (autograd up to a quarter
of it); the ratio printed is against the closed form.  Each variant is warmed up, then
timed over repeated steps for at least ``--seconds`` (the median per step).

``lfp``: one full-batch GD step of the LFP's ReLU / tanh network (m units, n grid samples
on [−8, 8] in d = 1): ``sorted`` (ReLU: prefix sums over sorted breakpoints,
O((n + m) log m)), ``dense`` (the closed form over row blocks) and ``autograd`` (the plain
``nn.Module`` forward, ``backward``), timed in the same process; the ratio is against
autograd.

``validate``: trains the case's network (f₀ = 0 by doubling, float64, gradient descent
at a quarter of the stability bound) at each width, reports at the case's times and
prints the relative L²(ξ) difference between the measured û and the kernel-flow
reference at every time, the largest over time, and the width scaling.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import finufft
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from freqdyn.inputs.case import load_case  # noqa: E402
from freqdyn.inputs.fourier import relative_l2  # noqa: E402
from freqdyn.nets.fourier import FourierFeatureNetwork  # noqa: E402
from freqdyn.nets.train import train  # noqa: E402
from freqdyn.nets.transforms import FourierTransforms, GridSamples, loss_and_grad  # noqa: E402
from freqdyn.predict.kernel_flow import kernel_flow  # noqa: E402
from freqdyn.results import u_hat  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(step, device, seconds: float, min_reps: int = 3) -> float:
    """Median seconds per call of ``step`` after one warm-up call."""
    step()
    _sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return statistics.median(times)


def _problem(case, m, grid, dtype, device):
    """A network of m units on a cell-centred grid of ``grid`` points per axis on [-10, 10]^d."""
    net = FourierFeatureNetwork.from_case(case, m, torch.Generator().manual_seed(0),
                                          f0="random", dtype=dtype).to(device)
    axes = [-10.0 + (np.arange(n) + 0.5) * 20.0 / n for n in grid]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(grid))
    y = torch.from_numpy(case.target(pts))
    layout = GridSamples(np.array([a[0] for a in axes]), np.array([a[1] - a[0] for a in axes]),
                         tuple(grid))
    return net, torch.from_numpy(pts).to(device, dtype), y.to(device, dtype), layout


def speed(args) -> None:
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    devices = [d for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    rows = []
    print(f"torch {torch.__version__}, finufft {finufft.__version__}, "
          f"{torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    for device_name in devices:
        device = torch.device(device_name)
        for size in sizes:
            m, grid = size[0], size[1:]
            case = load_case(ROOT / "pde" / ("gaussian-1d.toml" if len(grid) == 1
                                             else "gaussian-2d.toml"))
            n = math.prod(grid)
            for dtype_name in args.dtypes.split(","):
                dtype = getattr(torch, dtype_name)
                net, x, y, layout = _problem(case, m, grid, dtype, device)
                opt = torch.optim.SGD(net.parameters(), lr=1e-6)
                variants = {}
                if device.type == "cpu":
                    tol = 1e-12 if dtype == torch.float64 else 1e-6
                    transforms = FourierTransforms(layout, dtype, tol)

                    def fast(net=net, y=y, opt=opt, tr=transforms):
                        loss_and_grad(net, tr, y)
                        opt.step()

                    variants["nufft"] = fast
                if n * m <= args.dense_limit:
                    def closed_form(net=net, x=x, y=y, opt=opt):
                        net.loss_and_grad(x, y)
                        opt.step()

                    def autograd(net=net, x=x, y=y, opt=opt):
                        opt.zero_grad()
                        r = net(x) - y
                        (0.5 * (r * r).mean()).backward()
                        opt.step()

                    variants["closed-form"] = closed_form
                    if n * m <= args.dense_limit // 4:
                        variants["autograd"] = autograd
                timings = {}
                for name, fn in variants.items():
                    try:
                        timings[name] = _time_steps(fn, device, args.seconds)
                    except (torch.OutOfMemoryError, MemoryError):
                        timings[name] = math.nan
                    net._workspace.clear()
                base = timings.get("closed-form", math.nan)
                for name, sec in timings.items():
                    rows.append((device_name, dtype_name, m, "x".join(map(str, grid)), name,
                                 1 / sec, sec * 1e3, base / sec))
                    print(f"  {device_name:5s} {dtype_name:8s} m={m:8d} "
                          f"n={'x'.join(map(str, grid)):>8s} {name:12s} {sec * 1e3:10.2f} "
                          f"ms/step  x{base / sec:7.1f} vs closed form", flush=True)
                del net, x, y, opt
    print("\ndevice dtype        m        n  variant        ms/step  vs closed form")
    for r in rows:
        print(f"{r[0]:6s} {r[1]:8s} {r[2]:8d} {r[3]:>8s}  {r[4]:12s} {r[6]:9.2f} {r[7]:9.1f}x")


def validate(args) -> None:
    widths = [int(w) for w in args.widths.split(",")]
    print(f"torch {torch.__version__}, device {args.device}")
    summary = []
    for name in args.cases.split(","):
        case = load_case(ROOT / "pde" / f"{name}.toml")
        t0 = time.perf_counter()
        ref = u_hat(kernel_flow(case)).values
        print(f"{name}: kernel-flow reference in {time.perf_counter() - t0:.1f} s")
        for m in widths:
            overrides = {"width": m, "f0": "zero", "dtype": "float64", "device": args.device,
                         "lr_fraction": args.lr_fraction}
            with tempfile.TemporaryDirectory() as tmp:
                res = train(case, tmp, overrides=overrides, progress=False, figure=False)
            ds = res.dataset
            err = relative_l2(u_hat(ds).values, ref, axes=tuple(range(1, ref.ndim)))
            summary.append((name, m, err.max()))
            print(f"  m = {m:6d}: {res.steps} steps, {float(ds.attrs['steps_per_second']):.0f} "
                  f"steps/s, drift {float(ds['drift'][-1]):.2e}; rel L2(xi) vs kernel flow at "
                  f"t = {ds['time'].values.tolist()}: {np.array2string(err, precision=4)}",
                  flush=True)
    print("\ncase          width   max_t rel L2(xi)")
    for name, m, e in summary:
        print(f"{name:12s} {m:7d}   {e:.4f}")
    for name in args.cases.split(","):
        errs = [(m, e) for n, m, e in summary if n == name]
        if len(errs) > 1:
            (m0, e0), (m1, e1) = errs[0], errs[-1]
            slope = math.log(e1 / e0) / math.log(m1 / m0)
            print(f"{name}: error ~ m^{slope:.2f} between m = {m0} and {m1} (theory: m^-0.5)")


def lfp_speed(args) -> None:
    from freqdyn.nets.lfp_net import LFPNetwork

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    device = torch.device("cpu")
    rows = []
    for size in args.sizes.split(","):
        m, n = (int(v) for v in size.split("x"))
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(m, 1, generator=gen, dtype=torch.float64)
        b = 10.0 * torch.randn(m, generator=gen, dtype=torch.float64)
        a = torch.randn(m, generator=gen, dtype=torch.float64)
        x = (-8.0 + (torch.arange(n, dtype=torch.float64) + 0.5) * 16.0 / n)[:, None]
        y = torch.exp(-x[:, 0] ** 2 / 2)
        for activation in ("relu", "tanh"):
            timings = {}
            for variant in ("sorted", "dense", "autograd"):
                if variant == "sorted" and activation != "relu":
                    continue
                if variant != "sorted" and n * m > args.dense_limit:
                    continue
                net = LFPNetwork(w, b, a, activation,
                                 backend="sorted" if variant == "sorted" else "dense")
                opt = torch.optim.SGD(net.parameters(), lr=1e-6)

                def step(net=net, opt=opt, variant=variant, x=x, y=y):
                    if variant == "autograd":
                        opt.zero_grad()
                        r = net(x) - y
                        (0.5 * (r * r).mean()).backward()
                    else:
                        net.loss_and_grad(x, y)
                    opt.step()

                timings[variant] = _time_steps(step, device, args.seconds)
            base = timings.get("autograd", math.nan)
            for variant, sec in timings.items():
                rows.append((activation, m, n, variant, sec * 1e3, base / sec))
                print(f"  {activation:5s} m={m:8d} n={n:6d} {variant:9s} {sec * 1e3:10.3f} "
                      f"ms/step  x{base / sec:8.1f} vs autograd", flush=True)
    print("\nactivation        m      n  variant     ms/step  vs autograd")
    for r in rows:
        print(f"{r[0]:10s} {r[1]:8d} {r[2]:6d}  {r[3]:9s} {r[4]:9.3f} {r[5]:9.1f}x")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="ms/step: transform pass vs closed form vs autograd")
    p.add_argument("--sizes", default="4096x8192,16384x8192,65536x8192,262144x8192,"
                                      "1048576x8192,65536x128x128",
                   help="m x n (1D) or m x n1 x n2 (2D grids), comma-separated")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--devices", default="cpu,cuda")
    p.add_argument("--dense-limit", type=int, default=2**28,
                   help="time the dense passes only up to this n*m")
    p.add_argument("--seconds", type=float, default=3.0, help="timing budget per variant")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch default)")
    p.set_defaults(func=speed)
    p = sub.add_parser("lfp", help="ms/step of the LFP's ReLU/tanh network: sorted vs dense "
                                   "vs autograd")
    p.add_argument("--sizes", default="4096x820,16384x820,65536x820,262144x820",
                   help="m x n (1D grid), comma-separated")
    p.add_argument("--dense-limit", type=int, default=2**28,
                   help="time the dense passes only up to this n*m")
    p.add_argument("--seconds", type=float, default=3.0, help="timing budget per variant")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch default)")
    p.set_defaults(func=lfp_speed)
    p = sub.add_parser("validate", help="trained network vs kernel flow, relative L2(xi)")
    p.add_argument("--cases", default="gaussian-1d")
    p.add_argument("--widths", default="2048,8192,32768")
    p.add_argument("--device", default="auto")
    p.add_argument("--lr-fraction", type=float, default=0.25,
                   help="learning rate as a fraction of the stability bound")
    p.set_defaults(func=validate)
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    args.func(args)


if __name__ == "__main__":
    main()
