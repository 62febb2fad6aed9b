"""The half cell (cathode against lithium metal): per-gram capacity and its rate and thickness trends."""

from __future__ import annotations

import pybamm
import pytest

from microdesign.cell import CathodeStructure, CellModel, ConstantPower, HalfCellModel, build_cell_model
from microdesign.characterise import metrics as M
from microdesign.config import compose

CHEN = CathodeStructure.from_parameter_values(pybamm.ParameterValues("Chen2020"))


@pytest.fixture(scope="module")
def model() -> CellModel:
    return build_cell_model(compose("cell").cell)


@pytest.fixture(scope="module")
def half_model() -> HalfCellModel:
    return build_cell_model(compose("cell", ["cell._target_=microdesign.cell.HalfCellModel"]).cell)


@pytest.fixture(scope="module")
def chen_metrics() -> M.MicrostructureMetrics:
    return CHEN.to_metrics()


def test_half_cell_per_gram_target_misleads_at_cell_level(model, half_model, chen_metrics):
    """Electrode level (Li-metal half cell, mA.h per g AM at 3C) favours the thin electrode; the 4680
    stores more energy at 10 W with the thick one (why every design is scored as a whole cell)."""
    thin_half = half_model.simulate_half_cell(chen_metrics, 40e-6, 3.0)
    thick_half = half_model.simulate_half_cell(chen_metrics, 150e-6, 3.0)
    slow_half = half_model.simulate_half_cell(chen_metrics, 40e-6, 0.1)
    for r in (thin_half, thick_half, slow_half):
        assert r.ok, r.reason
    assert thin_half.cathode_capacity_mAh_g_am > 1.2 * thick_half.cathode_capacity_mAh_g_am
    assert slow_half.cathode_capacity_mAh_g_am > thin_half.cathode_capacity_mAh_g_am
    # per gram = capacity / (X_AM rho_AM L A)
    am_g = 0.665 * 4.75 * 40e-6 * 100 * 1e-4 * 1e4
    assert thin_half.cathode_capacity_mAh_g_am == pytest.approx(thin_half.capacity_Ah * 1e3 / am_g, rel=1e-9)
    thin_cell = model.simulate(chen_metrics, 40e-6, ConstantPower(10.0))
    thick_cell = model.simulate(chen_metrics, 150e-6, ConstantPower(10.0))
    assert thick_cell.energy_Wh > thin_cell.energy_Wh
