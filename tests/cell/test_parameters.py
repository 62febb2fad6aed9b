"""Metrics -> PyBaMM parameters: the round trip through the built DFN, the electrode balance,
thickness from mass loading, and bad input."""

from __future__ import annotations

import numpy as np
import pybamm
import pytest
from hydra.utils import instantiate

from microdesign.cell import CathodeStructure, CellModel, ConstantPower, base_chemistry, build_cell_model
from microdesign.cell.parameters import FARADAY, thickness_m
from microdesign.characterise import metrics as M
from microdesign.config import compose
from microdesign.errors import ConfigError

# A cathode unlike Chen2020 (CBD present, tau not Bruggeman, conductivity not 0.18) so nothing coincides.
MEASURED = {
    M.POROSITY: 0.31, M.AM_VOLUME_FRACTION: 0.58, M.CBD_VOLUME_FRACTION: 0.11,
    M.TORTUOSITY_THROUGH_PLANE: 2.73, M.CONDUCTIVITY_SOLID: 3.7, M.SSA_AM_PORE: 4.1e5, M.SSA_AM_CBD: 1.2e5,
}


@pytest.fixture(scope="module")
def model() -> CellModel:
    return instantiate(compose("cell").cell, _convert_="all")


def test_round_trip_inside_the_solved_pybamm_model(model):
    """Porosity, AM fraction, transport efficiency, conductivity and surface area that PyBaMM's own
    expression tree uses equal what characterisation measured (read back from a solved discharge)."""
    metrics = M.MicrostructureMetrics.from_means(MEASURED)
    design = model.design(metrics, 60e-6)
    result, sol = model.run_protocol(design, ConstantPower(20.0))
    assert result.ok, result.reason

    def values(name):
        return np.asarray(sol[name].entries, dtype=float)

    eps, am, tau = MEASURED[M.POROSITY], MEASURED[M.AM_VOLUME_FRACTION], MEASURED[M.TORTUOSITY_THROUGH_PLANE]
    np.testing.assert_allclose(values("Positive electrode porosity"), eps, rtol=1e-12)
    np.testing.assert_allclose(values("Positive electrode active material volume fraction"), am, rtol=1e-12)
    np.testing.assert_allclose(values("Positive electrolyte transport efficiency"), eps / tau, rtol=1e-12)
    np.testing.assert_allclose(values("Positive electrode effective conductivity"), MEASURED[M.CONDUCTIVITY_SOLID],
                               rtol=1e-12)
    np.testing.assert_allclose(values("Positive electrode surface area to volume ratio [m-1]"),
                               MEASURED[M.SSA_AM_PORE], rtol=1e-12)
    # thickness and area of the built model
    pv = model.parameter_values(design)
    assert pv["Positive electrode thickness [m]"] == 60e-6
    assert pv["Electrode height [m]"] * pv["Electrode width [m]"] == pytest.approx(design.geometry.electrode_area_m2,
                                                                                   rel=1e-12)


def test_base_chemistry_reproduces_chen2020_anode_and_initial_state():
    chem = base_chemistry("Chen2020")
    pv = pybamm.ParameterValues("Chen2020")
    # sized by the base set's own N/P ratio, the anode is Chen2020's
    assert chem.anode_thickness_m_for(0.665, 75.6e-6, chem.n_p_ratio) == pytest.approx(85.2e-6, rel=1e-10)
    x_init = chem.initial_anode_stoichiometry(chem.n_p_ratio)
    assert x_init * chem.c_n_max_mol_m3 == pytest.approx(pv["Initial concentration in negative electrode [mol.m-3]"],
                                                         rel=1e-6)
    assert 1.05 < chem.n_p_ratio < 1.2  # Chen2020: full graphite capacity / usable NMC capacity = 1.13
    # N/P definition: anode capacity / usable cathode capacity
    L_n = chem.anode_thickness_m_for(0.6, 80e-6, 1.25)
    q_n = FARADAY * chem.c_n_max_mol_m3 * chem.anode_am_volume_fraction * L_n
    assert q_n / (chem.usable_cathode_capacity_Ah_m2(0.6, 80e-6) * 3600) == pytest.approx(1.25, rel=1e-12)


