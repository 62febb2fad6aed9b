"""Slot-die coating: wet film thickness and wet/dry loading against values computed by hand."""

import pytest

from microdesign.process.coating import dry_loading_mg_cm2, wet_film_thickness_m, wet_loading_mg_cm2


def test_slot_die_coating_by_hand():
    # 600 mL/min over 0.25 m at 12 m/min: 1e-5 m3/s / (0.2 m/s * 0.25 m) = 2e-4 m
    h = wet_film_thickness_m(600.0, 12.0, 250.0)
    assert h == pytest.approx(2.0e-4, rel=1e-12)
    # 2 g/cm3 = 2000 kg/m3; 2000 * 2e-4 = 0.4 kg/m2 = 40 mg/cm2
    m_wet = wet_loading_mg_cm2(2.0, h)
    assert m_wet == pytest.approx(40.0, rel=1e-12)
    assert dry_loading_mg_cm2(m_wet, 0.65) == pytest.approx(26.0, rel=1e-12)
