"""The plain-PyBaMM rate study that the rate map is checked and timed against.

This is the documented PyBaMM way, written independently of :mod:`microdesign.cell.rate_map`: a fresh
``pybamm.Simulation`` with a ``pybamm.Experiment`` for every discharge (one model build per solve).
Chen2020's cathode is re-densified with the linked parameters (porosity = 1 - PD/CD, AM volume
fraction = f·PD/CD, thickness = ML/(PD·100); docs/process_model.md), its Bruggeman transport kept as
in the set, the anode thickness scaled with the cathode's capacity (N/P held). The C/10 reference is
a tenth of the nominal capacity (Faraday's law over the cathode's lithium window); each C-rate is
then relative to the measured C/10 capacity (docs/rate_map.md).
"""

from __future__ import annotations

from collections.abc import Sequence

FARADAY_C_MOL = 96485.33212  # CODATA 2018


def plain_rate_capability(mass_loading_mg_cm2: float, press_density_g_cm3: float,
                          crystallographic_density_g_cm3: float,
                          c_rates: Sequence[float]) -> tuple[float, list[float], float]:
    """One grid point of a rate study with plain PyBaMM (Chen2020 cathode).

    Args:
        mass_loading_mg_cm2: cathode mass loading [mg.cm-2].
        press_density_g_cm3: cathode press density [g.cm-3].
        crystallographic_density_g_cm3: density of the pressed solid at zero porosity [g.cm-3].
        c_rates: C-rates relative to the C/10 capacity.

    Returns:
        ``(C/10 capacity [A.h], retention per C-rate (capacity at the rate / capacity at C/10),
        electrode area [m2])``.
    """
    import pybamm

    from microdesign.cell import base_chemistry

    ml, pd, cd = mass_loading_mg_cm2, press_density_g_cm3, crystallographic_density_g_cm3
    base = pybamm.ParameterValues("Chen2020")
    eps0, am0, L0 = (float(base[k]) for k in ("Positive electrode porosity",
                                              "Positive electrode active material volume fraction",
                                              "Positive electrode thickness [m]"))
    f = min(1.0, am0 / (1 - eps0))
    eps, am, L = 1 - pd / cd, f * pd / cd, ml * 1e-3 / (pd * 100)
    pv = base.copy()
    pv.update({"Positive electrode porosity": eps, "Positive electrode active material volume fraction": am,
               "Positive electrode thickness [m]": L,
               "Negative electrode thickness [m]": float(base["Negative electrode thickness [m]"]) * am * L / (am0 * L0)})
    chem = base_chemistry("Chen2020")
    area = float(pv["Electrode height [m]"]) * float(pv["Electrode width [m]"])
    nominal = FARADAY_C_MOL * chem.c_p_max_mol_m3 * am * L * (chem.y_0 - chem.y_init) * area / 3600

    def capacity(current: float) -> float:
        sim = pybamm.Simulation(pybamm.lithium_ion.DFN(), parameter_values=pv.copy(),
                                experiment=pybamm.Experiment([f"Discharge at {current} A until 2.5 V"]),
                                solver=pybamm.IDAKLUSolver(rtol=1e-6, atol=1e-6))
        return float(sim.solve()["Discharge capacity [A.h]"].entries[-1])

    q10 = capacity(nominal / 10)
    return q10, [capacity(c * q10) / q10 for c in c_rates], area
