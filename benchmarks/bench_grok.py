"""Speed of Nanda's transformer at paper size on this machine (a script, not a test).

    python benchmarks/bench_grok.py [--p 113] [--fraction 0.3] [--threads N] [--seconds 5]
                                    [--compile]

One full-batch AdamW update (forward, cross-entropy, backward, step) of
:class:`freqdyn.grok.models.NandaTransformer` on 30 % of the P² pairs by the authors'
protocol (their split, 114 classes, float32 weights and a float64 loss), timed in one
process for

* ``plain``: :meth:`NandaTransformer.reference_forward`, Nanda's einsum style (causal
  attention and the MLP at all three positions, logits read at "=");
* ``eq_einsum``: the obvious saving, ``head(embed(pairs))``: the same einsums with the
  query, the MLP and the unembedding at "=" only;
* ``fast``: ``forward``, the same function computed at "=" only through per-token tables
  (see the class docstring);
* ``fast+compile`` (with ``--compile``): ``forward`` under ``torch.compile``;
* ``train_modular``: the fast update inside freqdyn's training loop (per-step logging of
  ‖∇L‖, ‖θ‖ and cos(θ_t, θ_{t+1})) with evaluation on both splits every 100 updates, as
  ``--paper`` runs it.

Prints the median seconds per update and the ratios against ``plain``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from freqdyn.grok.algorithmic import cross_entropy, train_modular  # noqa: E402
from freqdyn.grok.models import build_model  # noqa: E402
from freqdyn.grok.modular import modular_dataset  # noqa: E402
from freqdyn.nets.records import adamw  # noqa: E402

PROTOCOL = {"model": "nanda", "split": "authors", "output": "vocabulary", "precision": "float64"}


def _median_update(forward, model, data, seconds: float) -> float:
    optimizer, scheduler = adamw(model, 1e-3, 1.0)
    pairs, labels = data.pairs_train, data.labels_train

    def update():
        optimizer.zero_grad(set_to_none=True)
        cross_entropy(forward(pairs), labels, torch.float64).backward()
        optimizer.step()
        scheduler.step()

    for _ in range(3):
        update()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        update()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the experiment runner does
    data = modular_dataset(args.p, "+", args.fraction, 0, split="authors")
    print(f"Nanda transformer, P = {args.p}, {len(data.pairs_train)} training pairs, "
          f"{args.p + 1} classes, float64 loss, {torch.get_num_threads()} threads")
    rows = {}
    model = build_model(PROTOCOL, data, 0)
    rows["plain"] = _median_update(model.reference_forward, model, data, args.seconds)
    model = build_model(PROTOCOL, data, 0)
    rows["eq_einsum"] = _median_update(lambda pairs: model.head(model.embed(pairs)), model,
                                       data, args.seconds)
    model = build_model(PROTOCOL, data, 0)
    rows["fast"] = _median_update(model, model, data, args.seconds)
    if args.compile:
        model = build_model(PROTOCOL, data, 0)
        rows["fast+compile"] = _median_update(torch.compile(model), model, data, args.seconds)
    cfg = {**PROTOCOL, "p": args.p, "train_fraction": args.fraction,
           "batch_size": "full", "steps": 200, "eval_every": 100}
    start = time.perf_counter()
    run = train_modular(cfg, 0, progress=False)
    rows["train_modular"] = (time.perf_counter() - start) / run.final["steps"]
    for name, sec in rows.items():
        print(f"  {name:<14} {1e3 * sec:8.1f} ms/update   {rows['plain'] / sec:5.2f}x plain"
              f"   {rows['eq_einsum'] / sec:5.2f}x eq_einsum")
    return 0


if __name__ == "__main__":
    sys.exit(main())
