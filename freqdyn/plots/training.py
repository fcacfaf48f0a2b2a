"""A training run: loss against PDE time, parameter drift, and the measured log10|û(ξ, τ)|."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from freqdyn.plots.dynamics import time_rows
from freqdyn.results import u_hat


def training_figure(ds):
    """Loss against PDE time, parameter drift, and the measured log10|û(ξ, τ)|."""

    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    ax0.semilogy(ds["loss_time"].values, np.maximum(ds["loss"].values, 1e-300))
    ax0.set_xlabel("PDE time τ")
    ax0.set_ylabel("training loss (α/2N)Σ(f − g)²")
    ax0.grid(True, which="both", alpha=0.3)
    times = ds["time"].values
    ax1.plot(times, ds["drift"].values, "o-", label="all parameters")
    ax1.plot(times, ds["drift_w"].values, "s--", label="frequencies w")
    ax1.set_xlabel("PDE time τ")
    ax1.set_ylabel("‖θ_τ − θ₀‖ / ‖θ₀‖")
    ax1.legend(fontsize=8)
    ax1.grid(True, alpha=0.3)
    mag = np.abs(u_hat(ds))
    xi_dims = [d for d in mag.dims if d != "time"]
    if len(xi_dims) > 1:
        mag = mag.max(dim=xi_dims[1:])
        label = "max over " + ", ".join(d.replace("xi", "ξ") for d in xi_dims[1:]) + \
            " of log10 |û|"
    else:
        label = "log10 |û(ξ, τ)|"
    logmag = np.log10(np.maximum(mag.values, float(mag.max()) * 1e-12 + 1e-300))
    vmax = float(logmag.max())
    mesh = time_rows(ax2, ds[xi_dims[0]].values, times, logmag, cmap="magma",
                     vmin=vmax - 8, vmax=vmax)
    name = xi_dims[0].replace("xi", "ξ")
    ax2.set_xlabel(f"frequency {name} (cycles per unit x)")
    ax2.set_ylabel("PDE time τ (reports)")
    fig.colorbar(mesh, ax=ax2, label=label)
    fig.suptitle(f"{ds.attrs.get('case_name', 'case')}: trained network "
                 f"(m = {ds.attrs.get('width', '?')})")
    return fig
