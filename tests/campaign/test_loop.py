"""The closed loop end to end on the analytic stand-in: records, failures, determinism, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microdesign.campaign.build import open_campaign, run_campaign, validate
from microdesign.config import compose
from microdesign.errors import ConfigError
from microdesign.storage import CampaignStore

BASE = ["experiment=analytic", "campaign.progress=false"]
FAST = BASE + ["optimiser.num_restarts=2", "optimiser.raw_samples=32", "optimiser.mc_samples=32", "optimiser.maxiter=30"]


def _run(tmp_path, *overrides, name="c.h5"):
    base = BASE if "optimiser=sobol" in overrides else FAST
    cfg = compose("campaign", base + [f"output={tmp_path / name}", *overrides])
    assert run_campaign(cfg) == 0
    return CampaignStore(tmp_path / name).load()


def test_tiny_campaign_records_every_trial(tmp_path):
    head, trials = _run(tmp_path, "campaign.budget.max_evaluations=7", "optimiser.n_initial=4", "optimiser.q=2")
    assert [t.status for t in trials] == ["completed"] * 7
    assert [t.method for t in trials] == ["sobol"] * 4 + ["qLogNEI"] * 3
    assert head["stop_reason"].startswith("evaluation budget")
    assert "optimiser" in head["config_yaml"] and head["package_version"]
    lo, hi = head["space"]["lower"], head["space"]["upper"]
    for t in trials:
        x = np.array([t.inputs[n] for n in head["space"]["names"]])
        assert np.all(x >= lo) and np.all(x <= hi)
        assert t.volume.shape == (16, 16, 16) and t.voxel_size_m == 4e-7
        assert t.metrics.n_cubes == 6 and t.objective.variance > 0
        assert set(t.timings) >= {"propose", "generator", "characterise", "cell", "objective"}
        # the recorded objective is the cell's volumetric energy density
        assert t.objective.raw_value == t.cell.volumetric_energy_density_Wh_L
    assert len({t.seed for t in trials}) == 7
    # the model-based trials improve on the Sobol ones on this smooth objective
    assert max(t.objective.value for t in trials[4:]) > np.median([t.objective.value for t in trials[:4]])


def test_same_seed_same_campaign(tmp_path):
    over = ("campaign.budget.max_evaluations=4", "optimiser.n_initial=3")
    _, a = _run(tmp_path, *over, name="a.h5")
    _, b = _run(tmp_path, *over, name="b.h5")
    _, c = _run(tmp_path, *over, "seed=1", name="c.h5")
    assert [t.inputs for t in a] == [t.inputs for t in b]
    assert [t.objective.value for t in a] == [t.objective.value for t in b]
    assert [t.inputs for t in a] != [t.inputs for t in c]


def test_failed_trials_are_kept_and_excluded_or_penalised(tmp_path):
    """Characterisation failures (porosity < 0.3) and a stage that raises (thick coatings) become
    failed trials with reasons; the campaign goes on and proposes with either failure policy."""
    for policy in ("exclude", "penalise"):
        _, trials = _run(tmp_path, "campaign.budget.max_evaluations=8", "optimiser.n_initial=5",
                         "characterise.fail_below_porosity=0.3", "cell.raise_above_thickness_m=1.1e-4",
                         f"objective.on_failure={policy}", name=f"{policy}.h5")
        assert len(trials) == 8 and all(t.finished for t in trials)
        failed = [t for t in trials if t.status == "failed"]
        reasons = " ".join(t.reason for t in failed)
        assert "characterise: pore network does not percolate" in reasons
        assert "cell: RuntimeError: stub cell raised" in reasons
        for t in failed:
            assert t.objective is None and t.volume is not None  # the structure is kept for inspection
        assert any(t.method == "qLogNEI" for t in trials)


def test_validation_errors_before_any_work(tmp_path):
    def check(overrides, match):
        cfg = compose("campaign", FAST + [f"output={tmp_path / 'x.h5'}", *overrides])
        with pytest.raises(ConfigError, match=match):
            validate(cfg)
        assert not (tmp_path / "x.h5").exists()

    check(["design_space.parameters.porosity.lower=0.6"], "porosity")  # inverted bounds
    check(["+design_space.parameters.porosity.colour=1"], "colour")  # unknown field
    check(["optimiser.q=0"], "optimiser.q")
    check(["+design_space.parameters.n_p_ratio={unit: '1', lower: 1.0, upper: 1.2, role: cell}"], "n_p_ratio")
    check(["campaign.budget.max_evaluations=0"], "max_evaluations")
    check(["objective.quantity=happiness"], "objective.quantity")
    check(["+optimiser.linear_constraints=[{coefficients: {zzz: 1.0}, rhs: 0.0}]"], "linear_constraints")


def test_generator_checks(tmp_path):
    """Missing checkpoint, a parameter the generator does not know, and bounds outside its training range."""
    base = ["campaign.progress=false", f"output={tmp_path / 'x.h5'}", "characterise=fast"]
    with pytest.raises(ConfigError, match="checkpoint"):
        validate(compose("campaign", base + ["generator.checkpoint=/nonexistent/model"]))
    with pytest.raises(ConfigError, match="training bounds"):
        validate(compose("campaign", base + ["generator=tiny", "design_space.parameters.porosity.upper=0.6"]))
    with pytest.raises(ConfigError, match="conditions on"):
        validate(compose("campaign", base + ["generator=tiny", "+design_space.parameters.particle_size_um="
                                             "{unit: um, lower: 1, upper: 10, role: microstructure}"]))


def test_convergence_and_wall_time_budgets(tmp_path):
    cfg = compose("campaign", FAST + [f"output={tmp_path / 'w.h5'}", "campaign.budget.max_evaluations=50",
                                      "campaign.budget.max_wall_time_s=0.001"])
    setup = validate(cfg)
    c = open_campaign(setup)
    assert c.run().startswith("wall-time") and c.n_finished <= 1
    c.store.close()
    _, trials = _run(tmp_path, "campaign.budget.max_evaluations=60", "optimiser=sobol",
                     "campaign.budget.convergence_patience=3", "campaign.budget.convergence_rel_tol=0.5", name="v.h5")
    assert len(trials) < 60
    head = CampaignStore(tmp_path / "v.h5").read_header()
    assert head["stop_reason"].startswith("converged")


def test_noise_is_the_propagated_ci(tmp_path):
    """The trial's noise variance equals g^T C g recomputed from its recorded metrics and sensitivities."""
    _, trials = _run(tmp_path, "campaign.budget.max_evaluations=2")
    t = trials[0]
    keys = list(t.objective.sensitivities)
    g = np.array([t.objective.sensitivities[k] for k in keys])
    C = np.cov(np.stack([t.metrics[k].values for k in keys]), ddof=1) / t.metrics.n_cubes
    assert math.isclose(t.objective.variance, float(g @ C @ g), rel_tol=1e-9)
    assert math.isclose(math.sqrt(t.objective.variance) / t.objective.raw_value, 0.003, rel_tol=0.9)


