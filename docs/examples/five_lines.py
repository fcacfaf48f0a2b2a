"""The five-line API: a case, its prediction, a trained network, and how far apart they are.

Run it from the repository root:  python docs/examples/five_lines.py [OUT]
(the test suite runs it with a small width so that it takes seconds).
"""

import sys

import freqdyn

out = sys.argv[1] if len(sys.argv) > 1 else "out/five-lines"
width = int(sys.argv[2]) if len(sys.argv) > 2 else 4096

case = freqdyn.load_case("pde/gaussian-1d.toml")
pred = freqdyn.predict(case, method="modal")
meas = freqdyn.train(case, out=out, overrides={"width": width, "f0": "centered"})
report = freqdyn.compare(pred, meas)

print(f"max relative L2(xi) error, PDE vs network (m = {width}): {report['max_rel_l2']:.4f}")
for t, err in zip(report["times"], report["rel_l2"], strict=True):
    print(f"  t = {t:<5g} {err:.4f}")
