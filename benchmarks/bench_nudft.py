"""NUDFT speed: direct sum vs the FINUFFT fast path (a script, not a test).

    python benchmarks/bench_nudft.py [--points 100000] [--freqs 1000] [--grid both]
                                     [--threads 1] [--eps 1e-12] [--seed 0]

Times :func:`freqdyn.grok.nudft.nudft` with ``method="direct"`` and ``method="fast"`` in the
same process on n random points in [−20, 20] with one real output, for a uniform
frequency grid (k on ``--freqs`` points in [0, 2π]: FINUFFT type 1) and a scattered one
(sorted uniform random k in [0, 2π]: type 3).  Each timing is the best of ``--repeats``
runs after one warm-up.  Prints both times, the speed-up ratio and the largest
|fast − direct| relative to max |direct|.  ``--threads`` caps FINUFFT's threads (the
direct sum uses NumPy's, set by OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from freqdyn.grok.nudft import nudft


def best_time(call, repeats: int) -> tuple[float, np.ndarray]:
    """Smallest wall time of ``repeats`` calls after one warm-up, and the last result."""
    result = call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--freqs", type=int, default=1000)
    parser.add_argument("--grid", choices=["uniform", "scattered", "both"], default="both")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eps", type=float, default=1e-12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-20.0, 20.0, args.points)
    values = np.sin(6 * x) + 0.3 * rng.normal(size=args.points)
    grids = {"uniform": np.linspace(0.0, 2 * np.pi, args.freqs),
             "scattered": np.sort(rng.uniform(0.0, 2 * np.pi, args.freqs))}
    names = list(grids) if args.grid == "both" else [args.grid]
    print(f"n = {args.points} points, K = {args.freqs} frequencies, eps = {args.eps:g}, "
          f"FINUFFT threads = {args.threads}")
    print(f"{'grid':>10} {'direct [s]':>11} {'fast [s]':>10} {'speed-up':>9} {'max rel diff':>13}")
    for name in names:
        k = grids[name]
        t_direct, direct = best_time(lambda k=k: nudft(x, values, k, method="direct"),
                                     args.repeats)
        t_fast, fast = best_time(lambda k=k: nudft(x, values, k, method="fast", eps=args.eps,
                                                   threads=args.threads), args.repeats)
        diff = np.abs(fast - direct).max() / np.abs(direct).max()
        print(f"{name:>10} {t_direct:11.3f} {t_fast:10.4f} {t_direct / t_fast:9.1f} "
              f"{diff:13.2e}")


if __name__ == "__main__":
    main()