@pytest.mark.parametrize("own_thickness", [False, True])
def test_noise_resimulations_use_the_thickness_of_the_perturbed_metrics(own_thickness):
    """At a fixed mass loading, a perturbed AM fraction changes the press density, hence the thickness
    (h = ML/(PD 100)); every re-simulation must get that thickness, with the cell's own method or without it."""
    from microdesign.campaign.evaluate import TrialEvaluator
    from microdesign.campaign.stubs import StubCell, StubCharacteriser, StubGenerator
    from microdesign.characterise.metrics import AM_VOLUME_FRACTION, CBD_VOLUME_FRACTION
    from microdesign.objective import CellQuantity
    from microdesign.process.linked import thickness_m

    from microdesign.process.formulation import default_cbd_density_g_cm3

    rho_am, rho_cbd = (5.0, 2.0) if own_thickness else (4.75, default_cbd_density_g_cm3())

    class Recording(StubCell):
        def simulate(self, metrics, cathode_thickness_m, protocol=None):
            self.calls.append((metrics[AM_VOLUME_FRACTION].mean, metrics[CBD_VOLUME_FRACTION].mean, cathode_thickness_m))
            return super().simulate(metrics, cathode_thickness_m, protocol)

    if own_thickness:
        def own(self, metrics, ml):
            return thickness_m(ml, metrics[AM_VOLUME_FRACTION].mean * rho_am + metrics[CBD_VOLUME_FRACTION].mean * rho_cbd)

        Recording.cathode_thickness_from_mass_loading = own
    cell = Recording()
    cell.calls = []
    ev = TrialEvaluator(StubGenerator(), StubCharacteriser(), cell, CellQuantity(metrics=[AM_VOLUME_FRACTION]),
                        ["am_weight_fraction", "porosity", "cbd_adhesion"], cube_size_voxels=16, n_cubes=4,
                        adaptive=False)
    inputs = {"am_weight_fraction": 0.94, "porosity": 0.35, "cbd_adhesion": 0.5, "mass_loading_mg_cm2": 25.0}
    e = ev.evaluate(inputs, seed=1)
    assert e.status == "completed" and len(cell.calls) == 2  # the design, then one step of AM fraction
    (x0, c0, h0), (x1, c1, h1) = cell.calls
    assert x1 != x0 and c1 == c0
    for x, c, h in cell.calls:
        assert h == pytest.approx(thickness_m(25.0, x * rho_am + c * rho_cbd), rel=1e-12)
    assert h1 != pytest.approx(h0, rel=1e-6)  # the thickness route is in the noise, not only the direct one


