"""Material densities: the one set of defaults that the process model, the cell mass and the stand-ins read.

Densities are in kg.m-3 (SI, as the cell model uses them); :func:`g_cm3` converts to g.cm-3 (the
process model's unit). Every value is an integer number of kg.m-3, so the conversion gives exactly
the decimal g.cm-3 value (``4750 / 1000 == 4.75``).

Sources:

* NMC811 4750 — crystallographic density of LiNi0.8Mn0.1Co0.1O2 (≈ 4.7–4.8 g.cm-3, e.g. Noh et al.,
  J. Power Sources 233 (2013) 121; supplier data sheets quote a true density of 4.7–4.8).
* carbon black (Super C65) 1900 — Imerys TIMCAL C-NERGY Super C65 data sheet (skeletal density 1.6–2.0 g.cm-3).
* PVDF binder 1780 — Solvay Solef 5130 data sheet (1.75–1.80 g.cm-3).
* NMP solvent 1028 — N-methyl-2-pyrrolidone at 25 °C (CRC Handbook).
* graphite 2260 — theoretical density of graphite (CRC Handbook).
* aluminium 2700 and copper 8960 — the current collectors (CRC Handbook; Chen et al., J. Electrochem.
  Soc. 167 (2020) 080534).
* separator polymer (polyethylene) 950 — handbook range 0.94–0.97 g.cm-3.
* electrolyte 1200 — 1 M LiPF6 in carbonate solvents, about 1.2 g.cm-3 in supplier data sheets.

docs/process_model.md and docs/cell_model.md list where each is used.
"""

from __future__ import annotations

from typing import Final

NMC811_DENSITY_KG_M3: Final = 4750.0
C65_DENSITY_KG_M3: Final = 1900.0
PVDF_DENSITY_KG_M3: Final = 1780.0
NMP_DENSITY_KG_M3: Final = 1028.0
GRAPHITE_DENSITY_KG_M3: Final = 2260.0
ALUMINIUM_DENSITY_KG_M3: Final = 2700.0
COPPER_DENSITY_KG_M3: Final = 8960.0
POLYETHYLENE_DENSITY_KG_M3: Final = 950.0
ELECTROLYTE_DENSITY_KG_M3: Final = 1200.0


def g_cm3(density_kg_m3: float) -> float:
    """A density in kg.m-3 as g.cm-3 (``/ 1000``)."""
    return density_kg_m3 / 1000.0
