"""Fidelity levels and the per-level cost model (docs/multi_fidelity.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microdesign.errors import ConfigError
from microdesign.optim.cost import FidelityLevel, LevelCostModel, level_index, parse_levels

TWO = [{"name": "high", "fidelity": 1.0, "cost_s": 10.0, "n_cubes": 16, "cube_size_voxels": 128},
       {"name": "low", "fidelity": 0.5, "cost_s": 1.0, "n_cubes": 3, "cube_size_voxels": 48}]


def test_levels_sorted_by_fidelity_with_their_cube_settings():
    levels = parse_levels(TWO)
    assert [lv.name for lv in levels] == ["low", "high"]
    assert levels[0] == FidelityLevel("low", 0.5, 1.0, 3, 48)
    assert levels[1].n_cubes == 16 and levels[1].cube_size_voxels == 128
    assert list(level_index(levels, [1.0, 0.5, 0.5])) == [1, 0, 0]


@pytest.mark.parametrize("levels, key", [
    (TWO[:1], "fidelity_levels.levels"),                                                   # one level
    ([TWO[0], {**TWO[1], "fidelity": 0.0}], "fidelity_levels.levels[1].fidelity"),        # outside (0, 1]
    ([{**TWO[0], "fidelity": 0.9}, TWO[1]], "fidelity_levels.levels[-1].fidelity"),       # highest is not 1
    ([TWO[0], {**TWO[1], "name": "high"}], "fidelity_levels.levels"),                     # duplicate names
    ([TWO[0], {**TWO[1], "fidelity": 1.0}], "fidelity_levels.levels"),                    # duplicate fidelities
    ([TWO[0], {**TWO[1], "cost_s": 0.0}], "fidelity_levels.levels[1].cost_s"),            # free evaluation
    ([TWO[0], {**TWO[1], "n_cubes": 2.5}], "fidelity_levels.levels[1].n_cubes"),          # not an integer
    ([TWO[0], {**TWO[1], "cubes": 3}], "fidelity_levels.levels[1]"),                      # unknown key
    ([TWO[0], {"name": "low", "fidelity": 0.5}], "fidelity_levels.levels[1].cost_s"),     # missing cost
])
def test_bad_levels_name_the_option(levels, key):
    with pytest.raises(ConfigError) as e:
        parse_levels(levels)
    assert e.value.parameter == key


def test_cost_model_starts_from_the_priors_and_ignores_unknown_timings():
    m = LevelCostModel(parse_levels(TWO))
    assert np.allclose(m.seconds([0.5, 1.0]), [1.0, 10.0])
    same = m.refit([0.5, 1.0], [np.nan, -1.0])  # interrupted trials: no timing
    assert np.allclose(same.seconds_per_level, [1.0, 10.0])


def test_an_unobserved_level_follows_the_measured_speed_of_the_machine():
    """Low-level evaluations take 3x their prior: the high level, never run, is expected 3x dearer too."""
    m = LevelCostModel(parse_levels(TWO)).refit([0.5] * 4, [3.0] * 4)
    assert np.allclose(m.seconds_per_level, [3.0, 30.0])


def test_refit_blends_the_rescaled_prior_with_the_observed_mean_by_count():
    m = LevelCostModel(parse_levels(TWO), prior_count=1.0)
    fit = m.refit([0.5, 0.5, 0.5, 1.0], [2.0, 2.0, 2.0, 30.0])
    speed = (6.0 + 30.0) / (3 * 1.0 + 10.0)  # pooled observed / prior seconds
    assert np.allclose(fit.seconds_per_level, [(speed * 1.0 + 6.0) / 4, (speed * 10.0 + 30.0) / 2])
    # the observed mean wins as observations accumulate (the prior counts as one observation)
    many = m.refit([0.5] * 200 + [1.0] * 200, [2.0] * 200 + [30.0] * 200)
    assert np.allclose(many.seconds_per_level, [2.0, 30.0], rtol=0.02)
    # a heavier prior moves less
    heavy = LevelCostModel(parse_levels(TWO), prior_count=50.0).refit([0.5, 0.5, 0.5, 1.0], [2.0, 2.0, 2.0, 30.0])
    assert abs(heavy.seconds_per_level[0] - speed) < abs(fit.seconds_per_level[0] - speed)
    assert np.allclose(m.seconds_per_level, [1.0, 10.0])  # refit returns a new model


def test_refit_rejects_unknown_fidelities_and_mismatched_lengths():
    m = LevelCostModel(parse_levels(TWO))
    with pytest.raises(ConfigError):
        m.refit([0.7], [1.0])
    with pytest.raises(ConfigError):
        m.refit([0.5, 1.0], [1.0])
    with pytest.raises(ConfigError):
        LevelCostModel(parse_levels(TWO), prior_count=0.0)


def test_botorch_cost_model_is_exact_at_the_levels_and_linear_between():
    m = LevelCostModel(parse_levels(TWO)).refit([0.5, 1.0], [2.0, 20.0])
    cost = m.botorch_model(fidelity_column=2)
    X = torch.tensor([[[0.3, 0.1, 0.5]], [[0.9, 0.9, 1.0]], [[0.0, 0.0, 0.75]]], dtype=torch.float64)
    c = cost(X)
    assert c.shape == (3, 1, 1)
    lo, hi = m.seconds_per_level
    assert torch.allclose(c.reshape(-1), torch.tensor([lo, hi, 0.5 * (lo + hi)], dtype=torch.float64))


def test_overhead_adds_the_same_seconds_to_every_level():
    """The proposal before each evaluation costs the same whatever the level: the cost ratio narrows."""
    m = LevelCostModel(parse_levels(TWO)).refit([0.5, 1.0], [2.0, 20.0])
    o = m.with_overhead(1.5)
    assert np.allclose(o.seconds([0.5, 1.0]), m.seconds([0.5, 1.0]) + 1.5)
    assert np.allclose(m.with_overhead(0.0).seconds_per_level, m.seconds_per_level)
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ConfigError):
            m.with_overhead(bad)
