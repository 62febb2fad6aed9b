"""Transport term of generator training: analytical conductances, exact gradients, the targets' fit, training."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from microdesign.errors import ConfigError
from microdesign.generator import TrainingData, TrainSettings, train
from microdesign.generator.testing import TINY_TRAIN_SETTINGS, smooth_two_phase
from microdesign.generator.transport_term import (FLOOR, TransportTargets, labels_log_conductance, log_conductance,
                                                  phase_conductances)

torch = pytest.importorskip("torch")


def test_uniform_cube_and_straight_channels_have_their_analytical_conductance():
    """A cube of one conductance c: every column is X + 1 faces in series (two Dirichlet faces at the voxel's
    conductance), so the current is c Y Z / (X + 1). Straight pore channels along axis 0 (tortuosity factor
    1) conduct in proportion to their cross-section; the solid around them conducts the rest."""
    X, Y, Z = 12, 10, 8
    one = torch.ones(1, X, Y, Z)
    np.testing.assert_allclose(log_conductance(one).numpy(), [np.log(Y * Z / (X + 1))], rtol=1e-5)
    np.testing.assert_allclose(log_conductance(0.25 * one).numpy(), [np.log(0.25 * Y * Z / (X + 1))], rtol=1e-5)

    labels = np.ones((1, X, Y, Z), dtype=np.uint8)
    labels[:, :, 2:5, 3:6] = 0  # a 3 x 3 channel: porosity 9 / 80
    pore, solid = np.exp(labels_log_conductance(labels)[0])
    assert pore == pytest.approx(9 / (X + 1) * (1 + FLOOR * 71 / 9), rel=2e-3)  # the solid adds its floor
    assert solid == pytest.approx(71 / (X + 1) * (1 + FLOOR * 9 / 71), rel=2e-3)


def test_gradient_is_the_squared_potential_drop_and_matches_finite_differences():
    """The Joule power with the potential held fixed has the derivative of the effective conductance
    (Dirichlet principle): autograd against central differences of full re-solves."""
    gen = torch.Generator().manual_seed(0)
    hard = (torch.rand(1, 10, 8, 8, generator=gen) < 0.45).float()
    c = phase_conductances(hard)[:1].double().requires_grad_(True)
    log_conductance(c, rtol=1e-10, iter_limit=2000).sum().backward()
    grad = c.grad[0]
    idx = [(4, 3, 3), (0, 1, 2), (9, 7, 7), tuple(int(i) for i in np.unravel_index(int(grad.argmax()), grad.shape))]
    for i in idx:
        h = 1e-2 * float(c.detach()[0][i])
        vals = []
        for sign in (1, -1):
            d = c.detach().clone()
            d[0][i] += sign * h
            vals.append(float(log_conductance(d, rtol=1e-12, iter_limit=2000)))
        assert float(grad[i]) == pytest.approx((vals[0] - vals[1]) / (2 * h), rel=2e-3, abs=1e-9)
    assert float(grad.min()) >= 0  # more conductance anywhere never lowers the current


def test_straight_through_gradient_of_the_soft_pore():
    """Values from the hard labels, gradient through the soft pore probability: opening a solid voxel at a
    throat raises the pore's conductance and lowers the solid's."""
    hard = torch.zeros(1, 8, 6, 6)
    hard[:, :, 2:4, 2:4] = 1
    hard[:, 4, 2:4, 2:4] = 0  # the channel blocked at one layer: a throat
    hard[:, 4, 2, 2] = 1  # ... open in one voxel
    soft = torch.full_like(hard, 0.5).requires_grad_(True)
    c = phase_conductances(hard, soft)
    np.testing.assert_allclose(c.detach().numpy(), phase_conductances(hard).numpy())
    logc = log_conductance(c)
    logc[0].backward(retain_graph=True)
    g_pore = soft.grad.clone()
    soft.grad = None
    logc[1].backward()
    g_solid = soft.grad.clone()
    assert float(g_pore[0, 4, 2, 3]) > 0 and float(g_pore[0, 4, 2, 3]) > 10 * float(g_pore[0, 4, 0, 0])
    assert float(g_solid[0, 4, 2, 3]) < 0


def test_soft_pore_is_one_half_on_the_labelling_boundary_and_carries_the_gradient_there():
    """The design labelling takes the voxels of largest pore margin; the soft indicator is centred between
    the last voxel taken and the first left out, whatever the margins' offset (here all negative: a network
    that makes too little pore), and its gradient is largest at that boundary."""
    from microdesign.generator.sampler import label_with_counts, voxel_counts
    from microdesign.generator.transport_term import soft_pore

    torch.manual_seed(0)
    logits = (30.0 * torch.randn(2, 3, 8, 8, 8) - torch.tensor([40.0, 0, 0])[None, :, None, None, None])
    logits.requires_grad_(True)
    hard = torch.cat([label_with_counts(logits.detach()[i:i + 1], voxel_counts([0.3, 0.6, 0.1], 512))
                      for i in range(2)]) == 0
    soft = soft_pore(logits, hard.float())
    assert torch.all((soft > 0.5) == hard)  # the indicator agrees with the labels
    margin = (logits[:, 0] - logits[:, 1:].max(1).values).detach()
    for i in range(2):
        edge = (margin[i][hard[i]].min() + margin[i][~hard[i]].max()) / 2
        assert float(torch.sigmoid((margin[i][hard[i]].min() - edge) / 5.0)) == pytest.approx(
            float(soft.detach()[i][hard[i]].min()), rel=1e-5)
    soft.sum().backward()
    g = logits.grad[:, 0].abs()
    for i in range(2):
        edge = (margin[i][hard[i]].min() + margin[i][~hard[i]].max()) / 2
        order = (margin[i] - edge).abs().flatten().argsort()
        # the 20 voxels nearest the labelling's threshold carry far more gradient than the 20 farthest
        assert float(g[i].flatten()[order[:20]].mean()) > 100 * float(g[i].flatten()[order[-20:]].mean())


def test_targets_recover_a_polynomial_and_refuse_too_few_volumes():
    rng = np.random.default_rng(0)
    cond = rng.uniform(-1, 1, (400, 3))
    truth = np.stack([1 + cond[:, 0] - 0.5 * cond[:, 1] ** 2 + 0.2 * cond[:, 0] * cond[:, 2] * cond[:, 1],
                      -2 + 0.3 * cond[:, 2] ** 3], axis=1)
    noise = 0.05 * rng.standard_normal(truth.shape)
    targets = TransportTargets(cond, truth + noise)
    new = rng.uniform(-1, 1, (5, 3))
    expect = np.stack([1 + new[:, 0] - 0.5 * new[:, 1] ** 2 + 0.2 * new[:, 0] * new[:, 2] * new[:, 1],
                       -2 + 0.3 * new[:, 2] ** 3], axis=1)
    np.testing.assert_allclose(targets.predict(new), expect, atol=0.05)
    assert np.all(targets.residual_std < 0.06) and np.all(targets.r2 > 0.75)
    with pytest.raises(ValueError, match="20 coefficients"):
        TransportTargets(cond[:10], truth[:10])


TINY = {**TINY_TRAIN_SETTINGS, "log_every": 1}


def _blobs(pore_fraction: float, seed: int, size: int = 16) -> np.ndarray:
    return smooth_two_phase(pore_fraction, seed, size)


def test_transport_weight_trains_caches_its_targets_and_is_checked(tmp_path):
    pores = [0.3, 0.4, 0.5, 0.6] * 6
    imgs = [_blobs(p, i) for i, p in enumerate(pores)]
    data = TrainingData.from_arrays(imgs, [{"porosity": p} for p in pores], {"porosity": "1"}, voxel_size_m=5e-7)
    rows = {}
    for w in (0.0, 30.0):
        result = train(data, TrainSettings(steps=2, transport_weight=w, **TINY), tmp_path / str(w), "r",
                       progress=False)
        rows[w] = list(csv.DictReader(open(result.log_path)))
        assert all(np.isfinite(float(r["generator_loss"])) for r in rows[w])
    assert float(rows[30.0][0]["generator_loss"]) > float(rows[0.0][0]["generator_loss"])
    cache = tmp_path / "30.0" / "transport_targets.npz"
    with np.load(cache) as f:
        np.testing.assert_allclose(f["values"], labels_log_conductance(np.stack(imgs)), rtol=1e-6)
        key, values = str(f["key"]), f["values"]
    # the cache is read back when its key matches (shifted values shift the fit), recomputed when not
    from microdesign.generator.training import Trainer

    np.savez(cache, key=key, values=values + 1.0)
    shifted = Trainer(data, TrainSettings(steps=1, transport_weight=30.0, **TINY), tmp_path / "30.0", "r")
    cond = shifted.cond_all.numpy()[:3]
    fresh = Trainer(data, TrainSettings(steps=1, transport_weight=30.0, **TINY), tmp_path / "fresh", "r")
    np.testing.assert_allclose(shifted.transport_targets.predict(cond), fresh.transport_targets.predict(cond) + 1.0,
                               atol=1e-9)
    np.savez(cache, key="another dataset", values=values + 1.0)
    redone = Trainer(data, TrainSettings(steps=1, transport_weight=30.0, **TINY), tmp_path / "30.0", "r")
    np.testing.assert_allclose(redone.transport_targets.predict(cond), fresh.transport_targets.predict(cond),
                               atol=1e-9)
    header = list(rows[30.0][0])
    assert header[-2:] == ["transport_residual_pore", "transport_residual_solid"]
    assert all(np.isfinite(float(r["transport_residual_pore"])) for r in rows[30.0])
    assert "transport_residual_pore" not in rows[0.0][0]
    for bad in (-1.0, float("nan")):
        with pytest.raises(ConfigError, match="transport_weight"):
            TrainSettings(transport_weight=bad, **TINY)
    with pytest.raises(ConfigError, match="transport_every"):
        TrainSettings(transport_weight=1.0, transport_every=0, **TINY)
    flat = [im[0] for im in imgs]
    data_2d = TrainingData.from_arrays(flat, [{"porosity": p} for p in pores], {"porosity": "1"}, voxel_size_m=5e-7)
    with pytest.raises(ConfigError, match="transport_weight"):
        train(data_2d, TrainSettings(steps=1, transport_weight=1.0, **TINY), tmp_path / "2d", "r", progress=False)


def test_warm_start_from_an_exported_model_copies_the_generator_only(tmp_path):
    """init_from a model folder: the generator's weights are the export's, the record says the critics
    are fresh; a model of another network is refused naming init_from."""
    from microdesign.generator.checkpoint import load_checkpoint
    from microdesign.generator.training import Trainer

    pores = [0.3, 0.6] * 4
    data = TrainingData.from_arrays([_blobs(p, i) for i, p in enumerate(pores)], [{"porosity": p} for p in pores],
                                    {"porosity": "1"}, voxel_size_m=5e-7)
    first = train(data, TrainSettings(steps=2, **TINY), tmp_path / "a", "a", progress=False)
    trainer = Trainer(data, TrainSettings(steps=2, **TINY), tmp_path / "b", "b")
    trainer.start(first.model_dir)
    _, weights, _ = load_checkpoint(first.model_dir)
    for k, v in trainer.G.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert trainer.init_record["critic_copied"] is False and trainer.init_record["steps"] == 2
    assert trainer.init_record["train_size"] == 16 and trainer.init_record["wall_s"] == pytest.approx(first.wall_s, abs=0.05)
    other = Trainer(data, TrainSettings(steps=2, **{**TINY, "widths": (8, 4, 4)}), tmp_path / "c", "c")
    with pytest.raises(ConfigError, match="init_from"):
        other.start(first.model_dir)


def test_critic_warmup_trains_the_critics_only(tmp_path):
    """critic_warmup_steps=2: after two steps the generator is the warm start's and the critics have moved;
    the third step moves the generator. A negative count is refused naming it."""
    from microdesign.generator.training import Trainer

    pores = [0.3, 0.6] * 4
    data = TrainingData.from_arrays([_blobs(p, i) for i, p in enumerate(pores)], [{"porosity": p} for p in pores],
                                    {"porosity": "1"}, voxel_size_m=5e-7)
    trainer = Trainer(data, TrainSettings(steps=3, critic_warmup_steps=2, **TINY), tmp_path / "w", "w")
    g0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    d0 = [p.detach().clone() for p in trainer.Ds[0].parameters()]
    for _ in range(2):
        _, g_loss = trainer.train_step()
        assert g_loss == 0.0
    assert all(torch.equal(v, g0[k]) for k, v in trainer.G.state_dict().items() if "running" not in k
               and "num_batches" not in k)
    assert any(not torch.equal(a, b) for a, b in zip(trainer.Ds[0].parameters(), d0))
    trainer.train_step()
    assert any(not torch.equal(v, g0[k]) for k, v in trainer.G.state_dict().items() if "weight" in k)
    with pytest.raises(ConfigError, match="critic_warmup_steps"):
        TrainSettings(critic_warmup_steps=-1, **TINY)


def test_transport_priority_draws_the_largest_residuals_and_survives_a_resume(tmp_path):
    """transport_priority: an unmeasured sample takes the largest residual so far; a sample with a 100x
    larger squared residual is drawn about 100x as often at exponent 1; an update without the term
    (transport_every=2, odd steps) draws uniformly; the residuals are saved with the state and read back."""
    from microdesign.generator.training import Trainer

    pores = [0.3, 0.6] * 4
    data = TrainingData.from_arrays([_blobs(p, i) for i, p in enumerate(pores)], [{"porosity": p} for p in pores],
                                    {"porosity": "1"}, voxel_size_m=5e-7)
    settings = TrainSettings(steps=2, transport_weight=1.0, transport_priority=1.0, **TINY)
    trainer = Trainer(data, settings, tmp_path / "p", "p")
    trainer.transport_sq_residual[:] = np.nan
    trainer.transport_sq_residual[:7] = 1e-4
    trainer.transport_sq_residual[3] = 1e-2  # the largest measured: sample 7, unmeasured, takes it too
    counts = np.bincount(np.concatenate([trainer._transport_batch() for _ in range(2000)]), minlength=8)
    share = counts / counts.sum()
    expected = np.array([1e-4] * 7 + [1e-2])
    expected[3] = 1e-2
    np.testing.assert_allclose(share, expected / expected.sum(), atol=0.02)
    every2 = Trainer(data, TrainSettings(steps=2, transport_weight=1.0, transport_priority=1.0, transport_every=2,
                                         **TINY), tmp_path / "e", "e")
    every2.step = 1  # no transport term on this update: the prioritised draw must not be used

    def refuse():
        raise AssertionError("prioritised batch drawn on an update without the transport term")

    every2._transport_batch = refuse
    every2.generator_step()
    trainer.transport_sq_residual[:] = np.nan
    trainer.train_step()  # step 0 adds the term: the batch's residuals are measured, the others not
    measured = np.isfinite(trainer.transport_sq_residual)
    assert 1 <= measured.sum() <= settings.batch_size and (trainer.transport_sq_residual[measured] > 0).all()
    trainer.save(0.0)
    again = Trainer(data, settings, tmp_path / "p", "p")
    assert again.resume()
    np.testing.assert_array_equal(again.transport_sq_residual, trainer.transport_sq_residual)
    with pytest.raises(ConfigError, match="transport_priority"):
        TrainSettings(transport_priority=-1.0, **TINY)


def test_transport_phase_weights_weigh_the_residuals_of_the_loss(tmp_path):
    """transport_phase_weights: the loss is the weighted sum of the pore's and the solid's squared residuals
    of the same cubes; a bad pair is refused naming the setting."""
    from microdesign.generator.training import Trainer

    pores = [0.3, 0.6] * 4
    data = TrainingData.from_arrays([_blobs(p, i) for i, p in enumerate(pores)], [{"porosity": p} for p in pores],
                                    {"porosity": "1"}, voxel_size_m=5e-7)
    idx = np.array([0, 1, 2, 3])
    logits = torch.randn(4, 3, 16, 16, 16, generator=torch.Generator().manual_seed(3))
    losses = {}
    for weights in ((1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (2.0, 0.25)):
        trainer = Trainer(data, TrainSettings(steps=1, transport_weight=1.0, transport_phase_weights=weights, **TINY),
                          tmp_path / "p", "p")
        losses[weights] = float(trainer._transport_loss(idx, logits))
    pore, solid = losses[(1.0, 0.0)], losses[(0.0, 1.0)]
    assert pore > 0 and solid > 0
    assert losses[(1.0, 1.0)] == pytest.approx(pore + solid, rel=1e-5)
    assert losses[(2.0, 0.25)] == pytest.approx(2 * pore + 0.25 * solid, rel=1e-5)
    for bad in ((0.0, 0.0), (1.0, -0.5), (1.0,), (1.0, float("inf")), ("pore", 1.0), 1.0, None, "10"):
        with pytest.raises(ConfigError, match="transport_phase_weights"):
            TrainSettings(transport_phase_weights=bad, **TINY)
    assert TrainSettings.from_mapping({**TINY, "transport_phase_weights": [1, 0]}).to_dict()[
        "transport_phase_weights"] == [1.0, 0.0]
