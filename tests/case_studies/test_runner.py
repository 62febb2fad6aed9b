"""Case studies end to end at a tiny budget (stub generator and characterisation, real PyBaMM cells),
the crossover power, and resume without repetition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microdesign.case_studies.report import crossover_power
from microdesign.case_studies.runner import load_study, run_case_study
from microdesign.config import compose


class _Design:
    def __init__(self, name):
        self.name = name
        self.inputs = {"mass_loading_mg_cm2": 20.0}
        self.metrics = name


class _LinearRagone:
    """Energy cell 700 - 2P, power cell 600 - 0.5P [W.h.L-1]: they cross at P = 200/3 W."""

    def cathode_thickness_from_mass_loading(self, metrics, ml):
        return 1e-4

    def ragone(self, metrics, thickness, powers):
        from microdesign.cell.result import CellResult

        a, b = (700.0, 2.0) if metrics == "energy" else (600.0, 0.5)
        return [CellResult(status="ok", volumetric_energy_density_Wh_L=a - b * p, power_W=p) for p in powers]


def test_crossover_power_bisects_to_the_analytic_crossing():
    from microdesign.case_studies.report import ragone

    model, e, p = _LinearRagone(), _Design("energy"), _Design("power")
    powers = np.geomspace(2, 400, 9)
    ve, vp = ragone(model, e, powers), ragone(model, p, powers)
    cross = crossover_power(model, e, p, powers, ve, vp, refine=20)
    assert cross == pytest.approx(200 / 3, rel=1e-4)
    # no crossing inside the sweep -> None
    assert crossover_power(model, e, p, powers[:3], ve[:3], vp[:3]) is None


@pytest.mark.slow
def test_every_study_runs_reports_and_resumes(tmp_path):
    base = [f"output_dir={tmp_path / 'runs'}", f"report_dir={tmp_path / 'docs'}", "profile=stub",
            "budget.evaluations=2", "studies.cs3.ragone.n=4"]
    cfg = compose("case_study", base + ["name=all"])
    assert run_case_study(cfg) == 0
    docs = tmp_path / "docs"
    for study, pngs in {"cs1": ["designs", "convergence"], "cs2": ["designs", "convergence"],
                        "cs3": ["convergence", "ragone"], "pareto": ["front", "hypervolume"],
                        "robust": ["convergence", "histogram", "sobol"]}.items():
        md = (docs / f"{study}-stub.md").read_text()
        assert "## Budget" in md and "Profile `stub`" in md
        for p in pngs:
            assert (docs / f"{study}-stub_{p}.png").stat().st_size > 5000
        runs = load_study(cfg, study)
        assert runs and all(len([t for t in r.trials if t.finished]) == 2 for r in runs.values())
    cs3 = (docs / "cs3-stub.md").read_text()
    assert "~730" in cs3 and "crossover power [W]" in cs3
    # the energy cell out-stores the power cell at 10 W (its own target), in the Ragone table too
    runs = load_study(cfg, "cs3")
    best = {k: max(t.objective.raw_value for t in r.trials if t.status == "completed") for k, r in runs.items()}
    assert all(math.isfinite(v) and v > 0 for v in best.values())
    # the multi-objective campaign: one more evaluation is proposed by qLogNEHVI; resuming repeats nothing
    cfg3 = compose("case_study", base[:-2] + ["budget.evaluations=3", "name=pareto"])
    before = load_study(cfg3, "pareto")["pareto"].trials
    assert run_case_study(cfg3) == 0
    after = load_study(cfg3, "pareto")["pareto"].trials
    assert [t.inputs for t in after[:2]] == [t.inputs for t in before[:2]]
    assert len(after) == 3 and after[2].method == "qLogNEHVI" and after[2].status == "completed"
    assert "Pareto-optimal designs" in (docs / "pareto-stub.md").read_text()
