"""Design space: unit cube <-> physical, bounds, fixed parameters, roles, linear constraints, and every bad input."""

import numpy as np
import pytest
import torch

from microdesign.config import compose
from microdesign.design import DesignSpace, Parameter
from microdesign.errors import ConfigError


@pytest.fixture
def space():
    return DesignSpace.from_config(compose("process").design_space)


def test_default_space_roles_and_bounds(space):
    assert space.names == ("am_weight_fraction", "porosity", "cbd_adhesion", "mass_loading_mg_cm2")
    assert space.microstructure_names == ("am_weight_fraction", "porosity", "cbd_adhesion")
    assert space.cell_names == ("mass_loading_mg_cm2",)
    assert space.bounds.shape == (2, 4) and space.bounds.dtype == torch.float64
    assert torch.all(space.bounds[0] < space.bounds[1])


def test_unit_round_trip(space):
    U = torch.rand(17, space.d_free, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X = space.from_free_unit(U)
    assert X.shape == (17, space.d)
    assert torch.allclose(space.to_free_unit(X), U, atol=1e-12)
    assert np.all(X >= space.lower) and np.all(X <= space.upper)
    # corners map to bounds; an optimiser's overshoot is clipped to them
    assert np.array_equal(space.from_free_unit(torch.zeros(1, space.d_free))[0], space.lower)
    assert np.array_equal(space.from_free_unit(torch.full((1, space.d_free), 1.0 + 1e-9))[0], space.upper)


def test_fixed_parameter_held_and_not_a_unit_cube_dimension():
    s = DesignSpace([Parameter("a", "1", 0.0, 1.0), Parameter("b", "mg.cm-2", 10.0, 30.0, role="cell", fixed=20.0)])
    assert s.free_names == ("a",) and s.d_free == 1 and s.d == 2
    assert s.from_free_unit(torch.tensor([[0.25]], dtype=torch.float64)).tolist() == [[0.25, 20.0]]
    assert s.to_free_unit(np.array([[0.75, 20.0]])).tolist() == [[0.75]]
    assert s.validate({"a": 0.5}) == {"a": 0.5, "b": 20.0}
    with pytest.raises(ConfigError, match="fixed value"):
        s.validate({"a": 0.5, "b": 25.0})


def test_errors_name_parameter_value_and_bound(space):
    with pytest.raises(ConfigError, match=r"porosity.*0\.9.*\[0\.25, 0\.5\]"):
        space.validate({"am_weight_fraction": 0.9, "porosity": 0.9, "cbd_adhesion": 0.5, "mass_loading_mg_cm2": 20})
    with pytest.raises(ConfigError, match="porositty"):
        space.validate({"porositty": 0.3})
    with pytest.raises(ConfigError, match="lower"):
        Parameter("x", "1", 1.0, 0.5)
    with pytest.raises(ConfigError, match="unit"):
        Parameter("x", "", 0.0, 1.0)
    with pytest.raises(ConfigError, match="role"):
        Parameter("x", "1", 0.0, 1.0, role="anode")
    with pytest.raises(ConfigError, match="unit"):
        DesignSpace.from_config({"parameters": {"x": {"lower": 0.0, "upper": 1.0}}})
    with pytest.raises(ConfigError, match="lower"):
        compose_space(["design_space.parameters.porosity.lower=0.6"])


def compose_space(overrides):
    return DesignSpace.from_config(compose("process", overrides).design_space)


def test_training_bounds_check(space):
    ok = {"am_weight_fraction": (0.85, 0.98), "porosity": (0.2, 0.55), "cbd_adhesion": (0.0, 1.0)}
    space.restricted_to(ok)
    with pytest.raises(ConfigError, match="porosity"):
        space.restricted_to({**ok, "porosity": (0.3, 0.5)})


SPACE_CFG = {"parameters": {
    "a": {"unit": "1", "lower": 0.88, "upper": 0.97},
    "b": {"unit": "1", "lower": 0.25, "upper": 0.50},
    "c": {"unit": "1", "lower": 0.0, "upper": 1.0, "fixed": 0.3},
    "m": {"unit": "mg.cm-2", "lower": 10.0, "upper": 40.0},
}}


def test_linear_constraints_in_the_unit_cube():
    """a + b <= 1.3 in physical units holds exactly for the unit-cube points the mask keeps; the fixed c adds
    its value to the right-hand side."""
    s = DesignSpace.from_config(SPACE_CFG, [{"coefficients": {"a": 1.0, "b": 1.0}, "rhs": 1.3, "sense": "<="},
                                            {"coefficients": {"b": 1.0, "c": 1.0}, "rhs": 0.6}])
    Z = torch.rand(400, s.d_free, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    X = s.from_free_unit(Z)
    ok = s.feasible_mask(Z).numpy()
    assert np.array_equal(ok, (X[:, 0] + X[:, 1] <= 1.3 + 1e-9) & (X[:, 1] + X[:, 2] >= 0.6 - 1e-9))
    assert 0 < ok.sum() < len(ok)


def test_bad_space_or_constraint_is_config_error():
    with pytest.raises(ConfigError, match="upper"):
        DesignSpace.from_config({"parameters": {"a": {"unit": "1", "lower": 1.0, "upper": 0.0}}})
    with pytest.raises(ConfigError, match="within"):
        DesignSpace.from_config({"parameters": {"a": {"unit": "1", "lower": 0.0, "upper": 1.0, "fixed": 2.0},
                                                "b": {"unit": "1", "lower": 0.0, "upper": 1.0}}})
    with pytest.raises(ConfigError, match="parameters among"):
        DesignSpace.from_config(SPACE_CFG, [{"coefficients": {"zzz": 1.0}, "rhs": 0.0}])
    with pytest.raises(ConfigError, match="'>=' or '<='"):
        DesignSpace.from_config(SPACE_CFG, [{"coefficients": {"a": 1.0}, "rhs": 0.0, "sense": "=="}])
    with pytest.raises(ConfigError, match="satisfies"):  # a + b >= 2 is impossible within the bounds
        DesignSpace.from_config(SPACE_CFG, [{"coefficients": {"a": 1.0, "b": 1.0}, "rhs": 2.0}])


def test_a_campaign_file_header_reads_back_as_the_same_space():
    s = DesignSpace.from_config(SPACE_CFG)
    stored = {"names": list(s.names), "units": [s[n].unit for n in s.names], "lower": s.lower, "upper": s.upper,
              "fixed": s.fixed_values}
    back = DesignSpace.from_stored(stored)
    assert back.names == s.names and back.free_names == s.free_names and back.fixed_values == {"c": 0.3}
    Z = torch.rand(5, s.d_free, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert np.array_equal(back.from_free_unit(Z), s.from_free_unit(Z))
