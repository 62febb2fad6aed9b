"""Adversarial training of the conditional generator against 2D slices (conditional SliceGAN).

Algorithm (Kench & Cooper, Nat. Mach. Intell. 3 (2021) 299, Algorithm 1; Wasserstein loss with
gradient penalty, Gulrajani et al., NeurIPS 2017, lambda = 10):

* each step draws ``batch_size`` training samples and their normalised labels ``c`` (``b x d``);
* the generator makes ``b`` cubes from noise and ``c``; along each axis ``a`` a critic ``D_a`` scores
  ``slices_per_axis`` random slices of every cube against random real slices (taken along the same
  axis of 3D training volumes, or from the 2D micrographs for every axis: isotropy assumed) with
  the same ``c`` as constant label channels;
* critics: ``critic_iters`` updates of ``E[D(fake)] - E[D(real)] + lambda * E[(|grad D(x_hat)| - 1)^2]``
  per generator update; generator: minimise ``-sum_a E[D_a(fake slices)]``.

Training writes to ``out_dir``: ``state.pt`` (everything to resume, saved every ``checkpoint_every``
steps and at the end, atomically), ``losses.csv`` (one row per logged step), and ``model/`` (a
loadable generator checkpoint). Re-running with the same ``out_dir`` resumes from ``state.pt``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError
from microdesign.generator.checkpoint import CheckpointMetadata, save_checkpoint
from microdesign.generator.data import TrainingData
from microdesign.phases import N_PHASES, PHASE_NAMES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Training settings (defaults: SliceGAN's, Kench & Cooper 2021, scaled down for CPU).

    Attributes:
        steps: generator updates.
        batch_size: cubes per generator update (SliceGAN: 8).
        slices_per_axis: random slices per cube and axis fed to the critics (SliceGAN uses all ``L``).
        critic_iters: critic updates per generator update (SliceGAN: 5).
        lr_generator, lr_critic: Adam learning rates (SliceGAN: 1e-4).
        beta1, beta2: Adam betas (SliceGAN: 0.9, 0.99).
        gp_lambda: gradient-penalty weight (Gulrajani et al. 2017: 10).
        train_size: cube side during training [voxels] (must be ``2**(len(widths)+1) * k``).
        latent_channels, widths: generator size (see :class:`ConditionalGenerator3D`).
        critic_widths: critic size.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        amp: bfloat16 autocast on CUDA (ignored on CPU).
        threads: torch CPU threads (0: leave torch's default).
        seed: seed of initialisation and sampling.
        checkpoint_every: save ``state.pt`` and ``model/`` every this many steps.
        log_every: append to ``losses.csv`` every this many steps.
        bn_calibration_batches: batches used to re-estimate batch-norm statistics before export.
        phase_fraction_weight: weight of an auxiliary generator loss, the squared difference between
            the mean phase probabilities of each generated cube and the phase fractions of the training
            sample whose labels it was conditioned on (0: pure SliceGAN). It speeds up learning the
            first-order effect of the conditions (volume fractions) on a small compute budget; the
            value is included in the logged generator loss.
        condition_every_layer: see :class:`ConditionalGenerator3D` (default False: latent only).
    """

    steps: int = 2000
    batch_size: int = 4
    slices_per_axis: int = 8
    critic_iters: int = 5
    lr_generator: float = 1e-4
    lr_critic: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.99
    gp_lambda: float = 10.0
    train_size: int = 64
    latent_channels: int = 16
    widths: tuple[int, ...] = (64, 32, 16, 8)
    critic_widths: tuple[int, ...] = (16, 32, 64, 128)
    device: str = "auto"
    amp: bool = True
    threads: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    bn_calibration_batches: int = 16
    phase_fraction_weight: float = 0.0
    condition_every_layer: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "critic_widths", tuple(int(w) for w in self.critic_widths))
        for name in ("steps", "batch_size", "slices_per_axis", "critic_iters", "latent_channels",
                     "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(name, getattr(self, name), "a positive integer", context="train settings")
        for name in ("lr_generator", "lr_critic"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(name, getattr(self, name), "a positive learning rate", context="train settings")
        unit = 2 ** (len(self.widths) + 1)
        if self.train_size < unit or self.train_size % unit:
            raise ConfigError("train_size", self.train_size, f"a multiple of {unit} (2**(len(widths)+1))",
                              context="train settings")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("device", self.device, "'auto', 'cpu' or 'cuda'", context="train settings")

    @classmethod
    def from_mapping(cls, cfg: Any) -> TrainSettings:
        """Build from a dict / DictConfig, rejecting unknown keys."""
        data = dict(cfg)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("train", unknown, f"known settings {sorted(known)}")
        for key in ("widths", "critic_widths"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["widths"], d["critic_widths"] = list(self.widths), list(self.critic_widths)
        return d


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        steps_done: generator updates completed (including earlier runs resumed from).
        wall_s: training time of all runs together [s].
        model_dir: the exported checkpoint folder.
        log_path: the CSV loss log.
        status: ``"ok"`` or ``"failed"``; reason: why it failed.
    """

    steps_done: int
    wall_s: float
    model_dir: Path
    log_path: Path
    status: str = "ok"
    reason: str = ""


def _hardware(device) -> str:
    import torch

    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores"


class _SliceSampler:
    """Random real 2D slices (one-hot, ``m x 3 x L x L``) along a given axis of the training images."""

    def __init__(self, data: TrainingData, size: int):
        import torch

        self.size = size
        self.ndim = data.ndim
        self.images = [torch.from_numpy(np.ascontiguousarray(im)) for im in data.images]
        for im in data.images:
            if min(im.shape) < size:
                raise ConfigError("train_size", size, f"<= every training image side (got an image {im.shape})")

    def slices(self, indices: np.ndarray, axis: int, per_image: int, rng: np.random.Generator):
        import torch
        import torch.nn.functional as F

        L = self.size
        out = []
        for idx in indices:
            im = self.images[int(idx)]
            for _ in range(per_image):
                if self.ndim == 3:
                    k = int(rng.integers(im.shape[axis]))
                    plane = im.select(axis, k)
                else:
                    plane = im
                i0 = int(rng.integers(plane.shape[0] - L + 1))
                j0 = int(rng.integers(plane.shape[1] - L + 1))
                if self.ndim == 2 and rng.random() < 0.5:  # 2D data: random transpose (isotropy)
                    plane = plane.T
                    i0, j0 = j0, i0
                out.append(plane[i0:i0 + L, j0:j0 + L])
        batch = torch.stack(out).long()
        return F.one_hot(batch, N_PHASES).permute(0, 3, 1, 2).float()


def _fake_slices(volume, axis: int, per_image: int, gen):
    """``b x 3 x L x L x L`` -> ``(b * per_image) x 3 x L x L`` random slices along ``axis``."""
    import torch

    b, c, L = volume.shape[0], volume.shape[1], volume.shape[2]
    idx = torch.randint(0, L, (b, per_image), generator=gen).to(volume.device)
    vol = volume.movedim(2 + axis, 2)  # b x c x L(axis) x L x L
    gather_idx = idx.view(b, 1, per_image, 1, 1).expand(b, c, per_image, L, L)
    return torch.gather(vol, 2, gather_idx).permute(0, 2, 1, 3, 4).reshape(b * per_image, c, L, L)


def _gradient_penalty(critic, real, fake, cond, gen):
    import torch

    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=gen).to(real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(x_hat, cond)
    grad = torch.autograd.grad(score.sum(), x_hat, create_graph=True)[0]
    return ((grad.reshape(grad.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


def train(data: TrainingData, settings: TrainSettings, out_dir: str | Path, name: str,
          export_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
          max_wall_s: float | None = None, init_from: str | Path | None = None) -> TrainResult:
    """Train (or resume training) a conditional generator and export a checkpoint.

    Args:
        data: training images and labels.
        settings: see :class:`TrainSettings`.
        out_dir: run folder (``state.pt``, ``losses.csv``, ``model/``).
        name: model name written into the checkpoint.
        export_dir: also copy the final checkpoint here (e.g. ``models/<name>``).
        resume: continue from ``out_dir/state.pt`` if present (it must be for the same data and
            network; ``steps`` may be raised to train longer).
        progress: show a tqdm progress bar.
        max_wall_s: stop (after saving) once this much time has passed in this run.
        init_from: warm start a *new* run from another run's ``state.pt`` (or its run folder): the
            generator, critic and optimiser states are copied, the step count starts at 0. The network
            (widths, latent channels, critic widths) and the parameter names must match; the training
            cube size and the dataset may differ (both networks are fully convolutional), which is how
            a model trained on small cubes is continued on larger ones, or fine-tuned on a user's own
            data over the same design space. Recorded in the checkpoint (``training.init_from``).
            Ignored when ``out_dir`` already holds a state to resume.

    Returns:
        :class:`TrainResult`.

    Raises:
        ConfigError: inconsistent settings, a resume state for other data or another network, or an
            ``init_from`` state that is missing or for another network or design space; a resume or
            ``init_from`` file that is not a training state.
    """
    import torch
    from tqdm.auto import tqdm

    from microdesign import __version__
    from microdesign.device import resolve_device
    from microdesign.generator.network import ConditionalCritic2D, ConditionalGenerator3D

    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    device = torch.device(resolve_device(settings.device))
    amp = bool(settings.amp and device.type == "cuda")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path, log_path, model_dir = out_dir / "state.pt", out_dir / "losses.csv", out_dir / "model"

    d = len(data.parameter_names)
    n_critics = 3 if data.ndim == 3 else 1
    sampler = _SliceSampler(data, settings.train_size)
    cond_all = torch.as_tensor(data.normalised_labels(), dtype=torch.float32)
    frac_all = torch.as_tensor(np.stack([np.bincount(im.reshape(-1), minlength=N_PHASES)[:N_PHASES] / im.size
                                         for im in data.images]), dtype=torch.float32)
    torch.manual_seed(settings.seed)
    G = ConditionalGenerator3D(d, settings.latent_channels, settings.widths, N_PHASES,
                               condition_every_layer=settings.condition_every_layer).to(device)
    Ds = [ConditionalCritic2D(d, N_PHASES, settings.critic_widths).to(device) for _ in range(n_critics)]
    opt_g = torch.optim.Adam(G.parameters(), settings.lr_generator, betas=(settings.beta1, settings.beta2))
    opt_d = [torch.optim.Adam(D.parameters(), settings.lr_critic, betas=(settings.beta1, settings.beta2)) for D in Ds]
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed + 1)
    step, wall_before = 0, 0.0
    identity = {"dataset_hash": data.content_hash, "parameter_names": list(data.parameter_names),
                "network": {k: v for k, v in settings.to_dict().items()
                            if k in ("latent_channels", "widths", "critic_widths", "train_size")}}
    if settings.condition_every_layer:  # key absent from states written before the option existed
        identity["network"]["condition_every_layer"] = True

    init_record = None
    if resume and state_path.is_file():
        state = _load_state(state_path, "resume")
        if state["identity"] != identity:
            raise ConfigError("resume", str(state_path), f"a state for the same data and network; it has "
                              f"{state['identity']}, this run {identity} (use a new out_dir or resume=false)")
        G.load_state_dict(state["G"])
        for D, s in zip(Ds, state["D"]):
            D.load_state_dict(s)
        opt_g.load_state_dict(state["opt_g"])
        for o, s in zip(opt_d, state["opt_d"]):
            o.load_state_dict(s)
        _apply_optimiser_settings(settings, opt_g, opt_d)  # a loaded state carries the old rates
        rng.bit_generator.state = state["np_rng"]
        gen.set_state(state["torch_gen"])
        torch.set_rng_state(state["torch_rng"])
        step, wall_before = int(state["step"]), float(state["wall_s"])
        logger.info("resumed %s at step %d (%.0f s trained before)", out_dir, step, wall_before)
        if log_path.exists():  # drop rows logged after the saved state (they will be redone)
            with open(log_path, newline="") as handle:
                rows = list(csv.reader(handle))
            kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
            with open(log_path, "w", newline="") as handle:
                csv.writer(handle).writerows(kept)
        init_record = state.get("init_from")
    else:
        if log_path.exists():
            log_path.unlink()
        if init_from is not None:
            init_record = _warm_start(init_from, identity, G, Ds, opt_g, opt_d)
            _apply_optimiser_settings(settings, opt_g, opt_d)
            logger.info("warm start of %s from %s (%d steps at %d^3)", out_dir, init_record["path"],
                        init_record["steps"], init_record["train_size"])

    def save_state(wall: float) -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"identity": identity, "settings": settings.to_dict(), "step": step, "wall_s": wall,
                    "G": G.state_dict(), "D": [D.state_dict() for D in Ds], "opt_g": opt_g.state_dict(),
                    "opt_d": [o.state_dict() for o in opt_d], "np_rng": rng.bit_generator.state,
                    "torch_gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "init_from": init_record}, tmp)
        tmp.replace(state_path)

    def export(wall: float, calibrate: bool) -> Path:
        import copy

        net = copy.deepcopy(G).cpu()
        if calibrate and settings.bn_calibration_batches > 0:
            _calibrate_batchnorm(net, cond_all, settings, torch.Generator().manual_seed(settings.seed + 2))
        record = {**settings.to_dict(), "steps_done": step, "wall_s": round(wall, 1), "hardware": _hardware(device),
                  "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "n_training_samples": len(data.images), "training_data_ndim": data.ndim,
                  "batchnorm_calibrated": bool(calibrate)}
        if data.source_path:
            record["dataset_path"] = data.source_path
        if init_record is not None:
            record["init_from"] = init_record
        meta = CheckpointMetadata(
            name=name, parameter_names=tuple(data.parameter_names), parameter_units=tuple(data.parameter_units),
            training_bounds=dict(data.bounds), phases=PHASE_NAMES, voxel_size_m=float(data.voxel_size_m),
            dataset_hash=data.content_hash, dataset_description=data.description, package_version=__version__,
            architecture={"n_params": d, "latent_channels": settings.latent_channels, "widths": list(settings.widths),
                          "n_phases": N_PHASES, "condition_every_layer": settings.condition_every_layer},
            training=record)
        save_checkpoint(model_dir, meta, net.state_dict())
        if export_dir is not None:
            save_checkpoint(export_dir, meta, net.state_dict())
        return model_dir

    new_log = not log_path.exists()
    log_file = open(log_path, "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "wall_s", "critic_loss", "wasserstein", "gradient_penalty", "generator_loss"])
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else (lambda: torch.autocast("cpu", enabled=False))
    lz = G.latent_size_for(settings.train_size)
    S, B = settings.slices_per_axis, settings.batch_size
    t0 = time.perf_counter()
    bar = tqdm(total=settings.steps, initial=step, disable=not progress, desc=f"train {name}", unit="step")
    status, reason = "ok", ""
    try:
        while step < settings.steps:
            G.train()
            sums = np.zeros(3)
            for _ in range(settings.critic_iters):
                idx = rng.integers(len(data.images), size=B)
                cond = cond_all[idx].to(device)
                z = torch.randn(B, settings.latent_channels, lz, lz, lz, generator=gen).to(device)
                with torch.no_grad(), autocast():
                    fake_vol = G(z, cond).float()
                for a, (D, opt) in enumerate(zip(Ds, opt_d)):
                    axes = [a] if n_critics == 3 else [int(rng.integers(3))]
                    real = sampler.slices(idx, axes[0] if data.ndim == 3 else 0, S, rng).to(device)
                    fake = _fake_slices(fake_vol, axes[0], S, gen)
                    c_rep = cond.repeat_interleave(S, dim=0)
                    with autocast():
                        w = D(fake, c_rep).float().mean() - D(real, c_rep).float().mean()
                        gp = _gradient_penalty(D, real, fake, c_rep, gen).float()
                    loss = w + settings.gp_lambda * gp
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sums += [loss.item(), -w.item(), gp.item()]
            idx = rng.integers(len(data.images), size=B)
            cond = cond_all[idx].to(device)
            z = torch.randn(B, settings.latent_channels, lz, lz, lz, generator=gen).to(device)
            with autocast():
                fake_vol = G(z, cond)
                g_loss = 0.0
                for a, D in enumerate(Ds):
                    for p in D.parameters():
                        p.requires_grad_(False)
                    axes = [a] if n_critics == 3 else [0, 1, 2]
                    for ax in axes:
                        g_loss = g_loss - D(_fake_slices(fake_vol, ax, S, gen), cond.repeat_interleave(S, 0)).float().mean()
                    for p in D.parameters():
                        p.requires_grad_(True)
                if settings.phase_fraction_weight > 0:
                    frac_fake = fake_vol.float().mean(dim=(2, 3, 4))
                    g_loss = g_loss + settings.phase_fraction_weight * (
                        (frac_fake - frac_all[idx].to(device)) ** 2).sum(1).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            step += 1
            bar.update(1)
            wall = wall_before + time.perf_counter() - t0
            if not np.isfinite(g_loss.item()) or not np.all(np.isfinite(sums)):
                status, reason = "failed", f"non-finite loss at step {step}"
                logger.error("training %s diverged: %s", name, reason)
                break
            if step % settings.log_every == 0 or step == settings.steps:
                m = sums / (settings.critic_iters * n_critics)
                writer.writerow([step, f"{wall:.1f}", f"{m[0]:.5g}", f"{m[1]:.5g}", f"{m[2]:.5g}", f"{g_loss.item():.5g}"])
                log_file.flush()
                bar.set_postfix(W=f"{m[1]:.3f}", gp=f"{m[2]:.3f}")
            if step % settings.checkpoint_every == 0 and step < settings.steps:
                save_state(wall)
                export(wall, calibrate=False)
            if max_wall_s is not None and time.perf_counter() - t0 > max_wall_s:
                logger.info("stopping %s after max_wall_s=%s at step %d", name, max_wall_s, step)
                break
    finally:
        bar.close()
        log_file.close()
    wall = wall_before + time.perf_counter() - t0
    save_state(wall)
    model = export(wall, calibrate=True)
    logger.info("trained %s: %d steps, %.0f s, checkpoint %s", name, step, wall, model)
    return TrainResult(step, wall, model, log_path, status, reason)


def _apply_optimiser_settings(settings: TrainSettings, opt_g, opt_d) -> None:
    """Set this run's learning rates and betas on optimisers whose state was loaded from a file.

    ``torch.optim.Optimizer.load_state_dict`` restores the saved parameter groups, rates included, so
    without this a resumed or warm-started run would silently keep the rates of the earlier run.
    """
    for opt, lr in [(opt_g, settings.lr_generator)] + [(o, settings.lr_critic) for o in opt_d]:
        for group in opt.param_groups:
            group["lr"], group["betas"] = float(lr), (float(settings.beta1), float(settings.beta2))


def _load_state(path: Path, name: str) -> dict:
    """A training state written by :func:`train`; ``ConfigError`` naming ``name`` where the file is not one."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a bad file
        raise ConfigError(name, str(path), f"a training state written by train-generator ({exc})") from exc
    keys = ("identity", "step", "wall_s", "G", "D", "opt_g", "opt_d")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise ConfigError(name, str(path), f"a training state written by train-generator (a dict with {keys})")
    return state


def _warm_start(init_from, identity: dict, G, Ds, opt_g, opt_d) -> dict:
    """Copy networks and optimiser states from another run's state (see ``train(init_from=...)``)."""
    path = Path(init_from)
    if path.is_dir():
        path = path / "state.pt"
    if not path.is_file():
        raise ConfigError("init_from", str(init_from), "a run folder with a state.pt, or a state.pt file")
    state = _load_state(path, "init_from")
    theirs = dict(state["identity"]["network"])
    ours = {k: v for k, v in identity["network"].items() if k != "train_size"}
    if {k: v for k, v in theirs.items() if k != "train_size"} != ours:
        raise ConfigError("init_from", str(path), f"a state of the same network {ours} (the training cube "
                          f"size may differ); it has {theirs}")
    if list(state["identity"]["parameter_names"]) != list(identity["parameter_names"]):
        raise ConfigError("init_from", str(path), f"a state conditioned on {identity['parameter_names']}; it is "
                          f"conditioned on {state['identity']['parameter_names']}")
    if len(state["D"]) != len(Ds):
        raise ConfigError("init_from", str(path), f"a state with {len(Ds)} critic(s) (3 for 3D volumes, 1 for 2D "
                          f"micrographs); it has {len(state['D'])}")
    G.load_state_dict(state["G"])
    for D, s in zip(Ds, state["D"], strict=True):
        D.load_state_dict(s)
    opt_g.load_state_dict(state["opt_g"])
    for o, s in zip(opt_d, state["opt_d"], strict=True):
        o.load_state_dict(s)
    return {"path": str(path.resolve()), "steps": int(state["step"]), "wall_s": float(state["wall_s"]),
            "train_size": int(theirs["train_size"]), "dataset_hash": state["identity"]["dataset_hash"]}


def _calibrate_batchnorm(net, cond_all, settings: TrainSettings, gen) -> None:
    """Re-estimate batch-norm running statistics as a cumulative average over fresh batches.

    The exported generator runs in eval mode (so each sample is independent of its batch); this
    makes its statistics those of the final weights rather than an exponential average over training.
    """
    import torch
    from torch import nn

    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    lz = net.latent_size_for(settings.train_size)
    with torch.no_grad():
        for _ in range(settings.bn_calibration_batches):
            idx = torch.randint(0, cond_all.shape[0], (settings.batch_size,), generator=gen)
            z = torch.randn(settings.batch_size, settings.latent_channels, lz, lz, lz, generator=gen)
            net(z, cond_all[idx])
    for m in norms:
        m.momentum = 0.1
    net.eval()