def test_final_validation_reevaluates_the_best_designs_with_fresh_cubes(tmp_path):
    over = ("campaign.budget.max_evaluations=5", "optimiser.n_initial=5", "campaign.validation.top_k=2",
            "campaign.validation.n_cubes=9")
    head, trials = _run(tmp_path, *over)
    vals = CampaignStore(tmp_path / "c.h5").load_validations()
    assert len(trials) == 5  # re-evaluations are not trials: the GP and the budget never see them
    top = sorted(trials, key=lambda t: -t.objective.value)[:2]
    assert [v.index for v in vals] == sorted(t.index for t in top)
    by_index = {t.index: t for t in trials}
    for v in vals:
        t = by_index[v.index]
        assert v.method == "validation" and v.status == "completed" and v.inputs == t.inputs
        assert v.seed != t.seed and v.metrics.n_cubes == 9 and t.metrics.n_cubes == 6
        # fresh cubes of the same design: a different estimate, within the combined noise
        diff = abs(v.objective.raw_value - t.objective.raw_value)
        assert 0 < diff < 5 * math.sqrt(v.objective.variance + t.objective.variance)
    # resuming a finished campaign validates nothing twice
    cfg = compose("campaign", FAST + [f"resume={tmp_path / 'c.h5'}", "campaign.budget.max_evaluations=5"])
    assert run_campaign(cfg) == 0
    assert [v.index for v in CampaignStore(tmp_path / "c.h5").load_validations()] == [v.index for v in vals]
    # off
    _run(tmp_path, "campaign.budget.max_evaluations=3", "campaign.validation.top_k=0", name="off.h5")
    assert CampaignStore(tmp_path / "off.h5").load_validations() == []
    for bad in ("campaign.validation.top_k=-1", "campaign.validation.n_cubes=1"):
        with pytest.raises(ConfigError, match="campaign.validation"):
            validate(compose("campaign", BASE + [f"output={tmp_path / 'x.h5'}", bad]))


def _unseal(path) -> None:
    """Blank the checksum block of a campaign file edited with h5py (as files of older versions
    carry none; a sealed file whose content changed is refused as corrupt)."""
    with open(path, "r+b") as fh:
        fh.write(bytes(512))


