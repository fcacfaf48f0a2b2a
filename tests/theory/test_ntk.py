"""Analytic infinite-width NTK against the empirical NTK of sampled finite networks."""

import numpy as np
import pytest
import torch
from conftest import make_case_text

from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import tensor_grid
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.theory.ntk import empirical_ntk
from freqdyn.theory.ntk import fourier_feature_ntk as analytic_ntk

RHO = {
    "gaussian": ('family = "gaussian"\nscale = 1.0', None),
    "uniform": ('family = "uniform"\nbound = 2.0', None),
    "laplace": ('family = "laplace"\nscale = 0.6', None),
    "student_t": ('family = "student_t"\nscale = 0.8\ndof = 4.0', None),
    "mixture": ('family = "mixture"\ncomponents = [{family = "gaussian", scale = 0.5, '
                'weight = 1.0}, {family = "gaussian", scale = 0.3, center = 1.5, weight = 1.0}]',
                None),
    "expression": ('family = "expression"\ndensity = "exp(-w**4)"',
                   'family = "expression"\ndensity = "exp(-(w0**2 + w1**2)**2)"'),
}


def _deviation(case, width, seed, probe):
    gen = torch.Generator().manual_seed(seed)
    net = FourierFeatureNetwork.from_case(case, width, gen)
    emp = empirical_ntk(net, torch.as_tensor(probe)).numpy()
    ana = analytic_ntk(case, probe)
    return np.abs(emp - ana).max(), np.abs(ana).max()


@pytest.mark.parametrize("name", RHO)
@pytest.mark.parametrize("dim", [1, 2])
def test_empirical_ntk_converges_to_analytic(name, dim):
    rho = RHO[name][dim - 1] or RHO[name][0]
    text = make_case_text(rho, dim=dim, sigma_a=0.7,
                          bounds="[-6.0, 6.0]" if dim == 1 else "[-4.0, 4.0]")
    case = load_case("t", text=text.replace("[frequency]", "[frequency]\npoints = 21"))
    axis = np.linspace(-1.5, 1.5, 24 if dim == 1 else 5)
    probe = tensor_grid([axis] * dim).reshape(-1, dim)
    devs = {}
    for width in (2**10, 2**14):
        dev, scale = _deviation(case, width, seed=11, probe=probe)
        devs[width] = dev
        assert dev <= 4 * scale / np.sqrt(width), (width, dev, scale)
    assert devs[2**14] < devs[2**10]
