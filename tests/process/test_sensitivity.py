"""Sobol sensitivity of the process chain: indices that physics fixes exactly."""

import numpy as np
import pytest

from microdesign.errors import ConfigError
from microdesign.process.sensitivity import sobol_indices


def test_porosity_depends_only_on_calendering_inputs():
    res = sobol_indices({"line_load_N_mm": (200.0, 1200.0), "flow_rate_mL_min": (450.0, 650.0)},
                        outputs=("porosity", "thickness_m", "coating_density_g_cm3"), n_base_samples=512)
    i_load, i_flow = res.input_names.index("line_load_N_mm"), res.input_names.index("flow_rate_mL_min")
    # porosity = f(line load) only: ST(flow) = 0, S1(load) = 1
    assert res.total_order["porosity"][i_flow] == pytest.approx(0.0, abs=1e-9)
    assert res.first_order["porosity"][i_load] == pytest.approx(1.0, abs=0.05)
    # thickness depends on both (loading through flow, porosity through load)
    assert res.total_order["thickness_m"][i_flow] > 0.3 and res.total_order["thickness_m"][i_load] > 0.1
    # the S1 of an additive-dominated output sum to about 1
    assert np.sum(res.first_order["thickness_m"]) == pytest.approx(1.0, abs=0.1)
    assert res.n_evaluations == 512 * (2 + 2)


def test_bad_ranges_rejected():
    with pytest.raises(ConfigError, match="bogus"):
        sobol_indices({"bogus": (0.0, 1.0)})
    with pytest.raises(ConfigError, match="low < high"):
        sobol_indices({"line_load_N_mm": (900.0, 100.0)})
    with pytest.raises(ConfigError, match="power of 2"):
        sobol_indices({"line_load_N_mm": (100.0, 900.0)}, n_base_samples=1000)
