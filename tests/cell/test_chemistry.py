"""Chemistry sources: PyBaMM sets and a BPX file, the linked-parameter recast at each set's base point,
and clear errors for sets the full cell cannot use."""

from __future__ import annotations

import json
import math

import pytest

from microdesign.cell import CathodeStructure, build_cell_model
from microdesign.cell.chemistry import BruggemanCathode, load_parameter_values
from microdesign.cell.protocols import RETENTION_KEY, RateSweep
from microdesign.config import compose
from microdesign.errors import ConfigError

FIELDS = ("porosity", "am_volume_fraction", "cbd_volume_fraction", "tortuosity_factor", "conductivity_S_m",
          "specific_surface_area_m")

# A small NMC/graphite cell written for this test in the BPX 1.0 schema (https://bpxstandard.com): the
# numbers are typical of the class, not a published parameterisation.
POSITIVE = {"Particle radius [m]": 5.0e-6, "Thickness [m]": 7.0e-5, "Diffusivity [m2.s-1]": 4e-15,
            "OCP [V]": "4.3 - 1.2 * x + 0.2 * tanh((0.8 - x) / 0.05) - 0.3 * exp(60 * (x - 1))",
            "Entropic change coefficient [V.K-1]": 0.0, "Conductivity [S.m-1]": 0.2,
            "Surface area per unit volume [m-1]": 390000.0, "Porosity": 0.32, "Transport efficiency": 0.18,
            "Reaction rate constant [mol.m-2.s-1]": 3e-6, "Minimum stoichiometry": 0.27,
            "Maximum stoichiometry": 0.9, "Maximum concentration [mol.m-3]": 51000.0}


def write_bpx(path) -> None:
    bpx = {
        "Header": {"BPX": 1.0, "Title": "NMC/graphite test cell", "Model": "DFN"},
        "Parameterisation": {
            "Cell": {"Electrode area [m2]": 0.1, "Number of electrode pairs connected in parallel to make a cell": 1,
                     "Lower voltage cut-off [V]": 2.5, "Upper voltage cut-off [V]": 4.2,
                     "Nominal cell capacity [A.h]": 5.0, "Reference temperature [K]": 298.15,
                     "External surface area [m2]": 0.0053, "Volume [m3]": 2.42e-5, "Density [kg.m-3]": 2900.0,
                     "Specific heat capacity [J.K-1.kg-1]": 1000.0},
            "Electrolyte": {"Cation transference number": 0.26, "Conductivity [S.m-1]": 1.0,
                            "Diffusivity [m2.s-1]": 3e-10},
            "Negative electrode": {
                "Particle radius [m]": 6e-6, "Thickness [m]": 8.0e-5, "Diffusivity [m2.s-1]": 3e-14,
                "OCP [V]": "0.12 + 1.5 * exp(-75 * x) - 0.03 * tanh((x - 0.5) / 0.1)",
                "Entropic change coefficient [V.K-1]": 0.0, "Conductivity [S.m-1]": 200.0,
                "Surface area per unit volume [m-1]": 375000.0, "Porosity": 0.25, "Transport efficiency": 0.125,
                "Reaction rate constant [mol.m-2.s-1]": 1e-5, "Minimum stoichiometry": 0.03,
                "Maximum stoichiometry": 0.9, "Maximum concentration [mol.m-3]": 33000.0},
            "Positive electrode": POSITIVE,
            "Separator": {"Thickness [m]": 1.2e-5, "Porosity": 0.47, "Transport efficiency": 0.32},
        },
        "State": {"Initial conditions": {"Initial state-of-charge": 1.0,
                                         "Initial electrolyte concentration [mol.m-3]": 1000.0,
                                         "Initial temperature [K]": 298.15}},
    }
    path.write_text(json.dumps(bpx, indent=1))


@pytest.mark.parametrize("name", ["Chen2020", "Marquis2019", "Ecker2015", "Mohtat2020", "NCA_Kim2011"])
def test_linked_recast_is_exact_at_each_sets_base_point(name):
    """Mass loading and press density of a set's own cathode give back its thickness and its cathode."""
    pv = load_parameter_values(name)
    cathode = BruggemanCathode.from_parameter_values(pv, name)
    lp = cathode.linked(4.75)
    structure, thickness = cathode.at(float(lp.mass_loading_mg_cm2), float(lp.press_density_g_cm3), 4.75)
    assert thickness == pytest.approx(float(pv["Positive electrode thickness [m]"]), rel=1e-12)
    base = CathodeStructure.from_parameter_values(pv)
    for f in FIELDS:
        assert getattr(structure, f) == pytest.approx(getattr(base, f), rel=1e-12, abs=1e-15), f
    assert structure.porosity == pytest.approx(float(pv["Positive electrode porosity"]), rel=1e-12)


