"""Design space: unit cube <-> physical, bounds, fixed parameters, roles, and every bad input."""

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
    U = torch.rand(17, space.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X = space.from_unit(U)
    assert torch.allclose(space.to_unit(X), U, atol=1e-12)
    assert torch.all(X >= space.bounds[0]) and torch.all(X <= space.bounds[1])
    # corners map to bounds
    assert torch.equal(space.from_unit(torch.zeros(1, space.dim)), space.bounds[:1])


def test_fixed_parameter_removed_from_tensors():
    s = DesignSpace([Parameter("a", "1", 0.0, 1.0), Parameter("b", "mg.cm-2", 10.0, 30.0, role="cell", fixed=20.0)])
    assert s.free_names == ("a",) and s.dim == 1
    d = s.to_dicts(torch.tensor([[0.25]], dtype=torch.float64))[0]
    assert d == {"a": 0.25, "b": 20.0}
    assert s.validate({"a": 0.5}) == {"a": 0.5, "b": 20.0}
    with pytest.raises(ConfigError, match="fixed value"):
        s.validate({"a": 0.5, "b": 25.0})


def test_errors_name_parameter_value_and_bound(space):
    with pytest.raises(ConfigError, match=r"porosity.*0\.9.*\[0\.25, 0\.5\]"):
        space.validate({"am_weight_fraction": 0.9, "porosity": 0.9, "cbd_adhesion": 0.5, "mass_loading_mg_cm2": 20})
    with pytest.raises(ConfigError, match="porositty"):
        space.validate({"porositty": 0.3})
    with pytest.raises(ConfigError, match="mass_loading_mg_cm2"):
        space.to_unit(torch.tensor([[0.9, 0.3, 0.5, 50.0]], dtype=torch.float64))
    with pytest.raises(ConfigError, match="n x 4"):
        space.to_unit(torch.zeros(3, 2))
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
