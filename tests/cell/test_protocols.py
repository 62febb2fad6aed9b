"""Protocols from config: the kind follows from the values set, contradictions and empty sweeps are refused."""

from __future__ import annotations

import pytest

from microdesign.cell.protocols import ConstantCurrent, ConstantPower, PowerSweep, RateSweep, protocol_from_config
from microdesign.config import compose
from microdesign.errors import ConfigError

NULLS = {"kind": None, "power_W": 10.0, "c_rate": None, "current_A": None, "c_rates": None, "powers_W": None,
         "low_W": None, "high_W": None, "n": None}


def test_the_shipped_config_lists_every_key_so_overrides_work_as_written():
    node = compose("cell", ["cell.protocol.c_rate=2"]).cell.protocol
    assert protocol_from_config(node) == ConstantCurrent(2.0)
    node = compose("cell", ["cell.protocol.c_rates=[0.5,1,2]"]).cell.protocol
    assert protocol_from_config(node) == RateSweep((0.5, 1.0, 2.0))
    assert protocol_from_config(compose("cell").cell.protocol) == ConstantPower(10.0)


@pytest.mark.parametrize("values, expected", [
    ({}, ConstantPower(10.0)),
    ({"power_W": 50}, ConstantPower(50.0)),
    ({"c_rate": 2}, ConstantCurrent(2.0)),
    ({"current_A": 5}, ConstantCurrent(current_A=5.0)),
    ({"powers_W": [10, 20]}, PowerSweep((10.0, 20.0))),
    ({"c_rates": [1, 3]}, RateSweep((1.0, 3.0))),
    ({"kind": "constant_current", "c_rate": 0.5}, ConstantCurrent(0.5)),  # power_W's default is not a contradiction
    ({"kind": "constant_power", "power_W": 25}, ConstantPower(25.0)),
])
def test_kind_follows_the_values_set(values, expected):
    assert protocol_from_config({**NULLS, **values}) == expected


@pytest.mark.parametrize("values, parameter", [
    ({"kind": "constant_power", "c_rate": 2}, "protocol.c_rate"),       # would be ignored silently
    ({"kind": "rate_sweep"}, "protocol.c_rates"),                       # missing value
    ({"c_rates": []}, "c_rates"),                                       # empty list: null means unset, [] is refused
    ({"c_rates": [1, -2]}, "c_rates"),
    ({"kind": "sideways"}, "protocol.kind"),
    ({"voltage_V": 3}, "protocol.voltage_V"),
])
def test_bad_protocols_are_refused_naming_the_key(values, parameter):
    with pytest.raises(ConfigError) as err:
        protocol_from_config({**NULLS, **values})
    assert err.value.parameter == parameter