@pytest.mark.parametrize("name", ["Marquis2019", "Mohtat2020", "NCA_Kim2011"])
def test_other_pybamm_sets_run_a_rate_sweep(name):
    model = build_cell_model(compose("cell", [f"cell.base_parameter_set={name}"]).cell)
    cathode = BruggemanCathode.from_parameter_values(load_parameter_values(name), name)
    one, two = model.sweep(cathode.base_structure().to_metrics(), cathode.thickness_m, RateSweep((0.5, 2.0)))
    assert one.ok and two.ok, (one.reason, two.reason)
    assert 0.5 < two.extra[RETENTION_KEY] < one.extra[RETENTION_KEY] < 1.0


@pytest.mark.parametrize("name, missing", [
    ("Xu2019", "Negative electrode porosity"),                                  # a half-cell set
    ("Chen2020_composite", "Negative electrode active material volume fraction"),  # two-phase anode
    ("ORegan2022", "Positive electrode conductivity [S.m-1]"),                  # a function of temperature
])
def test_a_set_the_cell_cannot_use_is_refused_naming_the_parameter(name, missing):
    with pytest.raises(ConfigError, match=missing.replace("[", r"\[").replace("]", r"\]")):
        build_cell_model(compose("cell", [f"cell.base_parameter_set={name}"]).cell)


def test_unknown_set_and_missing_bpx_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="base_parameter_set"):
        load_parameter_values("NoSuchSet2099")
    with pytest.raises(ConfigError, match="existing BPX file"):
        load_parameter_values(str(tmp_path / "absent.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Header": {"BPX": 1.0, "Model": "DFN"}}))
    with pytest.raises(ConfigError, match="valid BPX file"):
        load_parameter_values(str(bad))


def test_bpx_file_round_trips_into_the_cell(tmp_path):
    """What the BPX file says about its cathode comes back out of the cell's structure and recast; the
    cell needs foils (BPX has none) and says so; with them it runs a rate sweep."""
    path = tmp_path / "nmc_test_cell.json"
    write_bpx(path)
    pv = load_parameter_values(str(path))
    cathode = BruggemanCathode.from_parameter_values(pv, str(path))
    s = cathode.base_structure()
    assert s.porosity == pytest.approx(POSITIVE["Porosity"], rel=1e-12)
    assert s.porosity / s.tortuosity_factor == pytest.approx(POSITIVE["Transport efficiency"], rel=1e-12)
    assert s.conductivity_S_m == pytest.approx(POSITIVE["Conductivity [S.m-1]"], rel=1e-12)  # BPX's is effective
    assert s.specific_surface_area_m == pytest.approx(POSITIVE["Surface area per unit volume [m-1]"], rel=1e-12)
    assert cathode.thickness_m == POSITIVE["Thickness [m]"]
    lp = cathode.linked(4.75)
    again, thickness = cathode.at(float(lp.mass_loading_mg_cm2), float(lp.press_density_g_cm3), 4.75)
    assert thickness == pytest.approx(POSITIVE["Thickness [m]"], rel=1e-12)
    for f in FIELDS:
        assert getattr(again, f) == pytest.approx(getattr(s, f), rel=1e-12, abs=1e-15), f

    with pytest.raises(ConfigError, match="positive_current_collector_thickness_m"):
        build_cell_model(compose("cell", [f"cell.base_parameter_set={path}"]).cell)
    model = build_cell_model(compose("cell", [f"cell.base_parameter_set={path}",
                                              "cell.positive_current_collector_thickness_m=1.5e-5",
                                              "cell.negative_current_collector_thickness_m=1.0e-5"]).cell)
    assert model.chemistry.separator_thickness_m == 1.2e-5
    slow, fast = model.sweep(s.to_metrics(), cathode.thickness_m, RateSweep((0.5, 2.0)))
    assert slow.ok and fast.ok, (slow.reason, fast.reason)
    assert fast.extra[RETENTION_KEY] < slow.extra[RETENTION_KEY] < 1.0
    assert math.isfinite(fast.volumetric_energy_density_Wh_L) and fast.volumetric_energy_density_Wh_L > 0


def test_a_c10_reference_that_stops_at_the_time_limit_fails_the_rates():
    """Ai2020's cathode with our N/P sizing never reaches its 3.0 V cut-off at C/10: the time limit's
    capacity is not the design's, so every rate fails with that reason instead of a retention above 1."""
    model = build_cell_model(compose("cell", ["cell.base_parameter_set=Ai2020"]).cell)
    cathode = BruggemanCathode.from_parameter_values(load_parameter_values("Ai2020"), "Ai2020")
    (res,) = model.sweep(cathode.base_structure().to_metrics(), cathode.thickness_m, RateSweep((1.0,)))
    assert not res.ok and "did not reach 3 V within 30 h" in res.reason
