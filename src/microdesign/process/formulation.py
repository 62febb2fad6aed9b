"""Electrode formulation: solid and slurry densities, phase volume fractions.

Equations (docs/process_model.md; Thomitzek et al., Sustainability 14 (2022) 1530, eqs. for slurry and
coating composition):

* solid density           ρ_solids = (Σ_i ω_i/ρ_i)^-1
* slurry density          ρ_slurry = (x_solids Σ_i ω_i/ρ_i + (1 − x_solids)/ρ_solvent)^-1
* solid volume share      s_i = (ω_i/ρ_i) / Σ_j (ω_j/ρ_j)
* phase volume fraction   X_i = (1 − ε) s_i   (coating of porosity ε)

The carbon-binder domain (CBD) of the microstructure is conductive additive + binder; its volume
fraction is X_CA + X_PB. Nano-porosity inside the CBD is not resolved here (it is counted as CBD).

Default densities (g.cm-3): NMC811 4.75, carbon black (Super C65) 1.9, PVDF binder 1.78, NMP solvent
1.028, from :mod:`microdesign.materials` (sources there). Default solids content 0.65 — typical NMC
slurry solids mass fraction (Thomitzek et al. 2022 use 0.6–0.7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microdesign import materials
from microdesign.errors import ArrayLike, ConfigError, check_fraction, check_positive
from microdesign.materials import g_cm3

_SUM_TOLERANCE = 1e-6

# default densities [g.cm-3] (microdesign.materials)
NMC811_DENSITY_G_CM3 = g_cm3(materials.NMC811_DENSITY_KG_M3)
C65_DENSITY_G_CM3 = g_cm3(materials.C65_DENSITY_KG_M3)
PVDF_DENSITY_G_CM3 = g_cm3(materials.PVDF_DENSITY_KG_M3)
NMP_DENSITY_G_CM3 = g_cm3(materials.NMP_DENSITY_KG_M3)


@dataclass(frozen=True)
class Formulation:
    """Dry-coating formulation and slurry.

    Scalars or numpy arrays of one common shape (vectorised Monte Carlo passes arrays ``n``).

    Attributes:
        am_weight_fraction: ω_AM of the dry coating [1].
        conductive_additive_weight_fraction: ω_CA [1].
        binder_weight_fraction: ω_PB [1]; the three must sum to 1 (±1e-6).
        am_density_g_cm3, conductive_additive_density_g_cm3, binder_density_g_cm3: ρ_i [g.cm-3].
        solvent_density_g_cm3: ρ_solvent [g.cm-3].
        solids_content: x_solids, mass fraction of solids in the slurry, in (0, 1).

    Raises:
        ConfigError: a fraction outside [0, 1], weight fractions not summing to 1, a non-positive
            density, or a solids content of 0 or 1 (named parameter, value, expectation).
    """

    am_weight_fraction: ArrayLike = 0.96
    conductive_additive_weight_fraction: ArrayLike = 0.02
    binder_weight_fraction: ArrayLike = 0.02
    am_density_g_cm3: ArrayLike = NMC811_DENSITY_G_CM3
    conductive_additive_density_g_cm3: ArrayLike = C65_DENSITY_G_CM3
    binder_density_g_cm3: ArrayLike = PVDF_DENSITY_G_CM3
    solvent_density_g_cm3: ArrayLike = NMP_DENSITY_G_CM3
    solids_content: ArrayLike = 0.65

    def __post_init__(self) -> None:
        ctx = "formulation"
        for name in ("am_weight_fraction", "conductive_additive_weight_fraction", "binder_weight_fraction"):
            check_fraction(name, getattr(self, name), ctx)
        total = np.asarray(self.am_weight_fraction + self.conductive_additive_weight_fraction
                           + self.binder_weight_fraction, dtype=float)
        bad = np.abs(total - 1.0) > _SUM_TOLERANCE
        if bad.any():
            value = float(total) if total.ndim == 0 else float(total[bad][0])
            raise ConfigError("am_weight_fraction + conductive_additive_weight_fraction + binder_weight_fraction",
                              value, "weight fractions summing to 1", ctx)
        for name in ("am_density_g_cm3", "conductive_additive_density_g_cm3", "binder_density_g_cm3",
                     "solvent_density_g_cm3"):
            check_positive(name, getattr(self, name), ctx)
        check_fraction("solids_content", self.solids_content, ctx, open_low=True, open_high=True)

    @classmethod
    def from_am_weight_fraction(cls, am_weight_fraction: ArrayLike, carbon_to_binder_weight_ratio: float = 1.0,
                                **kwargs) -> Formulation:
        """Formulation with the non-AM remainder split between carbon and binder by weight ratio.

        Args:
            am_weight_fraction: ω_AM [1].
            carbon_to_binder_weight_ratio: ω_CA/ω_PB (default 1, the common 1:1 C65:PVDF of NMC
                cathodes, e.g. 96:2:2).
            **kwargs: densities / solids content, as in the class.

        Raises:
            ConfigError: non-positive ratio or an invalid resulting formulation.
        """
        check_positive("carbon_to_binder_weight_ratio", carbon_to_binder_weight_ratio, "formulation")
        check_fraction("am_weight_fraction", am_weight_fraction, "formulation")
        rest = 1.0 - np.asarray(am_weight_fraction, dtype=float)
        carbon = rest * carbon_to_binder_weight_ratio / (1.0 + carbon_to_binder_weight_ratio)
        binder = rest - carbon
        if np.ndim(am_weight_fraction) == 0:
            carbon, binder = float(carbon), float(binder)
        return cls(am_weight_fraction=am_weight_fraction, conductive_additive_weight_fraction=carbon,
                   binder_weight_fraction=binder, **kwargs)

    def _specific_volumes(self) -> dict[str, ArrayLike]:
        """ω_i/ρ_i [cm3.g-1 of dry solids] per component."""
        return {
            "active_material": self.am_weight_fraction / np.asarray(self.am_density_g_cm3, dtype=float),
            "conductive_additive": self.conductive_additive_weight_fraction
            / np.asarray(self.conductive_additive_density_g_cm3, dtype=float),
            "binder": self.binder_weight_fraction / np.asarray(self.binder_density_g_cm3, dtype=float),
        }

    @property
    def solids_density_g_cm3(self) -> ArrayLike:
        """ρ_solids = (Σ ω_i/ρ_i)^-1 [g.cm-3]."""
        return 1.0 / sum(self._specific_volumes().values())

    @property
    def slurry_density_g_cm3(self) -> ArrayLike:
        """ρ_slurry = (x_solids Σ ω_i/ρ_i + (1 − x_solids)/ρ_solvent)^-1 [g.cm-3]."""
        solids_specific_volume = sum(self._specific_volumes().values())
        return 1.0 / (self.solids_content * solids_specific_volume
                      + (1.0 - self.solids_content) / np.asarray(self.solvent_density_g_cm3, dtype=float))

    @property
    def cbd_density_g_cm3(self) -> ArrayLike:
        """Density of the carbon-binder domain, ρ_CBD = (ω_CA + ω_PB)/(ω_CA/ρ_CA + ω_PB/ρ_PB) [g.cm-3].

        The mass-weighted harmonic mean of its two solids (no nano-porosity); 1.838 for the default
        C65 (1.9) and PVDF (1.78) at 1:1 by weight.

        Raises:
            ConfigError: no conductive additive and no binder.
        """
        w = np.asarray(self.conductive_additive_weight_fraction, float) + np.asarray(self.binder_weight_fraction, float)
        if np.any(w <= 0):
            raise ConfigError("conductive_additive_weight_fraction + binder_weight_fraction", w.tolist(),
                              "> 0 (a formulation without CBD has no CBD density)")
        v = self._specific_volumes()
        return w / (v["conductive_additive"] + v["binder"])

    def solid_volume_shares(self) -> dict[str, ArrayLike]:
        """s_i = (ω_i/ρ_i)/Σ_j(ω_j/ρ_j): each component's share of the solid volume (sums to 1)."""
        v = self._specific_volumes()
        total = sum(v.values())
        return {k: vi / total for k, vi in v.items()}

    def phase_volume_fractions(self, porosity: ArrayLike) -> dict[str, ArrayLike]:
        """Volume fractions of the three microstructure phases in a coating of porosity ε.

        Returns:
            ``{"pore": ε, "active_material": (1−ε)s_AM, "cbd": (1−ε)(s_CA + s_PB),
            "conductive_additive": ..., "binder": ...}``; pore + active_material + cbd = 1.

        Raises:
            ConfigError: porosity outside [0, 1).
        """
        check_fraction("porosity", porosity, "formulation", open_high=True)
        shares = self.solid_volume_shares()
        solid = 1.0 - np.asarray(porosity, dtype=float)
        out = {"pore": np.asarray(porosity, dtype=float)}
        for k, s in shares.items():
            out[k] = solid * s
        out["cbd"] = out["conductive_additive"] + out["binder"]
        if np.ndim(porosity) == 0 and np.ndim(self.am_weight_fraction) == 0:
            out = {k: float(v) for k, v in out.items()}
        return out


def default_cbd_density_g_cm3() -> float:
    """ρ_CBD [g.cm-3] of the default formulation (C65 1.9 and PVDF 1.78 g.cm-3 at 1:1 by weight): 1.838."""
    return float(Formulation().cbd_density_g_cm3)
