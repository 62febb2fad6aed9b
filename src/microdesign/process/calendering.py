"""Calendering: porosity after compaction by a line load.

Equation (Meyer, Bockholt, Haselrieder, Kwade, J. Mater. Process. Technol. 249 (2017) 172, eq. 3):

    ε_cal = ε_min + (ε_dry − ε_min) · exp(−q_L / γ_c)

with line load q_L [N.mm-1], the minimum porosity reachable ε_min and the compaction resistance
γ_c [N.mm-1]. Inverse (line load needed for a target porosity):

    q_L = −γ_c · ln((ε − ε_min)/(ε_dry − ε_min))

The mass loading does not change; thickness follows from h = m_dry/(ρ_solids(1 − ε)).

Default ε_min = 0.20 and γ_c = 700 N.mm-1 are of the order Meyer et al. report for NMC cathodes
(ε_min 0.13–0.25, γ_c several hundred to ~2000 N.mm-1 depending on formulation and loading); they
are illustrative: fit both to your own calender data.
"""

from __future__ import annotations

import numpy as np

from microdesign.errors import ArrayLike, ConfigError, check_finite, check_fraction, check_positive


def _check(dry_porosity: ArrayLike, min_porosity: ArrayLike, compaction_resistance_N_mm: ArrayLike) -> None:
    ctx = "calendering"
    check_fraction("dry_porosity", dry_porosity, ctx, open_low=True, open_high=True)
    check_fraction("min_porosity", min_porosity, ctx, open_high=True)
    check_positive("compaction_resistance_N_mm", compaction_resistance_N_mm, ctx)
    bad = np.asarray(dry_porosity, dtype=float) <= np.asarray(min_porosity, dtype=float)
    if bad.any():
        value = np.broadcast_to(np.asarray(dry_porosity, dtype=float), bad.shape)[bad]
        raise ConfigError("dry_porosity", float(np.ravel(value)[0]), "> min_porosity (calendering compacts)", ctx)


def calendered_porosity(dry_porosity: ArrayLike, line_load_N_mm: ArrayLike, min_porosity: ArrayLike,
                        compaction_resistance_N_mm: ArrayLike) -> ArrayLike:
    """ε_cal = ε_min + (ε_dry − ε_min)·exp(−q_L/γ_c) (Meyer et al. 2017).

    Raises:
        ConfigError: negative line load, non-positive γ_c, fractions outside their range, ε_dry ≤ ε_min.
    """
    _check(dry_porosity, min_porosity, compaction_resistance_N_mm)
    check_finite("line_load_N_mm", line_load_N_mm, "calendering")
    if (np.asarray(line_load_N_mm, dtype=float) < 0).any():
        raise ConfigError("line_load_N_mm", float(np.min(line_load_N_mm)), ">= 0", "calendering")
    return min_porosity + (dry_porosity - min_porosity) * np.exp(-np.asarray(line_load_N_mm, dtype=float)
                                                                  / compaction_resistance_N_mm)


def line_load_for_porosity(porosity: ArrayLike, dry_porosity: ArrayLike, min_porosity: ArrayLike,
                           compaction_resistance_N_mm: ArrayLike) -> ArrayLike:
    """q_L [N.mm-1] that calenders ε_dry down to ``porosity`` (inverse of :func:`calendered_porosity`).

    Raises:
        ConfigError: ``porosity`` not in (ε_min, ε_dry].
    """
    _check(dry_porosity, min_porosity, compaction_resistance_N_mm)
    eps = np.asarray(porosity, dtype=float)
    bad = (eps <= min_porosity) | (eps > dry_porosity)
    if np.asarray(bad).any():
        raise ConfigError("porosity", float(np.ravel(np.broadcast_to(eps, np.shape(bad))[bad])[0]),
                          "in (min_porosity, dry_porosity]", "calendering")
    return -compaction_resistance_N_mm * np.log((eps - min_porosity) / (dry_porosity - min_porosity))
