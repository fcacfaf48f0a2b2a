"""Train the networks of the full-size validation studies (on a GPU when there is one).

    python validation/run_full.py --out out/full [--studies gaussian-1d,uniform-1d,...]
    freqdyn run validation/gaussian-1d.toml --full --out out/full/gaussian-1d

The first command trains every (arm, width, seed) of each study's ``[full]`` plan into
``OUT/<study>/runs`` and needs only PyTorch (no finite-element stack), so it can run on
a GPU machine; the second computes the predictions and the report and reuses the
stored runs (a run made on another device is reused: see
``freqdyn.nets.settings.EXECUTION_KEYS``).  Studies run in the order given; each finished
run is kept, so an interrupted call loses at most the run in progress.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from freqdyn.runs.experiment import load_experiment  # noqa: E402
from freqdyn.runs.study import train_all  # noqa: E402

ORDER = ["gaussian-1d", "uniform-1d", "width-scaling", "design-flat", "diffusion-matters",
         "gaussian-2d", "multilayer"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="root folder, one subfolder per study")
    parser.add_argument("--studies", default=",".join(ORDER), help="comma-separated names")
    args = parser.parse_args(argv)
    for name in args.studies.split(","):
        start = time.perf_counter()
        exp = load_experiment(ROOT / f"{name}.toml", full=True)
        train_all(exp, Path(args.out) / name, extra={"checkpoint_every": 10**9})
        print(f"== {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
