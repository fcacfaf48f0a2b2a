"""The result schema: contents, round trip, atomic writes."""

import numpy as np
import pytest
import xarray as xr
from conftest import make_case_text

from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import CONVENTION
from freqdyn.results import (
    frequency_dataset,
    peak_ratios,
    read_dataset,
    u_hat,
    write_dataset,
    xi_dims,
)


@pytest.fixture(scope="module")
def case():
    return load_case("schema", text=make_case_text('family = "gaussian"\nscale = 1.0'))


def _dataset(case, scale=1.0):
    values = scale * np.outer(np.exp(-case.times), case.initial_error())
    return frequency_dataset(case, values, "test", attrs={"info": {"a": 1}}, variables={
        "extra": (("time",), case.times, {"long_name": "an extra number", "units": "1"})})


def test_schema_dims_variables_and_attributes(case):
    ds = _dataset(case)
    for name in ds.variables:  # every number in a result file says what it is
        assert {"long_name", "units"} <= set(ds[name].attrs), name
    assert ds.attrs["Conventions"] == "CF-1.10"
    with pytest.raises(ValueError, match="'bare' needs a long_name and units"):
        frequency_dataset(case, ds["u_hat_real"].values, "test",
                          variables={"bare": (("time",), case.times)})
    assert ds["u_hat_real"].dims == ("time", "xi")
    assert set(ds.attrs) >= {"case_toml", "case_name", "freqdyn_version", "fourier_convention",
                             "method", "peaks"}
    assert ds.attrs["fourier_convention"] == CONVENTION
    assert ds.attrs["info"] == '{"a": 1}'
    np.testing.assert_allclose(u_hat(ds).isel(time=0).values, case.initial_error())
    assert xi_dims(1) == ("xi",) and xi_dims(3) == ("xi0", "xi1", "xi2")


def test_round_trip(case, tmp_path):
    ds = _dataset(case)
    path = write_dataset(ds, tmp_path / "sub" / "prediction.nc")
    back = read_dataset(path)
    xr.testing.assert_identical(back, ds)
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]


def test_peak_ratios_follow_the_decay(case):
    ratios = peak_ratios(_dataset(case))
    np.testing.assert_allclose(ratios, np.exp(-case.times)[None, :], rtol=1e-12)


def test_atomic_write_keeps_the_old_file_on_failure(case, tmp_path, monkeypatch):
    path = write_dataset(_dataset(case), tmp_path / "prediction.nc")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(_dataset(case, scale=2.0), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["prediction.nc"]
    np.testing.assert_allclose(u_hat(read_dataset(path)).isel(time=0).values,
                               case.initial_error())


def test_shape_and_schema_checks(case, tmp_path):
    with pytest.raises(ValueError, match="expected"):
        frequency_dataset(case, np.zeros((2, 3)), "bad")
    xr.Dataset({"a": ("t", [1.0])}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="not a freqdyn result"):
        read_dataset(tmp_path / "other.nc")


def test_a_prediction_on_fine_times_read_at_the_case_times_is_the_prediction_there():
    """One modal run on a fine grid, read at the case's times (results.at_times), equals
    the run at those times; a time not on the grid is refused."""
    from dataclasses import replace

    import numpy as np
    import pytest

    from freqdyn.inputs.case import load_case
    from freqdyn.predict.registry import predict
    from freqdyn.results import at_times, u_hat

    case = load_case("pde/gaussian-1d.toml")
    fine = np.union1d(case.times, np.linspace(0.0, case.times[-1], 41))
    read = at_times(predict(replace(case, times=fine), "fd"), case.times)
    direct = predict(case, "fd")
    assert np.array_equal(read["time"].values, case.times)
    np.testing.assert_allclose(u_hat(read).values, u_hat(direct).values, rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        at_times(direct, [0.3])
