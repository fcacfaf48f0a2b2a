"""Design of rho_w against the PDE: profiles, the finite-difference learning times, cases."""

import numpy as np
import pytest
import tomli_w

from freqdyn.analysis.design import (
    Probe,
    case_table,
    density_values,
    design,
    learning_times_fd,
    parse_profile,
)
from freqdyn.errors import InputError
from freqdyn.inputs.case import case_from_dict


def test_profiles():
    xi = np.array([0.5, 2.0])
    assert parse_profile("flat")(xi).tolist() == [1.0, 1.0]
    assert parse_profile("power:2")(xi).tolist() == [0.25, 4.0]
    assert parse_profile("1 + xi**2")(xi).tolist() == [1.25, 5.0]
    with pytest.raises(InputError, match="profile"):
        parse_profile("1 + w")


def test_pure_damping_learning_time_is_inverse_density():
    # σ_a = 0: |û(ω, t)| = |û(ω, 0)| e^{-αρ t}, so T = 1/(αρ) = 2B/α for a uniform ρ.
    probe = Probe.build(3.0, 3)
    rho = density_values(np.zeros(4), probe.nodes, 3.0)
    assert learning_times_fd(rho, probe, 0.0, rate_factor=2.0) == pytest.approx(3.0, rel=1e-8)


def test_diffusion_speeds_up_narrow_peaks():
    probe = Probe.build(3.0, 3)
    rho = density_values(np.zeros(4), probe.nodes, 3.0)
    assert np.all(learning_times_fd(rho, probe, 0.3) < 0.5 * 6.0)


def test_power_profile_is_met_and_beats_first_guess():
    d = design(parse_profile("power:1"), 4.0, sigma_a=0.3, peaks=4, level=3.0)
    dev = np.max(np.abs(d.achieved / d.wanted - 1))
    first = np.max(np.abs(d.achieved_first_guess / d.wanted - 1))
    assert dev < 0.03 and dev < first
    assert np.exp(np.mean(np.log(d.wanted))) == pytest.approx(3.0)
    assert np.all(d.wanted[1:] > d.wanted[:-1])  # wanted times grow with |ξ|


def test_designed_case_is_a_valid_case():
    d = design(parse_profile("flat"), 4.0, peaks=5)
    table = case_table(d, "design-flat")
    case = case_from_dict(table, text=tomli_w.dumps(table))
    assert case.rho_w.family == "expression"
    assert case.peaks[:, 0] == pytest.approx(d.probe.peaks)
    xi = d.probe.nodes
    assert np.allclose(case.rho_w.density(xi[1:-1, None]),
                       density_values(d.coeffs, xi, 4.0)[1:-1], rtol=1e-3)
    assert np.max(np.abs(d.achieved / d.wanted - 1)) < 0.01
    assert np.max(np.maximum(d.gaussian / d.wanted, d.wanted / d.gaussian)) > 2


def test_report_times_resolve_every_wanted_time():
    """For power:1 on a band of 3 the lowest peak is wanted at 0.51 while the longest is 3.6:
    the case's times bracket every wanted time from 0.6x to 1.5x (not just the longest)."""
    d = design(parse_profile("power:1"), 3.0, sigma_a=0.3, peaks=5, level=2.0)
    times = np.asarray(case_table(d, "p1")["frequency"]["times"])
    for wanted in d.wanted:
        assert np.any((times > 0.5 * wanted) & (times < 0.7 * wanted))
        assert np.any((times > 1.3 * wanted) & (times < 1.6 * wanted))
    assert times[0] == 0.0


@pytest.mark.parametrize(("profile", "kwargs", "field"), [
    ("power:8", {}, "--profile"),            # 9^8 between the peaks: unrealisable
    ("xi - 2", {}, "--profile"),             # negative on the band
    ("flat", {"level": -1.0}, "--time"),
])
def test_unrealisable_or_bad_designs_are_refused(profile, kwargs, field):
    with pytest.raises(InputError) as info:
        design(parse_profile(profile), 3.0, **kwargs)
    assert info.value.field == field


def test_profile_xi_is_read_at_the_absolute_frequency():
    d = design(parse_profile("xi"), 3.0, peaks=3, level=2.0)
    assert np.all(np.isfinite(d.achieved)) and np.all(d.wanted[1:] > d.wanted[:-1])
