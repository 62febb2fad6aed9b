"""Transport solver objects: their settings are validated, and the characteriser uses whatever solver it is given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microdesign.characterise import Characteriser, MgcgSolver, TauFactorSolver
from microdesign.characterise import metrics as M
from microdesign.characterise.testing import random_three_phase, straight_channels
from microdesign.characterise.transport import TransportResult
from microdesign.errors import ConfigError
from microdesign.phases import PORE

DX = 0.4e-6


@pytest.mark.parametrize("make, kw, name", [
    (MgcgSolver, {"rtol": 0.0}, "rtol"),
    (MgcgSolver, {"conv_crit": 1.5}, "conv_crit"),
    (MgcgSolver, {"criterion": "residual"}, "criterion"),
    (MgcgSolver, {"precision": "float16"}, "precision"),
    (MgcgSolver, {"conductivity_precision": "half"}, "conductivity_precision"),
    (MgcgSolver, {"iter_limit": 0}, "iter_limit"),
    (MgcgSolver, {"threads": 0}, "threads"),
    (MgcgSolver, {"device": "tpu"}, "device"),
    (TauFactorSolver, {"iter_limit": 50}, "iter_limit"),
    (TauFactorSolver, {"conv_crit": 0.0}, "conv_crit"),
])
def test_bad_solver_settings_raise_config_error_naming_the_setting(make, kw, name):
    with pytest.raises(ConfigError, match=name):
        make(**kw)


class _FixedSolver:
    """A stand-in solver: every cube percolates with the given tortuosity factor and conductivity."""

    name, device, takes_device_arrays = "fixed", "cpu", False

    def __init__(self, tau: float, sigma: float, converged: bool = True):
        self.tau, self.sigma, self.converged, self.calls = tau, sigma, converged, []

    def _result(self, n: int, tau: float, d: float) -> TransportResult:
        return TransportResult(np.full(n, tau), np.full(n, d), np.ones(n, bool), np.full(n, self.converged),
                               np.ones(n, np.int64))

    def tortuosity(self, masks):
        self.calls.append(("tortuosity", masks.shape))
        return self._result(masks.shape[0], self.tau, 0.5)

    def conductivity(self, labels, conductivity):
        self.calls.append(("conductivity", dict(conductivity)))
        return self._result(labels.shape[0], 2.0, self.sigma)

    def settings(self):
        return {"solver": self.name}


def test_the_characteriser_takes_its_transport_values_from_the_solver_object():
    cubes = np.stack([random_three_phase(12, seed=s) for s in range(2)])
    solver = _FixedSolver(tau=3.25, sigma=0.125)
    m = Characteriser(solver, in_plane=True, bulk_conductivity_S_m={"active_material": 1.0, "cbd": 10.0}).characterise(
        cubes, DX)
    assert m.ok, m.reason
    assert m[M.TORTUOSITY_THROUGH_PLANE].mean == 3.25 and m[M.TORTUOSITY_IN_PLANE].mean == 3.25
    assert m[M.CONDUCTIVITY_SOLID].mean == 0.125
    # three tortuosity solves (through-plane, two in-plane axes) and one conductivity solve with the labels' values
    assert [c[0] for c in solver.calls] == ["tortuosity"] * 3 + ["conductivity"]
    assert solver.calls[-1][1] == {1: 1.0, 2: 10.0}
    failed = Characteriser(_FixedSolver(1.0, 1.0, converged=False)).characterise(cubes, DX)
    assert failed.status == "failed" and "transport solve (fixed) did not converge" in failed.reason


def test_solver_threads_apply_during_the_solve_only():
    before = torch.get_num_threads()
    seen = []

    import microdesign.characterise.transport as T

    original = T.mgcg_tortuosity

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return original(*a, **k)

    T.mgcg_tortuosity = spy
    try:
        MgcgSolver(threads=before + 1).tortuosity((straight_channels(L=8) == 0)[None])
    finally:
        T.mgcg_tortuosity = original
    assert seen == [before + 1] and torch.get_num_threads() == before


def test_the_solvers_agree_on_a_three_phase_cube():
    cubes = random_three_phase(16, porosity=0.45, cbd_fraction=0.12, correlation_voxels=1.5, seed=3)[None]
    cond = {1: 1.0, 2: 10.0}
    mg, tf = MgcgSolver(threads=1, rtol=1e-6), TauFactorSolver(threads=1, conv_crit=1e-3)
    assert mg.tortuosity(cubes == 0).tau[0] == pytest.approx(tf.tortuosity(cubes == 0).tau[0], rel=5e-3)
    assert mg.conductivity(cubes, cond).d_eff[0] == pytest.approx(tf.conductivity(cubes, cond).d_eff[0], rel=5e-3)
    assert mg.settings()["solver"] == "mgcg" and tf.settings() == {"solver": "taufactor", "conv_crit": 1e-3,
                                                                  "iter_limit": 20000}


@pytest.mark.parametrize("make", [MgcgSolver, TauFactorSolver])
def test_the_solvers_report_whether_the_phase_spans_apart_from_the_solve(make):
    open_cube = random_three_phase(16, porosity=0.4, cbd_fraction=0.1, seed=1)
    cut = open_cube.copy()
    cut[8] = PORE  # a pore layer: the solid cannot cross axis 0
    r = make(threads=1).conductivity(np.stack([open_cube, cut]), {1: 0.18, 2: 760.0})
    np.testing.assert_array_equal(r.spans, [True, False])
    np.testing.assert_array_equal(r.percolating, [True, False])
    assert r.d_eff[0] > 0 and r.d_eff[1] == 0.0
