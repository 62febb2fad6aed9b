"""Campaign file: round trip of every field, single writer, and kill -9 during writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from microdesign.characterise.metrics import POROSITY, TORTUOSITY_THROUGH_PLANE, MetricEstimate, MicrostructureMetrics
from microdesign.objective import ObjectiveValue
from microdesign.storage import CampaignFileError, CampaignStore, TrialRecord

SPACE = {"names": ["a", "b"], "units": ["1", "mg.cm-2"], "lower": [0.0, 10.0], "upper": [1.0, 40.0], "fixed": {}}
OBJ = {"name": "Volumetric energy density", "unit": "W.h.L-1", "direction": "maximize"}


def _trial(i: int, status: str = "completed") -> TrialRecord:
    rng = np.random.default_rng(i)
    metrics = MicrostructureMetrics(
        estimates={POROSITY: MetricEstimate.from_values(POROSITY, rng.uniform(0.3, 0.4, 5)),
                   TORTUOSITY_THROUGH_PLANE: MetricEstimate.from_values(TORTUOSITY_THROUGH_PLANE, rng.uniform(2, 3, 5))},
        voxel_size_m=4e-7, cube_size_voxels=16, n_cubes=5, stop_reason="cap_reached")
    return TrialRecord(index=i, batch=i // 2, status=status, method="sobol", inputs={"a": i / 10, "b": 20.0 + i},
                       seed=1000 + i, metrics=metrics,
                       objective=ObjectiveValue("ok", 600.0 + i, 600.0 + i, 4.0, None, {POROSITY: -120.0},
                                                {TORTUOSITY_THROUGH_PLANE: "re-simulation raised RuntimeError: x"}),
                       timings={"generator": 0.1, "characterise": 0.2}, volume=rng.integers(0, 3, (16, 16, 16), dtype=np.uint8),
                       voxel_size_m=4e-7, created_unix=1.0, started_unix=2.0, finished_unix=3.0)


def test_round_trip(tmp_path):
    from microdesign.cell.result import CellResult

    path = tmp_path / "c.h5"
    with CampaignStore(path, writer=True) as s:
        s.create("a: 1\n", "0.1.0", 7, SPACE, OBJ)
        t = _trial(3).with_(cell=CellResult(status="ok", energy_Wh=80.0, volumetric_energy_density_Wh_L=601.5,
                                            extra={"N/P ratio": 1.1}))
        s.write_trials([t, _trial(4, "failed").with_(reason="pore network does not percolate", cell=None,
                                                     method="sobol-fallback", note="GPFitError: no fit")])
        with pytest.raises(FileExistsError):
            s.create("", "", 0, SPACE, OBJ)
    head, trials = CampaignStore(path).load()
    assert head["config_yaml"] == "a: 1\n" and head["seed"] == 7 and head["space"]["names"] == ["a", "b"]
    a, b = trials
    assert a.inputs == t.inputs and a.seed == 1003 and a.status == "completed"
    assert np.array_equal(a.volume, t.volume) and a.voxel_size_m == 4e-7
    assert a.metrics[POROSITY].mean == t.metrics[POROSITY].mean
    assert np.array_equal(a.metrics[TORTUOSITY_THROUGH_PLANE].values, t.metrics[TORTUOSITY_THROUGH_PLANE].values)
    assert a.cell.volumetric_energy_density_Wh_L == 601.5 and a.cell.extra == {"N/P ratio": 1.1}
    assert a.objective.variance == 4.0 and a.objective.sensitivities == {POROSITY: -120.0}
    assert a.objective.noise_left_out == {TORTUOSITY_THROUGH_PLANE: "re-simulation raised RuntimeError: x"}
    assert b.status == "failed" and b.reason == "pore network does not percolate" and b.cell is None
    assert a.note is None and b.method == "sobol-fallback" and b.note == "GPFitError: no fit"


def test_single_writer(tmp_path):
    path = tmp_path / "c.h5"
    s = CampaignStore(path, writer=True)
    s.create("", "0", 0, SPACE, OBJ)
    with pytest.raises(CampaignFileError, match="another process"):
        CampaignStore(path, writer=True)
    s.close()
    CampaignStore(path, writer=True).close()  # released


def test_a_symlink_to_a_campaign_file_shares_its_lock_and_stays_a_link(tmp_path):
    real = tmp_path / "runs" / "c.h5"
    link = tmp_path / "link.h5"
    s = CampaignStore(real, writer=True)
    s.create("", "0", 0, SPACE, OBJ)
    link.symlink_to(real)
    with pytest.raises(CampaignFileError, match="another process"):
        CampaignStore(link, writer=True)  # a second writer through the link
    s.close()
    with CampaignStore(link, writer=True) as w:  # the lock is free: write through the link
        w.write_trials([_trial(0)])
    assert link.is_symlink() and not (tmp_path / "link.h5.tmp").exists()
    assert [t.index for t in CampaignStore(real).load(volumes=False)[1]] == [0]


def test_changed_bytes_are_refused_before_h5py_reads_them(tmp_path):
    from microdesign.errors import ConfigError
    from microdesign.storage import load_campaign_file

    path = tmp_path / "c.h5"
    with CampaignStore(path, writer=True) as s:
        s.create("", "0", 0, SPACE, OBJ)
        s.write_trials([_trial(0), _trial(1)])
    assert len(load_campaign_file(path, "resume")[1]) == 2
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(CampaignFileError, match="corrupt"):
        CampaignStore(path).load()
    with pytest.raises(ConfigError, match="resume"):
        load_campaign_file(path, "resume")
    path.write_bytes(bytes(data[: len(data) // 2]))  # cut short
    with pytest.raises(ConfigError, match="corrupt"):
        load_campaign_file(path, "file")


WRITER = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_campaign_file import _trial, SPACE, OBJ
    from microdesign.storage import CampaignStore
    path = sys.argv[1]
    s = CampaignStore(path, writer=True)
    import os
    if not os.path.exists(path):
        s.create("x: 1\\n", "0", 0, SPACE, OBJ)
    n = len(s.load(volumes=False)[1])
    print("ready", flush=True)
    while True:
        big = _trial(n).with_(volume=np.random.default_rng(n).integers(0, 3, (64, 64, 64), dtype=np.uint8))
        s.write_trials([big])
        n += 1
""")


