"""The one set of material densities: exact g.cm-3 conversions, read by the process model and the cell mass."""

from microdesign import materials
from microdesign.cell.geometry import Materials
from microdesign.process.chain import DEFAULT_INPUTS
from microdesign.process.formulation import Formulation


def test_densities_convert_exactly_and_are_the_defaults_of_every_model():
    # integer kg.m-3 convert to the decimal g.cm-3 value exactly (no rounding drift between models)
    assert materials.g_cm3(materials.NMC811_DENSITY_KG_M3) == 4.75
    assert materials.g_cm3(materials.PVDF_DENSITY_KG_M3) == 1.78
    assert materials.g_cm3(materials.GRAPHITE_DENSITY_KG_M3) == 2.26
    f = Formulation()
    assert (f.am_density_g_cm3, f.conductive_additive_density_g_cm3, f.binder_density_g_cm3,
            f.solvent_density_g_cm3) == (4.75, 1.9, 1.78, 1.028)
    assert [DEFAULT_INPUTS[k] for k in ("am_density_g_cm3", "conductive_additive_density_g_cm3",
                                        "binder_density_g_cm3", "solvent_density_g_cm3")] == [4.75, 1.9, 1.78, 1.028]
    m = Materials()
    assert m.cathode_am_density_kg_m3 == 1000 * f.am_density_g_cm3
    assert m.anode_binder_density_kg_m3 == 1000 * f.binder_density_g_cm3
    assert (m.positive_current_collector_density_kg_m3, m.negative_current_collector_density_kg_m3) == (2700.0, 8960.0)
    # the CBD density is the formulation's harmonic mean of carbon black and PVDF at 1:1 by weight
    assert abs(m.cathode_cbd_density_kg_m3 - 1000 / (0.5 / 1.9 + 0.5 / 1.78)) < 1e-9
