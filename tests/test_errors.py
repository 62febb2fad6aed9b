"""Shared input checks: the voxel-size check every stage uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microdesign.errors import ConfigError, check_voxel_size


@pytest.mark.parametrize("value", [3.98e-7, 1e-9, np.float32(4e-7), np.float64(8e-7), np.array(2e-7), 9.99e-4])
def test_voxel_size_accepted_as_float(value):
    v = check_voxel_size("voxel_size_m", value)
    assert type(v) is float and v == float(value)


@pytest.mark.parametrize("value", [None, 0.0, -4e-7, 1e-3, 0.4, math.nan, math.inf, -math.inf, True, "4e-7", [4e-7],
                                   object()])
def test_voxel_size_rejected_naming_parameter_and_value(value):
    with pytest.raises(ConfigError, match=r"source\.voxel_size_m in f\.tif = .*: expected a voxel edge in metres, "
                                          r"> 0 and < 1e-3 \(e\.g\. 4e-7\)") as info:
        check_voxel_size("source.voxel_size_m", value, context="f.tif", hint="e.g. 4e-7")
    assert info.value.parameter == "source.voxel_size_m" and info.value.value is value


def test_voxel_size_in_micrometres_is_named_as_such():
    with pytest.raises(ConfigError, match="looks like micrometres"):
        check_voxel_size("voxel_size_m", 0.398)
    with pytest.raises(ConfigError) as info:
        check_voxel_size("voxel_size_m", -1.0)
    assert "micrometres" not in str(info.value)
