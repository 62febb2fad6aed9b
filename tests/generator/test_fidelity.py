"""Fidelity metrics: the optional solid conductivity against analytical cubes and the campaign's characteriser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microdesign.characterise.metrics import CONDUCTIVITY_SOLID, TORTUOSITY_THROUGH_PLANE
from microdesign.errors import ConfigError
from microdesign.generator import fidelity
from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE

L, DX = 16, 3.98e-7
SIGMA_AM, SIGMA_CBD = 0.18, 760.0  # conf/characterise/_base.yaml


@pytest.fixture(scope="module")
def characteriser():
    from hydra.utils import instantiate

    from microdesign.config import compose

    return instantiate(compose("fidelity", ["generator=tiny"]).characteriser)


def _slabs(cbd_width: int = 2, am_width: int = 6) -> np.ndarray:
    """Through-plane slabs (normal to axis 1): CBD, then AM, then pore. Solid and pore both span axis 0;
    the phases conduct in parallel: sigma_eff = f_AM sigma_AM + f_CBD sigma_CBD, tortuosity factor 1."""
    cube = np.full((L, L, L), PORE, dtype=np.uint8)
    cube[:, :cbd_width, :] = CBD
    cube[:, cbd_width:cbd_width + am_width, :] = ACTIVE_MATERIAL
    return cube


def test_solid_conductivity_is_off_by_default_and_on_when_asked(characteriser):
    cubes = _slabs()[None]
    values, failed = fidelity.measure_cubes(characteriser, cubes, DX)
    assert failed == 0 and CONDUCTIVITY_SOLID not in values and set(values) == set(fidelity.TARGETS)
    report = fidelity.compare_point(characteriser, cubes, cubes, DX, {"p": 1.0})
    assert [c.metric for c in report.comparisons] == list(fidelity.TARGETS)
    report = fidelity.compare_point(characteriser, cubes, cubes, DX, {"p": 1.0}, solid_conductivity=True)
    assert [c.metric for c in report.comparisons] == [*fidelity.TARGETS, CONDUCTIVITY_SOLID]
    c = report.comparisons[-1]
    assert (c.kind, c.tolerance) == ("rel", 0.10)
    md = fidelity.report_markdown([report])
    assert CONDUCTIVITY_SOLID in md and "6 of 6 comparisons within target" in md


def test_parallel_slabs_conduct_by_their_volume_fractions(characteriser):
    """CBD slab 2/16 and AM slab 6/16 of the cube, pore elsewhere: 0.125 x 760 + 0.375 x 0.18 S/m."""
    cube = _slabs(cbd_width=2, am_width=6)
    values, failed = fidelity.measure_cubes(characteriser, cube[None], DX, solid_conductivity=True)
    assert failed == 0
    expect = (2 / L) * SIGMA_CBD + (6 / L) * SIGMA_AM
    np.testing.assert_allclose(values[CONDUCTIVITY_SOLID], expect, rtol=2e-3)
    np.testing.assert_allclose(values[TORTUOSITY_THROUGH_PLANE], 1.0, rtol=1e-3)
    # the campaign's characterisation of the same cube: the same solve, the same value
    campaign, reason = characteriser.measure(cube[None], DX)
    assert reason is None
    np.testing.assert_allclose(values[CONDUCTIVITY_SOLID], campaign[CONDUCTIVITY_SOLID], rtol=1e-12)


def test_identical_cubes_differ_by_zero_and_different_ones_by_their_ratio(characteriser):
    a, b = _slabs(cbd_width=2), _slabs(cbd_width=1)
    report = fidelity.compare_point(characteriser, np.stack([a, a]), np.stack([a, a]), DX, {}, solid_conductivity=True)
    assert all(c.passed and c.difference == 0 for c in report.comparisons)
    report = fidelity.compare_point(characteriser, a[None], b[None], DX, {}, solid_conductivity=True)
    c = report.comparisons[-1]
    # generated: CBD 2/16, AM 6/16; reference: CBD 1/16, AM 6/16
    ratio = (2 * SIGMA_CBD + 6 * SIGMA_AM) / (SIGMA_CBD + 6 * SIGMA_AM)
    assert c.metric == CONDUCTIVITY_SOLID and c.difference == pytest.approx(ratio - 1, rel=5e-3) and not c.passed


def test_a_solid_that_does_not_span_conducts_nothing_and_a_blocked_pore_is_a_counted_failure(characteriser):
    """As the campaign's characteriser counts them: a cube whose solid does not span axis 0 has 0 S/m
    through-plane (no failure; the same value Characteriser.measure gives it), a cube whose pore does not
    span has no tortuosity factor (a counted failure, left out of the comparison)."""
    cut = _slabs()
    cut[L // 2] = PORE  # a pore layer across the solid: the pore still spans axis 0, the solid does not
    values, failed = fidelity.measure_cubes(characteriser, cut[None], DX, solid_conductivity=True)
    assert failed == 0 and values[CONDUCTIVITY_SOLID][0] == 0.0
    assert np.isfinite(values[TORTUOSITY_THROUGH_PLANE][0])
    campaign, _ = characteriser.measure(np.stack([cut, _slabs()]), DX)
    assert campaign[CONDUCTIVITY_SOLID][0] == 0.0
    report = fidelity.compare_point(characteriser, cut[None], _slabs()[None], DX, {}, solid_conductivity=True)
    assert report.failures == {"generated": 0, "reference": 0}
    assert report.comparisons[-1].difference == pytest.approx(-1.0) and not report.comparisons[-1].passed

    blocked = _slabs()
    blocked[L // 2] = ACTIVE_MATERIAL  # a solid layer across the pore: the pore does not span
    values, failed = fidelity.measure_cubes(characteriser, blocked[None], DX, solid_conductivity=True)
    assert failed == 1 and np.isnan(values[TORTUOSITY_THROUGH_PLANE][0]) and values[CONDUCTIVITY_SOLID][0] > 0
    report = fidelity.compare_point(characteriser, blocked[None], _slabs()[None], DX, {})
    assert report.failures == {"generated": 1, "reference": 0}
    tau = next(c for c in report.comparisons if c.metric == TORTUOSITY_THROUGH_PLANE)
    assert tau.generated.size == 0 and np.isnan(tau.difference) and not tau.passed
    assert "| failed solves | 1 | 0 |" in fidelity.report_markdown([report])


@pytest.mark.parametrize("bad", ["true", 1, None, 0.0])
def test_solid_conductivity_must_be_a_bool(characteriser, bad):
    with pytest.raises(ConfigError, match="solid_conductivity"):
        fidelity.targets(bad)
    with pytest.raises(ConfigError, match="solid_conductivity"):
        fidelity.measure_cubes(characteriser, _slabs()[None], DX, solid_conductivity=bad)


def test_fidelity_command_reports_the_solid_conductivity(tmp_path):
    """Untrained tiny generator vs the configured line on 16^3 cubes: the JSON and markdown carry the metric;
    a non-bool option or a micrograph reference with it is refused (exit code 2) before any work."""
    from microdesign.cli import main
    from microdesign.config import compose

    assert compose("fidelity").solid_conductivity is False  # off by default: the documented tables reproduce
    base = ["fidelity", "generator=tiny", "reference.dataset_candidates=[]", "n_points=1", "n_seeds=1",
            "size_voxels=16", f"output_dir={tmp_path}"]
    assert main([*base, "solid_conductivity=maybe"]) == 2
    assert main([*base, "solid_conductivity=true", "reference.kind=micrograph"]) == 2
    assert not list(tmp_path.iterdir())
    assert main([*base, "solid_conductivity=true"]) == 0
    (json_path,), (md_path,) = tmp_path.glob("*.json"), tmp_path.glob("*.md")
    report = json.loads(json_path.read_text())
    assert report["solid_conductivity"] is True
    point = report["points"][0]
    assert list(point["metrics"]) == [*fidelity.TARGETS, CONDUCTIVITY_SOLID]
    m = point["metrics"][CONDUCTIVITY_SOLID]
    assert (m["kind"], m["tolerance"]) == ("rel", 0.10)
    assert all(v > 0 for v in m["generated"] + m["reference"])  # failed solves are counted, not listed
    assert set(point["failures"]) == {"generated", "reference"}
    assert CONDUCTIVITY_SOLID in md_path.read_text()


def test_the_standard_error_of_a_difference_is_welchs_and_shown_in_the_report():
    g, r = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 4.0, 4.0])
    expected = np.sqrt((5 / 3) / 4 + (4 / 3) / 4)   # sample variances 5/3 and 4/3 over 4 seeds each: 0.866
    absolute = fidelity.MetricComparison("m", g, r, "abs", 0.02)
    relative = fidelity.MetricComparison("m", g, r, "rel", 0.1)
    assert absolute.standard_error == pytest.approx(expected)
    assert relative.standard_error == pytest.approx(expected / 3.0)          # relative to the reference mean 3
    assert relative.difference == pytest.approx(-0.5 / 3.0)
    # one value on a side: no spread to estimate, NaN, and the report leaves it out
    single = fidelity.MetricComparison("m", g[:1], r, "rel", 0.1)
    assert np.isnan(single.standard_error)
    md = fidelity.report_markdown([fidelity.PointReport({"porosity": 0.3}, [relative, single])])
    assert "| -16.7% ± 28.9% | ±10% | no |" in md and "| -66.7% | ±10% | no |" in md
