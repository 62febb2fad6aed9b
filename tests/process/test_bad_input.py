"""Every bad input gets a ConfigError naming the parameter, before any work (docs/conventions.md, "Bad input")."""

import pytest

from microdesign.errors import ConfigError
from microdesign.process import Formulation, LinkedParameters, ProcessModel, evaluate_process
from microdesign.process.calendering import calendered_porosity, line_load_for_porosity
from microdesign.process.coating import dry_loading_mg_cm2, wet_film_thickness_m


@pytest.mark.parametrize("kwargs, name", [
    (dict(am_weight_fraction=1.2, conductive_additive_weight_fraction=-0.1, binder_weight_fraction=-0.1), "am_weight_fraction"),
    (dict(am_weight_fraction=0.9, conductive_additive_weight_fraction=0.05, binder_weight_fraction=0.04), "summing to 1"),
    (dict(am_density_g_cm3=0.0), "am_density_g_cm3"),
    (dict(binder_density_g_cm3=-1.78), "binder_density_g_cm3"),
    (dict(solvent_density_g_cm3=0.0), "solvent_density_g_cm3"),
    (dict(solids_content=0.0), "solids_content"),
    (dict(solids_content=1.0), "solids_content"),
])
def test_formulation_rejects(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        Formulation(**kwargs)


@pytest.mark.parametrize("args, name", [((0.0, 10.0, 300.0), "flow_rate_mL_min"), ((500.0, 0.0, 300.0), "web_speed_m_min"),
                                        ((500.0, 10.0, 0.0), "coating_width_mm")])
def test_coating_rejects_zero(args, name):
    with pytest.raises(ConfigError, match=name):
        wet_film_thickness_m(*args)


def test_dry_loading_rejects_solids_content_bounds():
    for x in (0.0, 1.0):
        with pytest.raises(ConfigError, match="solids_content"):
            dry_loading_mg_cm2(30.0, x)


def test_calendering_rejects():
    with pytest.raises(ConfigError, match="line_load_N_mm"):
        calendered_porosity(0.5, -1.0, 0.2, 700.0)
    with pytest.raises(ConfigError, match="dry_porosity"):
        calendered_porosity(0.15, 100.0, 0.2, 700.0)
    with pytest.raises(ConfigError, match="compaction_resistance_N_mm"):
        calendered_porosity(0.5, 100.0, 0.2, 0.0)
    with pytest.raises(ConfigError, match="porosity"):
        line_load_for_porosity(0.1, 0.5, 0.2, 700.0)


def test_press_density_above_crystallographic_density():
    with pytest.raises(ConfigError, match="press_density_g_cm3") as err:
        LinkedParameters(mass_loading_mg_cm2=20.0, press_density_g_cm3=5.0, crystallographic_density_g_cm3=4.75)
    assert "5.0" in str(err.value) and "4.75" in str(err.value)


def test_linked_rejects_non_positive_loading_and_bad_fraction():
    with pytest.raises(ConfigError, match="mass_loading_mg_cm2"):
        LinkedParameters(mass_loading_mg_cm2=0.0, press_density_g_cm3=3.0, crystallographic_density_g_cm3=4.75)
    with pytest.raises(ConfigError, match="active_fraction"):
        LinkedParameters(mass_loading_mg_cm2=20.0, press_density_g_cm3=3.0, crystallographic_density_g_cm3=4.75,
                         active_fraction=1.5)
    with pytest.raises(ConfigError, match="am_volume_fraction"):
        LinkedParameters.from_structure(80e-6, 0.4, 0.7, 4.75)


def test_unknown_process_input_and_invalid_base_point_at_construction():
    with pytest.raises(ConfigError, match="line_laod_N_mm"):
        evaluate_process({"line_laod_N_mm": 3.0})
    with pytest.raises(ConfigError, match="web_speed_m_min"):
        ProcessModel(inputs={"web_speed_m_min": 0.0})


def test_monte_carlo_vector_error_names_parameter():
    import numpy as np
    with pytest.raises(ConfigError, match="solids_content"):
        evaluate_process({"solids_content": np.array([0.6, 1.0])})
