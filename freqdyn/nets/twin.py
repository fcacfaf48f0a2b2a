"""The linearised twin of a trained network (docs/theory.md §12).

The twin is the network's first-order Taylor model at its own initialisation θ₀,

    f_lin(x; θ) = f(x; θ₀) + J₀(x) (θ − θ₀),    J₀ = ∂f/∂θ at θ₀,

trained in lock-step with the network: the same samples, loss, optimizer and learning
rate, from δθ = θ − θ₀ = 0.  Its error evolves exactly by the network's *empirical* NTK on
the training samples, (α/N) J₀ J₀ᵀ, frozen at θ₀: it is kernel gradient descent (in the
network's own steps and time map) with that network's own kernel.  So

* twin vs network is the part of the network's error that is beyond linear (the motion of
  the kernel during training), expected O(1/m);
* twin vs PDE is the part due to the network's kernel and its samples (the Monte-Carlo
  error of the kernel, O(m^{-1/2}), the sampling, the box and the GD steps).

J₀ v and J₀ᵀ u are fast transforms at the fixed frequencies of θ₀
(:mod:`freqdyn.nets.transforms`), in float64, so a twin step costs about what a network
step costs and no n×n or n×m matrix is formed.
"""

from __future__ import annotations

import numpy as np
import torch

from freqdyn.inputs.fourier import riemann_transform
from freqdyn.nets import transforms as tf
from freqdyn.nets.loop import Callback
from freqdyn.predict.kernel_flow import lanczos_exponential

#: Transform tolerance of the twin (float64 whatever the network's precision).
TWIN_TOL = 1e-12


class LinearTwin(Callback):
    """The twin, stepped after each network update; its û measured at the report steps.

    ``model0``: a float64 copy of the network at θ₀; ``layout``: the training samples as
    a transform layout; ``y``: the training targets (shifted by f₀ for centred runs);
    ``make_optimizer(params)``: the network's optimizer on other parameters;
    ``axis``/``g_grid``/``xi_axes``: the measurement grid, the target on it and the ξ grid.
    """

    def __init__(self, model0, layout, y: np.ndarray, alpha: float, make_optimizer,
                 report_steps, axis: np.ndarray, g_grid: np.ndarray, xi_axes):
        self.model0 = model0
        for p in self.model0.parameters():
            p.requires_grad_(False)
        self.transforms = tf.FourierTransforms(layout, torch.float64, TWIN_TOL)
        dim = g_grid.ndim
        self.grid_transforms = tf.FourierTransforms(tf.GridSamples.of_axis(axis, dim),
                                                    torch.float64, TWIN_TOL)
        self.y, self.alpha = np.asarray(y, dtype=float), float(alpha)
        size = sum(p.numel() for p in self.model0.parameters())
        self.delta = torch.nn.Parameter(torch.zeros(size, dtype=torch.float64))
        self.optimizer = make_optimizer([self.delta])
        self.f0 = tf.forward(self.model0, self.transforms).cpu().numpy()
        self.f0_grid = tf.forward(self.model0, self.grid_transforms).cpu().numpy()
        self.report_steps = set(int(s) for s in report_steps)
        self.axes, self.g_grid, self.xi_axes = [axis] * dim, g_grid, xi_axes
        self.records: list[dict] = []

    def residual(self) -> np.ndarray:
        """f_lin − y at the training samples."""
        return self.f0 + tf.jacobian(self.model0, self.transforms, self.delta.detach().numpy()) \
            - self.y

    def loss(self) -> float:
        r = self.residual()
        return 0.5 * self.alpha * float(r @ r) / r.size

    def gradient(self) -> np.ndarray:
        """∇ of the twin's loss in δθ: (α/N) J₀ᵀ (f_lin − y)."""
        r = self.residual()
        return tf.jacobian_transpose(self.model0, self.transforms, (self.alpha / r.size) * r)

    def after_update(self, loop, step, loss):
        grad = self.gradient()
        self.delta.grad = torch.from_numpy(np.ascontiguousarray(grad, dtype=np.float64))
        self.optimizer.step()

    def on_state(self, loop, step):
        if step in self.report_steps and step not in {r["step"] for r in self.records}:
            self.records.append({"step": step, "u_hat": self.u_hat()})

    def u_hat(self) -> np.ndarray:
        """The twin's error transform on the ξ grid, measured as a network's."""
        f = self.f0_grid + tf.jacobian(self.model0, self.grid_transforms,
                                       self.delta.detach().numpy())
        return riemann_transform(f.reshape(self.g_grid.shape) - self.g_grid, self.axes,
                                 self.xi_axes)

    def state_dict(self):
        return {"delta": self.delta.detach().clone(), "optimizer": self.optimizer.state_dict(),
                "records": list(self.records)}

    def load_state_dict(self, state):
        with torch.no_grad():
            self.delta.copy_(state["delta"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.records = list(state["records"])


def twin_dataset(measured):
    """The twin's û of a measured dataset as a schema dataset of its own (same grid)."""
    ds = measured[["twin_u_hat_real", "twin_u_hat_imag"]].rename(
        {"twin_u_hat_real": "u_hat_real", "twin_u_hat_imag": "u_hat_imag"})
    ds.attrs = dict(measured.attrs, method="linearised twin")
    return ds


def exact_linear_flow(model, on_train, on_other, y: np.ndarray, weight: float, times,
                      random_f0: bool, rtol: float = 1e-8):
    """The twin's gradient flow solved exactly in time, without stepping.

    On the training samples of ``on_train`` r(t) = e^{−A t} r₀, A = weight · J₀J₀ᵀ,
    r₀ = f₀ − y; on the samples of ``on_other`` f_t = f₀ − weight · J₀ J₀ᵀ ∫₀ᵗ r ds (one
    Lanczos basis, every product two fast transforms).  ``weight``: α h (the training
    cell volume).  Returns (r (T, N), f_t on ``on_other`` (T, N_other), Lanczos
    iterations); f₀ is the model's output when ``random_f0``, else 0.
    """
    f0_train = tf.forward(model, on_train).numpy() if random_f0 else 0.0
    f0_other = tf.forward(model, on_other).numpy() if random_f0 else 0.0

    def matvec(v):
        return weight * tf.jacobian(model, on_train, tf.jacobian_transpose(model, on_train, v))

    residual, info = lanczos_exponential(matvec, f0_train - y, times, rtol=rtol,
                                         integral=True)
    moved = np.stack([weight * tf.jacobian(model, on_other,
                                           tf.jacobian_transpose(model, on_train, q))
                      for q in info["integral"]])
    return residual, f0_other - moved, info["lanczos_iterations"]