def test_kill_9_during_writes_leaves_a_readable_file(tmp_path):
    """SIGKILL a process that writes trials back to back, at random moments: the file always opens,
    holds a prefix of the trials (none lost once written, none half-written), and can be written again."""
    path = tmp_path / "c.h5"
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=os.path.dirname(__file__)))
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(5):
        p = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.2, 0.8)))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        _, trials = CampaignStore(path).load()
        assert [t.index for t in trials] == list(range(len(trials)))
        assert len(trials) >= seen
        for t in trials[seen:]:
            assert np.array_equal(t.volume, np.random.default_rng(t.index).integers(0, 3, (64, 64, 64), dtype=np.uint8))
        seen = len(trials)
    assert seen >= 5


def test_results_are_plain_trees_read_back_as_their_registered_types(tmp_path):
    """Storage writes each result's own to_attrs tree and reads it back through the registered type's
    from_attrs; a cell field unknown to this version (a newer file) is kept in CellResult.extra, never a dict."""
    import h5py

    from microdesign.cell.result import CellResult
    from microdesign.storage import campaign_file

    assert not any(m in campaign_file.__dict__ for m in ("CellResult", "ObjectiveValue", "MicrostructureMetrics"))
    path = tmp_path / "c.h5"
    cell = CellResult(status="ok", energy_Wh=80.0, extra={"N/P ratio": 1.1})
    with CampaignStore(path, writer=True) as s:
        s.create("a: 1\n", "0.1.0", 7, SPACE, OBJ)
        s.write_trials([_trial(3).with_(cell=cell)])
    with h5py.File(path, "r+") as f:  # as a newer version would write it
        g = f["trials/000003"]
        assert dict(g["cell"].attrs)["energy_Wh"] == 80.0 and g["cell/extra"].attrs["N/P ratio"] == 1.1
        assert g["metrics"][POROSITY].attrs["name"] == POROSITY and g["metrics"][POROSITY].shape == (5,)
        g["cell"].attrs["anode_overhang_m"] = 2e-3
        g["cell"].attrs["chemistry_note"] = "a newer text field"
    campaign_file._seal(path)  # its checksum, as the writer would
    _, (t,) = CampaignStore(path).load(volumes=False)
    assert type(t.cell) is CellResult and t.cell.energy_Wh == 80.0
    assert t.cell.extra == {"N/P ratio": 1.1, "anode_overhang_m": 2e-3}
