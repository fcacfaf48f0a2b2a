"""Which Gaussian Fourier-feature scale σ for an image: the theory's PSNR against σ, in the
protocol of Tancik et al. 2020 (Fig. 5 / Table: 512 × 512, values in [0, 1], train on
pixels [::2, ::2], test on [1::2, 1::2], PSNR = −10 log10 MSE).

    python docs/examples/image_scale.py [camera|text] [T]

The prediction is the exact infinite-width kernel flow of freqdyn's 2-layer network
(trainable frequencies, σ_a = 0.1) at training time T (docs/theory.md §13).
"""

import sys

import numpy as np

import freqdyn
from freqdyn.analysis.data_design import design_scale

image = sys.argv[1] if len(sys.argv) > 1 else "camera"
time = float(sys.argv[2]) if len(sys.argv) > 2 else 1e5
sigmas = np.array([1.0, 2.0, 4.0, 8.0, 10.0, 16.0, 32.0, 64.0])  # Tancik et al.'s sweep

case = freqdyn.load_case(f"{image}.toml", text=f"""
[network]
dim = 2
sigma_a = 0.1
[network.rho_w]
family = "gaussian"
scale = 10.0
[target]
data = "sample:{image}"
normalize = "max"
holdout = {{ stride = 2, test = "offset" }}
[frequency]
times = [0.0, {time!r}]
""")
curve = design_scale(case, time, sigmas)
for sigma, mse in zip(curve.scales, curve.test_mse, strict=True):
    print(f"sigma = {sigma:g}: test PSNR {-10 * np.log10(mse):.2f} dB")
print(f"best sigma at T = {time:g}: {curve.scale:g}")