def test_validation_waits_for_a_resume_after_the_wall_time_and_old_files_get_it(tmp_path, monkeypatch):
    import h5py
    import yaml

    from microdesign.campaign import loop

    with monkeypatch.context() as mp:  # the wall time runs out exactly when the last evaluation finishes
        mp.setattr(loop.Campaign, "_wall_time_spent", lambda self: self.n_finished >= 3)
        _run(tmp_path, "campaign.budget.max_evaluations=3", "campaign.validation.top_k=2")
    path = tmp_path / "c.h5"
    assert CampaignStore(path).load_validations() == []
    # a file written before validation existed has no campaign.validation: a resume uses this run's (default) value
    with h5py.File(path, "r+") as f:
        stored = yaml.safe_load(f.attrs["config_yaml"])
        del stored["campaign"]["validation"]
        f.attrs["config_yaml"] = yaml.safe_dump(stored)
    _unseal(path)
    setup = validate(compose("campaign", FAST + [f"resume={path}", "campaign.validation.n_cubes=4"]))
    campaign = open_campaign(setup)
    try:
        campaign.run()
    finally:
        campaign.store.close()
    vals = CampaignStore(path).load_validations()
    assert len(vals) == 3 and all(v.metrics.n_cubes == 4 for v in vals)  # default top_k = 3
    # the summary shows the validated values and the recommendation
    from rich.console import Console

    from microdesign.campaign.display import RichDisplay

    console = Console(record=True, width=200)
    console.print(RichDisplay("W.h.L-1", "energy").summary(campaign, str(path)))
    text = " ".join(console.export_text().split())  # the caption wraps
    assert "validated with 4 fresh cubes" in text and "recommended trial" in text
    assert "estimated error vs reference: not measured for these settings" in text  # stub stages: no table row


def test_a_file_naming_a_moved_class_still_resumes(tmp_path, monkeypatch):
    import h5py

    from microdesign.campaign import build

    _run(tmp_path, "campaign.budget.max_evaluations=2", "campaign.validation.top_k=0")
    path = tmp_path / "c.h5"
    with h5py.File(path, "r+") as f:
        text = f.attrs["config_yaml"]
        assert "_target_: microdesign.objective.CellQuantity\n" in text
        f.attrs["config_yaml"] = text.replace("_target_: microdesign.objective.CellQuantity\n",
                                              "_target_: microdesign.legacy.GoneQuantity\n")
    _unseal(path)
    resume = FAST + [f"resume={path}", "campaign.budget.max_evaluations=3"]
    with pytest.raises(ConfigError, match="GoneQuantity"):
        validate(compose("campaign", resume))
    monkeypatch.setitem(build.MOVED_TARGETS, "microdesign.legacy.GoneQuantity", "microdesign.objective.CellQuantity")
    assert run_campaign(compose("campaign", resume)) == 0
    assert len(CampaignStore(path).load()[1]) == 3


def test_a_file_with_the_older_flat_characterise_settings_still_resumes(tmp_path):
    """Campaign files store their config; older ones hold the characteriser's settings as flat keys
    (``solver: taufactor``, ``taufactor_iter_limit``, ``max_cubes`` ...): a resume converts them to the solver object."""
    from omegaconf import OmegaConf

    from microdesign.characterise import Characteriser, TauFactorSolver

    _run(tmp_path, "campaign.budget.max_evaluations=2", "campaign.validation.top_k=0")
    path = tmp_path / "c.h5"
    with CampaignStore(path, writer=True) as store:
        stored = OmegaConf.create(store.read_header()["config_yaml"])
        stored.characterise = {"_target_": "microdesign.characterise.Characteriser", "solver": "taufactor",
                               "device": "cpu", "conv_crit": 0.02, "rtol": 1e-3, "iter_limit": 300,
                               "taufactor_iter_limit": 5000, "threads": 1, "in_plane": True, "max_cubes": 8,
                               "min_cubes": 3}
        store.set_attrs(config_yaml=OmegaConf.to_yaml(stored))
    setup = validate(compose("campaign", FAST + [f"resume={path}", "campaign.budget.max_evaluations=3"]))
    ch = setup.evaluator.characteriser
    assert isinstance(ch, Characteriser) and isinstance(ch.solver, TauFactorSolver)
    assert (ch.solver.conv_crit, ch.solver.iter_limit, ch.solver.threads) == (0.02, 5000, 1)
    assert ch.in_plane and (ch.adaptive.max_cubes, ch.adaptive.min_cubes) == (8, 3)
    assert setup.cfg.characterise.solver._target_.endswith("TauFactorSolver")
    # the stored config has no tau_estimator: the file keeps the mean of tau it was measured with
    assert ch.tau_estimator == "mean"