def test_cathode_structure_of_chen2020_is_its_bruggeman_transport():
    s = CathodeStructure.from_parameter_values(pybamm.ParameterValues("Chen2020"))
    assert s.transport_efficiency == pytest.approx(0.335**1.5, rel=1e-12)  # tor = eps^b, b = 1.5
    assert s.effective_particle_radius_m == pytest.approx(5.22e-6, rel=1e-12)
    assert s.conductivity_S_m == pytest.approx(0.18)  # electrode Bruggeman 0


def test_thickness_from_mass_loading_is_the_linked_parameter_map(model):
    metrics = M.MicrostructureMetrics.from_means(MEASURED)
    L = model.cathode_thickness_from_mass_loading(metrics, 20.0)
    pd = 0.58 * 4.750 + 0.11 * 1.838  # g.cm-3, X_AM rho_AM + X_CBD rho_CBD
    assert L == pytest.approx(20e-3 / (pd * 100), rel=1e-12)
    # Chen2020's cathode at its own loading gives back its own thickness
    chen = CathodeStructure.from_parameter_values(pybamm.ParameterValues("Chen2020")).to_metrics()
    ml = 0.665 * 4.75 * 75.6e-4 * 1e3  # mg.cm-2
    assert model.cathode_thickness_from_mass_loading(chen, ml) == pytest.approx(75.6e-6, rel=1e-12)
    assert thickness_m(10.0, 2.5) == pytest.approx(10e-3 / 250)


@pytest.mark.parametrize("key, value", [(M.POROSITY, 1.2), (M.TORTUOSITY_THROUGH_PLANE, -1.0),
                                        (M.SSA_AM_PORE, 4.1), (M.CONDUCTIVITY_SOLID, 0.0)])
def test_out_of_range_metrics_raise_config_error_before_building(model, key, value):
    bad = {**MEASURED, key: value}
    with pytest.raises(ConfigError):
        model.simulate(M.MicrostructureMetrics.from_means(bad), 60e-6, ConstantPower(10.0))


def test_missing_metric_raises_config_error(model):
    partial = {k: v for k, v in MEASURED.items() if k != M.SSA_AM_PORE}
    with pytest.raises(ConfigError, match="Specific surface area"):
        model.simulate(M.MicrostructureMetrics.from_means(partial), 60e-6, ConstantPower(10.0))


def test_bad_model_config_raises_config_error():
    with pytest.raises(ConfigError):
        build_cell_model(compose("cell", ["cell.n_p_ratio=0.5"]).cell)
    with pytest.raises(ConfigError):
        build_cell_model(compose("cell", ["cell.base_parameter_set=NoSuchSet"]).cell)
    with pytest.raises(ConfigError):
        build_cell_model(compose("cell", ["cell.protocol.kind=pulse"]).cell)


def test_one_metric_perturbed_by_its_ci_still_simulates_and_moves_energy(model):
    """The objective's noise estimate re-simulates with one metric moved by its CI (fractions then
    no longer sum to exactly 1); more porosity at fixed AM/tau -> more electrolyte transport."""
    base = M.MicrostructureMetrics.from_means(MEASURED)
    more_pores = M.MicrostructureMetrics.from_means({**MEASURED, M.POROSITY: MEASURED[M.POROSITY] + 0.02})
    r0 = model.simulate(base, 100e-6, ConstantPower(120.0))
    r1 = model.simulate(more_pores, 100e-6, ConstantPower(120.0))
    assert r0.ok and r1.ok, (r0.reason, r1.reason)
    assert r1.energy_Wh > r0.energy_Wh
    with pytest.raises(ConfigError):  # but a gross inconsistency is bad input
        model.simulate(M.MicrostructureMetrics.from_means({**MEASURED, M.POROSITY: 0.5}), 100e-6, ConstantPower(10.0))
