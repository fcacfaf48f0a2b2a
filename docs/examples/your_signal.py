"""Your own signal in five lines: a real EEG recording, the theory's train and test error,
the networks' on the same samples, and the ρ_w scale for a training budget.

    python docs/examples/your_signal.py OUT [WIDTH]

The recording is one channel of matplotlib's bundled ``eeg.dat`` (800 samples, 4
channels), on x ∈ [0, 1], trained on every 2nd sample and tested on the rest.
"""

import sys

import matplotlib.cbook as cbook
import numpy as np

import freqdyn
from freqdyn.analysis.data_design import design_scale

out, width = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 16384
eeg = np.fromfile(cbook.get_sample_data("eeg.dat", asfileobj=False), float).reshape(800, 4)

case = freqdyn.data_case(eeg[:, 0], extent=[[0.0, 1.0]], holdout={"stride": 2},
                         sigma_a=0.1, rho_w={"family": "gaussian", "scale": 100.0},
                         times=[0, 10, 100, 1000], train={"width": width, "seed": 0})
pred = freqdyn.predict(case, method="kernel-flow")        # the exact infinite-width flow
meas = freqdyn.train(case, out=out).dataset               # networks on the same samples
best = design_scale(case, time=1000.0)                    # least predicted test MSE

for t, p, m in zip(case.times, pred["test_mse"].values, meas["test_mse"].values,
                   strict=True):
    print(f"t = {t:g}: test MSE theory {p:.4g}, network (m = {width}) {m:.4g}")
print(f"best Gaussian scale at t = 1000: {best.scale:.4g} "
      f"(test MSE {best.test_mse[best.best]:.4g})")