def test_a_failed_validation_is_recorded_and_not_recommended():
    from microdesign.campaign.evaluate import Evaluation
    from microdesign.campaign.validation import FinalValidation, recommended
    from microdesign.objective import ObjectiveValue
    from microdesign.storage import TrialRecord

    class Evaluator:
        def fixed_cubes(self, n):
            self.n = n
            return self

        def evaluate(self, inputs, seed):
            if inputs["x"] > 0.5:
                return Evaluation("failed", "characterise: pore network does not percolate in 1 of 12 cubes")
            return Evaluation("completed", objective=ObjectiveValue("ok", 10 * inputs["x"], 10 * inputs["x"], 0.1))

    trials = [TrialRecord(index=i, batch=i, status="completed", method="sobol", inputs={"x": x}, seed=i,
                          objective=ObjectiveValue("ok", 10 * x + 1, 10 * x + 1, 0.1))
              for i, x in enumerate([0.9, 0.2, 0.4, 0.1])]
    fv = FinalValidation(top_k=3, n_cubes=12)
    cands = fv.candidates(trials, validated=set())
    assert [t.index for t in cands] == [0, 2, 1]
    vals = [fv.evaluate(t, Evaluator(), campaign_seed=0) for t in cands]
    assert vals[0].status == "failed" and "percolate" in vals[0].reason and vals[0].method == "validation"
    trial, v = recommended(trials, vals)
    assert trial.index == 2 and v.objective.raw_value == pytest.approx(4.0)  # not the failed best-found design
    assert fv.candidates(trials, validated={0, 2, 1}) == []


def test_resume_extends_the_budget_and_keeps_the_stored_config(tmp_path):
    path = tmp_path / "r.h5"
    _, first = _run(tmp_path, "optimiser=sobol", "campaign.budget.max_evaluations=3", "seed=4", name="r.h5")
    # a resume takes the budget from the command line, everything else (seed, optimiser) from the file
    cfg = compose("campaign", BASE + [f"resume={path}", "campaign.budget.max_evaluations=5", "seed=99"])
    assert run_campaign(cfg) == 0
    _, after = CampaignStore(path).load()
    assert len(after) == 5 and all(t.status == "completed" for t in after)
    assert [t.inputs for t in after[:3]] == [t.inputs for t in first]
    from microdesign.campaign.loop import trial_seed

    assert [t.seed for t in after] == [trial_seed(4, i) for i in range(5)]
    with pytest.raises(ConfigError, match="resume"):
        validate(compose("campaign", BASE + [f"resume={tmp_path / 'nope.h5'}"]))


def test_best_so_far_follows_finishing_order_and_the_stored_direction():
    from microdesign.campaign import best_so_far, best_trial
    from microdesign.objective import ObjectiveValue
    from microdesign.storage import TrialRecord

    def trial(i, raw, finished, status="completed"):  # a minimised objective: value = -raw
        obj = ObjectiveValue("ok", -raw, raw, 1.0) if status == "completed" else None
        return TrialRecord(index=i, batch=i, status=status, method="sobol", inputs={}, seed=i, objective=obj,
                           finished_unix=finished)

    # trial 1 finished first (e.g. a parallel worker); trial 3 is still running and not counted
    trials = [trial(0, 5.0, 20.0), trial(1, 7.0, 10.0), trial(2, 0.0, 30.0, "failed"),
              trial(3, 1.0, 0.0, "running"), trial(4, 3.0, 40.0)]
    assert best_so_far(trials, "minimize").tolist() == [7.0, 5.0, 5.0, 3.0]
    assert best_so_far(trials).tolist() == [-7.0, -5.0, -5.0, -3.0]  # the scale the optimiser maximises
    assert best_trial(trials).index == 4
    assert np.isnan(best_so_far([trial(2, 0.0, 1.0, "failed"), trial(0, 5.0, 2.0)], "minimize")[0])
    with pytest.raises(ConfigError):
        best_so_far(trials, "largest")
