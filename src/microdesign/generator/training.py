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

With ``TrainSettings.critic="volume"`` (3D training data only) one conditional 3D critic
(:class:`~microdesign.generator.network.ConditionalCritic3D`) replaces the three slice critics: it scores the
whole generated cubes (``b x 3 x L x L x L``) against random real sub-cubes of the same side from the training
volumes, with the gradient penalty on interpolated volumes; the same loss, ``critic_iters``, optimiser settings
and phase-fraction term (a 3D critic as in 3D GANs for porous media, Mosser et al., Phys. Rev. E 96 (2017)
043309; it sees 3D connectivity, which 2D slice statistics do not constrain).

A :class:`Trainer` holds one run (networks, optimisers, random streams, step) and does the updates
(:meth:`Trainer.critic_step`, :meth:`Trainer.generator_step`); :func:`train` is the entry point of the
``train-generator`` command. Training writes to ``out_dir``: ``state.pt`` (everything to resume, saved
every ``checkpoint_every`` steps and at the end, atomically), ``losses.csv`` (one row per logged
step), and ``model/`` (a loadable generator checkpoint). Re-running with the same ``out_dir`` resumes
from ``state.pt``.
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
from microdesign.generator.checkpoint import WEIGHTS_FILE, CheckpointMetadata, load_checkpoint, save_checkpoint
from microdesign.generator.data import TrainingData
from microdesign.phases import ACTIVE_MATERIAL, CBD, N_PHASES, PHASE_NAMES, PORE

logger = logging.getLogger(__name__)

#: what the phase-fraction term takes as a generated cube's fractions (``TrainSettings.phase_fraction_labels``)
PHASE_FRACTION_LABELS = ("softmax", "argmax")


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
        phase_fraction_labels: what that term takes as the generated cube's fractions: ``"softmax"``
            (default: the mean phase probabilities) or ``"argmax"``: the fractions of its argmax labels
            (what ``Generator(phase_fractions="argmax")`` samples), with straight-through gradients
            through the probabilities (Bengio et al., arXiv:1308.3432, 2013). The probabilities can keep
            their mean while more voxels tip to one phase; the argmax fractions cannot (the transport
            term, which ranks voxels at the design's fractions, opens the pore that way; docs/generator.md).
        interface_weight: weight of an auxiliary generator loss on second-order structure, the squared
            difference between the interface densities of each generated cube and those of the training
            sample whose labels it was conditioned on, summed over the phase pairs AM-pore, AM-CBD and
            CBD-pore (:func:`interface_density`: the share of voxel faces that separate the two phases, per axis,
            the quantity face counting turns into a specific surface area). The generated cube's
            densities are those of its labels (``interface_labels``: what is characterised), with straight-through
            gradients through the softmax probabilities (Bengio et al., arXiv:1308.3432, 2013). 0
            (default): off. Densities are 0.005-0.05 on the synthetic line (0.024 on average), so at a
            density of 0.024 a weight of 1000 weighs a 20 % surface-area error as ``phase_fraction_weight``
            100 weighs a 1.5-point fraction error.
        interface_labels: the labels whose interface densities ``interface_weight`` compares:
            ``"argmax"`` (default; what ``Generator(phase_fractions="argmax")`` samples) or ``"design"``:
            the labels at the training sample's phase fractions
            (:func:`microdesign.generator.sampler.label_with_counts` on the logits, what
            ``phase_fractions="design"`` samples with ``pore_neighbour_penalty=0``), so that the structure
            is trained as it is sampled without the penalty (the shipped config samples with one; this
            term does not apply it).
        transport_weight: weight of an auxiliary generator loss on 3D connectivity, the squared difference
            between the log through-plane effective conductances of the pore and of the solid of each
            generated cube (its labels at the training sample's phase fractions) and a polynomial fit of
            those of the training volumes over the conditioning labels
            (:mod:`microdesign.generator.transport_term`; 3D training data only). A pore tortuosity factor
            20 % too high is a residual of about 0.18, so a weight of 30 weighs it about 1 (the phase-fraction
            term at weight 1000 weighs a 3-point fraction error so). Costs one batched potential solve
            (about 3.5 s for 4 + 4 cubes of 64^3, pore and solid, on one CPU thread). 0 (default): off. The
            batch-mean residuals (pore, solid) of the last update that computed the term are logged as two
            more columns of ``losses.csv`` (a run folder's log keeps the columns it was started with).
        transport_every: add the transport term on every this many generator updates only (its cost
            spread over them; 1: every update).
        transport_phase_weights: weights (pore, solid) of the two squared residuals in the transport term
            (and in the residual ``transport_priority`` ranks by); default (1, 1). (1, 0) trains the pore
            alone, (1, 0.25) lets the solid's residual restrain the pore's moves at a quarter of its weight.
            Both residuals are computed and logged whatever the weights. Each weight finite and >= 0, not both 0.
        transport_priority: on the updates that add the transport term, draw the batch's training samples
            with probability proportional to ``r_i ** transport_priority``, ``r_i`` the squared residual
            (weighted by ``transport_phase_weights``) the term last measured for sample ``i``'s design;
            a sample not yet measured takes the largest ``r`` measured so far, so it is drawn as often as
            the worst one (prioritised sampling, Schaul et al., "Prioritized experience replay", ICLR 2016).
            The term then acts where the generator is furthest from the line (for the shipped model the reference designs at low
            porosity and at the AM-rich edge, docs/generator.md) rather than where it is already right. The
            batch is that of the whole generator update, so its critic, phase-fraction and interface terms
            see these conditions too (not reweighted); the critics' own batches stay uniform. The residuals
            are part of the run state (a resume keeps them). 0 (default): uniform, as the other updates.
        critic_warmup_steps: the first this many steps of a run update the critics only: the generator's
            weights stay as they are (its batch-norm running statistics still follow the batches it makes
            for the critics; an export re-estimates them), the logged generator loss is 0, and the steps
            count in ``steps`` and ``steps_done``. For a warm start whose critics are fresh (``init_from``
            an exported model, or from the other critic kind), so that the generator is not trained
            against a critic that has not yet learnt the data. 0 (default): none.
        condition_every_layer: see :class:`ConditionalGenerator3D` (default False: latent only).
        window_padding: how real training windows are placed in an image (or a plane of a volume).
            ``"none"``: uniformly inside it, so a pixel at distance ``d < L`` from an edge is covered
            ``d + 1`` times as often as an interior pixel ``L`` times: the critics see the image centre
            over-weighted, and the generator learns the window-averaged phase fractions, not the
            image's (for one 157 x 189 micrograph and 32-pixel windows: AM 0.523 against 0.585).
            ``"reflect"``: the image is mirrored (``numpy.pad(mode="symmetric")``) by ``L // 2`` on
            every side and windows are placed uniformly in that; every pixel is then covered ``L`` or
            ``L + 1`` times (near an edge it appears once more through its mirror image), so the
            windows see the image's fractions. Mirrored structures appear within ``L // 2`` of the edges.
            With ``critic="volume"`` real sub-cubes are placed the same way along all three axes.
        critic: ``"slices"`` (default): SliceGAN's 2D critics on random slices along each axis (Kench &
            Cooper 2021). ``"volume"``: one 3D critic (:class:`ConditionalCritic3D`) on whole generated
            cubes of ``train_size`` and random real sub-cubes of ``train_size`` (random position; no flips
            or axis permutations, as for the slices of 3D data, so axis 0 stays the through-plane axis),
            gradient penalty on interpolated volumes (Gulrajani et al. 2017; Mosser et al., Phys. Rev. E
            96 (2017) 043309). Only for 3D training data (``ConfigError`` naming ``critic`` otherwise);
            ``slices_per_axis`` is then unused. Part of the run identity only when ``"volume"``, so states
            written before the option resume as ``"slices"``.
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
    phase_fraction_labels: str = "softmax"
    interface_weight: float = 0.0
    interface_labels: str = "argmax"
    transport_weight: float = 0.0
    transport_every: int = 1
    transport_phase_weights: tuple[float, float] = (1.0, 1.0)
    transport_priority: float = 0.0
    critic_warmup_steps: int = 0
    condition_every_layer: bool = False
    window_padding: str = "none"
    critic: str = "slices"

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "critic_widths", tuple(int(w) for w in self.critic_widths))
        try:
            weights = () if isinstance(self.transport_phase_weights, str) else \
                tuple(float(w) for w in self.transport_phase_weights)
        except (TypeError, ValueError):
            weights = ()
        if len(weights) != 2 or not all(0 <= w < float("inf") for w in weights) or not sum(weights) > 0:
            raise ConfigError("transport_phase_weights", repr(self.transport_phase_weights),
                              "two finite weights >= 0 (pore, solid), not both 0", context="train settings")
        object.__setattr__(self, "transport_phase_weights", weights)
        for name in ("steps", "batch_size", "slices_per_axis", "critic_iters", "latent_channels",
                     "checkpoint_every", "log_every", "transport_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(name, getattr(self, name), "a positive integer", context="train settings")
        if int(self.critic_warmup_steps) < 0:
            raise ConfigError("critic_warmup_steps", self.critic_warmup_steps, "an integer >= 0", context="train settings")
        for name in ("lr_generator", "lr_critic"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(name, getattr(self, name), "a positive learning rate", context="train settings")
        for name in ("phase_fraction_weight", "interface_weight", "transport_weight", "transport_priority"):
            if not 0 <= float(getattr(self, name)) < float("inf"):
                raise ConfigError(name, getattr(self, name), "a finite weight >= 0", context="train settings")
        unit = 2 ** (len(self.widths) + 1)
        if self.train_size < unit or self.train_size % unit:
            raise ConfigError("train_size", self.train_size, f"a multiple of {unit} (2**(len(widths)+1))",
                              context="train settings")
        if self.phase_fraction_labels not in PHASE_FRACTION_LABELS:
            raise ConfigError("phase_fraction_labels", self.phase_fraction_labels,
                              " or ".join(repr(v) for v in PHASE_FRACTION_LABELS), context="train settings")
        if self.interface_labels not in ("argmax", "design"):
            raise ConfigError("interface_labels", self.interface_labels, "'argmax' or 'design'",
                              context="train settings")
        if self.window_padding not in ("none", "reflect"):
            raise ConfigError("window_padding", self.window_padding, "'none' or 'reflect'", context="train settings")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("device", self.device, "'auto', 'cpu' or 'cuda'", context="train settings")
        if self.critic not in ("slices", "volume"):
            raise ConfigError("critic", self.critic, "'slices' (2D slice critics) or 'volume' (one 3D critic)",
                              context="train settings")

    @classmethod
    def from_mapping(cls, cfg: Any) -> TrainSettings:
        """Build from a dict / DictConfig, rejecting unknown keys."""
        data = dict(cfg)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("train", unknown, f"known settings {sorted(known)}")
        for key in ("widths", "critic_widths", "transport_phase_weights"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("widths", "critic_widths", "transport_phase_weights"):
            d[key] = list(getattr(self, key))
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


def _check_image_sides(data: TrainingData, size: int) -> None:
    """ConfigError naming ``train_size`` when a training image has a side below ``size``."""
    for im in data.images:
        if min(im.shape) < size:
            raise ConfigError("train_size", size, f"<= every training image side (got an image {im.shape})")


def _one_hot_channels_first(labels):
    """``b x *spatial`` integer labels (tensor) -> ``b x N_PHASES x *spatial`` float32 one-hot."""
    import torch.nn.functional as F

    return F.one_hot(labels.long(), N_PHASES).movedim(-1, 1).float()


class _SliceSampler:
    """Random real 2D slices (one-hot, ``m x 3 x L x L``) along a given axis of the training images."""

    def __init__(self, data: TrainingData, size: int, padding: str = "none"):
        import torch

        self.size = size
        self.ndim = data.ndim
        self.pad = size // 2 if padding == "reflect" else 0
        _check_image_sides(data, size)
        # 2D images are mirrored once here; planes of 3D volumes when drawn
        self.images = [torch.from_numpy(np.ascontiguousarray(
            np.pad(im, self.pad, mode="symmetric") if (self.pad and im.ndim == 2) else im)) for im in data.images]

    def slices(self, indices: np.ndarray, axis: int, per_image: int, rng: np.random.Generator):
        import torch

        L = self.size
        out = []
        for idx in indices:
            im = self.images[int(idx)]
            for _ in range(per_image):
                if self.ndim == 3:
                    k = int(rng.integers(im.shape[axis]))
                    plane = im.select(axis, k)
                    if self.pad:
                        plane = torch.from_numpy(np.pad(plane.numpy(), self.pad, mode="symmetric"))
                else:
                    plane = im
                i0 = int(rng.integers(plane.shape[0] - L + 1))
                j0 = int(rng.integers(plane.shape[1] - L + 1))
                if self.ndim == 2 and rng.random() < 0.5:  # 2D data: random transpose (isotropy)
                    plane = plane.T
                    i0, j0 = j0, i0
                out.append(plane[i0:i0 + L, j0:j0 + L])
        return _one_hot_channels_first(torch.stack(out))


class _CubeSampler:
    """Random real sub-cubes (one-hot, ``b x 3 x L x L x L``) of 3D training volumes, one per sample index.

    The corner is uniform over the positions inside the volume (``padding="none"``) or inside the volume
    mirrored by ``L // 2`` on every side (``"reflect"``, ``numpy.pad(mode="symmetric")`` semantics, computed by
    index reflection instead of padding the volume). No flips or axis permutations: the slice sampler makes
    none for 3D data either, and axis 0 stays the through-plane axis.

    ``data`` must be 3D (:class:`Trainer` refuses ``critic="volume"`` with 2D images before any work).

    Raises:
        ConfigError: a volume side below ``size`` (``train_size``).
    """

    def __init__(self, data: TrainingData, size: int, padding: str = "none"):
        self.size = int(size)
        self.pad = self.size // 2 if padding == "reflect" else 0
        _check_image_sides(data, size)
        self.images = data.images

    def _axis_index(self, n: int, rng: np.random.Generator) -> np.ndarray:
        L, p = self.size, self.pad
        start = int(rng.integers(n + 2 * p - L + 1)) - p
        j = np.arange(start, start + L)
        j = np.where(j < 0, -j - 1, j)  # symmetric reflection: -1 -> 0, -2 -> 1, n -> n - 1
        return np.where(j >= n, 2 * n - 1 - j, j)

    def cubes(self, indices: np.ndarray, rng: np.random.Generator):
        import torch

        out = []
        for idx in indices:
            im = self.images[int(idx)]
            i, j, k = (self._axis_index(n, rng) for n in im.shape)
            out.append(np.ascontiguousarray(im[np.ix_(i, j, k)]))
        return _one_hot_channels_first(torch.from_numpy(np.stack(out)))


#: Phase pairs of :func:`interface_density`, in its column order.
INTERFACE_PAIRS: tuple[tuple[int, int], ...] = ((ACTIVE_MATERIAL, PORE), (ACTIVE_MATERIAL, CBD), (CBD, PORE))


def interface_density(prob):
    """Interface density of each phase pair: voxel faces between the two phases per face, averaged over the
    spatial axes (2D images and 3D volumes alike; for an isotropic structure the same value).

    For one-hot ``prob`` it is :func:`interface_density_of_labels`; the specific surface area by face
    counting (:func:`microdesign.characterise.surface.face_counting_ssa`) of a 3D cube of side ``L`` is then
    ``3 * density * (L - 1) / L * (2/3) / dx``. For probabilities it is the expected count for independent
    voxels, and differentiable.

    Args:
        prob: ``b x k x *spatial`` (2 or 3 spatial axes) phase probabilities or one-hot labels, ``k`` phases
            in label order.

    Returns:
        ``b x len(INTERFACE_PAIRS)`` tensor, columns in :data:`INTERFACE_PAIRS` order.
    """
    import torch

    axes = range(2, prob.dim())
    cols = []
    for a, b in INTERFACE_PAIRS:
        total = 0.0
        for ax in axes:
            m = prob.shape[ax] - 1
            pa, pb = prob[:, a].narrow(ax - 1, 0, m), prob[:, b].narrow(ax - 1, 0, m)
            qa, qb = prob[:, a].narrow(ax - 1, 1, m), prob[:, b].narrow(ax - 1, 1, m)
            total = total + (pa * qb + pb * qa).flatten(1).mean(1)
        cols.append(total / len(axes))
    return torch.stack(cols, dim=1)


def interface_density_of_labels(labels: np.ndarray) -> np.ndarray:
    """:func:`interface_density` of one label image or volume (``*spatial`` uint8), from boolean face counts
    (:func:`microdesign.characterise.surface.interface_face_counts_per_axis`; no one-hot copy): shape
    ``len(INTERFACE_PAIRS)``."""
    from microdesign.characterise.surface import interface_face_counts_per_axis

    labels = np.asarray(labels)
    faces = [labels.size // n * (n - 1) for n in labels.shape]  # faces normal to each axis
    return np.array([np.mean([c / f for c, f in zip(interface_face_counts_per_axis(labels, a, b), faces)])
                     for a, b in INTERFACE_PAIRS])


def design_labels(logits, fractions):
    """Labels of ``b`` generated cubes at given phase fractions (``b x k x *spatial`` scores, ``b x k``
    fractions): :func:`microdesign.generator.sampler.label_with_counts` per cube, without gradients, as
    ``Generator(phase_fractions="design", pore_neighbour_penalty=0)`` samples. Returns ``b x *spatial`` int64."""
    import torch

    from microdesign.generator.sampler import label_with_counts, voxel_counts

    n_voxels = int(np.prod(logits.shape[2:]))
    scores = logits.detach()
    return torch.cat([label_with_counts(scores[i:i + 1], voxel_counts(fractions[i].tolist(), n_voxels))
                      for i in range(logits.shape[0])]).long()


def generated_fractions(prob, labels: str = "softmax"):
    """Phase volume fractions ``b x k`` of generated cubes (``prob``: ``b x k x *spatial`` probabilities).

    ``labels="softmax"``: the mean probabilities. ``"argmax"``: the fractions of the argmax labels, with
    the gradient of the mean probabilities (straight-through estimator; Bengio et al., arXiv:1308.3432).

    Raises:
        ValueError: another ``labels``."""
    import torch

    if labels == "argmax":
        hard = torch.nn.functional.one_hot(prob.argmax(1), prob.shape[1]).movedim(-1, 1).to(prob.dtype)
        prob = hard + prob - prob.detach()
    elif labels not in PHASE_FRACTION_LABELS:
        raise ValueError(f"generated_fractions: labels {labels!r}, expected one of {PHASE_FRACTION_LABELS}")
    return prob.mean(dim=tuple(range(2, prob.dim())))


def straight_through_interface_density(prob, fractions=None, logits=None):
    """:func:`interface_density` of the labels of ``prob`` (``b x k x *spatial`` probabilities), with the
    gradient of the probabilities' density (straight-through estimator; Bengio et al., arXiv:1308.3432).

    The labels are the argmax, or with ``fractions`` (``b x k`` phase volume fractions, one row per
    volume) those of :func:`microdesign.generator.sampler.label_with_counts` at these fractions on
    ``logits`` (the scores before the softmax, same shape as ``prob``; required with ``fractions``: a
    trained network's float32 probabilities are exactly 0 or 1 in about half of the voxels, so their
    logarithms would tie where the scores do not).

    Raises:
        ValueError: ``fractions`` without ``logits``."""
    if fractions is None:
        labels = prob.argmax(1)
    elif logits is None:
        raise ValueError("straight_through_interface_density: fractions need the logits the labels are ranked by")
    else:
        labels = design_labels(logits, fractions)
    hard = _one_hot_channels_first(labels).to(prob.dtype)
    return interface_density(hard + prob - prob.detach())


def _fake_slices(volume, axis: int, per_image: int, gen):
    """``b x 3 x L x L x L`` -> ``(b * per_image) x 3 x L x L`` random slices along ``axis``."""
    import torch

    b, c, L = volume.shape[0], volume.shape[1], volume.shape[2]
    idx = torch.randint(0, L, (b, per_image), generator=gen).to(volume.device)
    vol = volume.movedim(2 + axis, 2)  # b x c x L(axis) x L x L
    gather_idx = idx.view(b, 1, per_image, 1, 1).expand(b, c, per_image, L, L)
    return torch.gather(vol, 2, gather_idx).permute(0, 2, 1, 3, 4).reshape(b * per_image, c, L, L)


def _gradient_penalty(critic, real, fake, cond, gen):
    """WGAN-GP penalty ``E[(|grad D(x_hat)| - 1)^2]`` at ``x_hat = a real + (1 - a) fake``, ``a ~ U(0, 1)`` per
    sample (Gulrajani et al., NeurIPS 2017); ``real``, ``fake``: ``b x c x *spatial`` (2D slices or 3D volumes)."""
    import torch

    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=gen).to(real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(x_hat, cond)
    grad = torch.autograd.grad(score.sum(), x_hat, create_graph=True)[0]
    return ((grad.reshape(grad.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


class Trainer:
    """One training run: networks, optimisers, random streams, step count and run folder.

    :func:`train` is the usual entry point (``Trainer(...)``, then :meth:`resume` or :meth:`start`, then
    :meth:`run`). One generator update (:meth:`train_step`) is ``critic_iters`` :meth:`critic_step` calls
    and one :meth:`generator_step`; :meth:`save` writes ``state.pt`` (everything :meth:`resume` needs),
    :meth:`export` the loadable checkpoint ``model/``. The random streams are drawn in a fixed order
    (numpy ``rng`` for training samples and real slices or sub-cubes, the torch generator ``gen`` for latents,
    fake slices and gradient-penalty mixing), so a resumed run continues exactly as an uninterrupted one.

    Args:
        data: training images and labels.
        settings: see :class:`TrainSettings`.
        out_dir: run folder (``state.pt``, ``losses.csv``, ``model/``), created.
        name: model name written into the checkpoint.
        export_dir: also copy each exported checkpoint here (e.g. ``models/<name>``).

    Raises:
        ConfigError: a training image smaller than ``settings.train_size``, a bad device, or
            ``critic="volume"`` with 2D training images.
    """

    def __init__(self, data: TrainingData, settings: TrainSettings, out_dir: str | Path, name: str,
                 export_dir: str | Path | None = None):
        import torch

        from microdesign.device import resolve_device
        from microdesign.generator.network import ConditionalCritic2D, ConditionalCritic3D, ConditionalGenerator3D

        if settings.critic == "volume" and data.ndim != 3:
            raise ConfigError("critic", settings.critic, "'slices' for 2D training images (a volume critic needs "
                              "3D training volumes)", context="train settings")
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        self.data, self.settings, self.name, self.export_dir = data, settings, name, export_dir
        self.device = torch.device(resolve_device(settings.device))
        self.amp = bool(settings.amp and self.device.type == "cuda")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.state_path, self.log_path = self.out_dir / "state.pt", self.out_dir / "losses.csv"
        self.model_dir = self.out_dir / "model"

        d = len(data.parameter_names)
        self.volume_critic = settings.critic == "volume"
        self.n_critics = 1 if self.volume_critic else (3 if data.ndim == 3 else 1)
        if self.volume_critic:
            self.sampler = _CubeSampler(data, settings.train_size, settings.window_padding)
        else:
            self.sampler = _SliceSampler(data, settings.train_size, settings.window_padding)
        self.cond_all = torch.as_tensor(data.normalised_labels(), dtype=torch.float32)
        self.frac_all = torch.as_tensor(np.stack([np.bincount(im.reshape(-1), minlength=N_PHASES)[:N_PHASES] / im.size
                                                  for im in data.images]), dtype=torch.float32)
        self.interface_all = None
        if settings.interface_weight > 0:  # per training sample, from its labels
            self.interface_all = torch.as_tensor(np.stack([interface_density_of_labels(im) for im in data.images]),
                                                 dtype=torch.float32)
        self.transport_targets, self.transport_residual = None, np.full(2, np.nan)
        if settings.transport_weight > 0:
            if data.ndim != 3:
                raise ConfigError("transport_weight", settings.transport_weight, "0 for 2D training images (the "
                                  "transport term needs 3D training volumes)", context="train settings")
            self.transport_targets = self._fit_transport_targets()
        self.transport_sq_residual = np.full(len(data.images), np.nan)  # per sample; see transport_priority
        torch.manual_seed(settings.seed)
        self.G = ConditionalGenerator3D(d, settings.latent_channels, settings.widths, N_PHASES,
                                        condition_every_layer=settings.condition_every_layer).to(self.device)
        critic_class = ConditionalCritic3D if self.volume_critic else ConditionalCritic2D
        self.Ds = [critic_class(d, N_PHASES, settings.critic_widths).to(self.device) for _ in range(self.n_critics)]
        betas = (settings.beta1, settings.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), settings.lr_generator, betas=betas)
        self.opt_d = [torch.optim.Adam(D.parameters(), settings.lr_critic, betas=betas) for D in self.Ds]
        self.rng = np.random.default_rng(settings.seed)
        self.gen = torch.Generator().manual_seed(settings.seed + 1)
        self.step, self.wall_before = 0, 0.0
        self.identity = {"dataset_hash": data.content_hash, "parameter_names": list(data.parameter_names),
                         "network": {k: v for k, v in settings.to_dict().items()
                                     if k in ("latent_channels", "widths", "critic_widths", "train_size")}}
        if settings.condition_every_layer:  # key absent from states written before the option existed
            self.identity["network"]["condition_every_layer"] = True
        if self.volume_critic:  # likewise: absent means "slices"
            self.identity["network"]["critic"] = "volume"
        self.init_record: dict | None = None
        self.latent_size = self.G.latent_size_for(settings.train_size)

    def _fit_transport_targets(self):
        """:class:`~microdesign.generator.transport_term.TransportTargets` of the training volumes (their
        ``train_size`` corner cubes), the per-volume values cached in ``out_dir/transport_targets.npz``
        under the dataset hash and cube size."""
        from microdesign.generator.transport_term import FLOOR, TransportTargets, labels_log_conductance

        L = self.settings.train_size
        key = f"{self.data.content_hash}/{L}/{FLOOR}"
        cache = self.out_dir / "transport_targets.npz"
        values = None
        if cache.is_file():
            with np.load(cache) as f:
                if str(f["key"]) == key:
                    values = f["values"]
        if values is None:
            t0 = time.perf_counter()
            values = labels_log_conductance(np.stack([im[:L, :L, :L] for im in self.data.images]))
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, key=key, values=values)
            tmp.replace(cache)
            logger.info("transport targets of %d training volumes in %.0f s", len(values), time.perf_counter() - t0)
        targets = TransportTargets(self.cond_all.numpy(), values)
        logger.info("transport targets (pore, solid): fit R^2 %s, volume scatter about the fit %s (log units)",
                    np.round(targets.r2, 3).tolist(), np.round(targets.residual_std, 3).tolist())
        return targets

    # ---------------------------------------------------------------------------- start / resume
    def resume(self) -> bool:
        """Continue from ``out_dir/state.pt`` if it exists; False (nothing changed) if it does not.

        Log rows written after the saved step are dropped (they will be redone).

        Raises:
            ConfigError: the state is for other data or another network, or not a training state.
        """
        if not self.state_path.is_file():
            return False
        state = _load_state(self.state_path, "resume")
        if state["identity"] != self.identity:
            raise ConfigError("resume", str(self.state_path), f"a state for the same data and network; it has "
                              f"{state['identity']}, this run {self.identity} (use a new out_dir or resume=false)")
        self._load_networks(state)
        self.rng.bit_generator.state = state["np_rng"]
        self.gen.set_state(state["torch_gen"])
        import torch

        torch.set_rng_state(state["torch_rng"])
        self.step, self.wall_before = int(state["step"]), float(state["wall_s"])
        if "transport_sq_residual" in state:  # absent from states written before transport_priority
            self.transport_sq_residual = np.asarray(state["transport_sq_residual"], dtype=float)
        logger.info("resumed %s at step %d (%.0f s trained before)", self.out_dir, self.step, self.wall_before)
        if self.log_path.exists():
            with open(self.log_path, newline="") as handle:
                rows = list(csv.reader(handle))
            kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= self.step]
            with open(self.log_path, "w", newline="") as handle:
                csv.writer(handle).writerows(kept)
        self.init_record = state.get("init_from")
        return True

    def start(self, init_from: str | Path | None = None) -> None:
        """Start a new run (an old ``losses.csv`` is removed), optionally warm-started (:meth:`warm_start`)."""
        if self.log_path.exists():
            self.log_path.unlink()
        if init_from is not None:
            self.warm_start(init_from)

    def warm_start(self, init_from: str | Path) -> None:
        """Copy networks and optimiser states from another run's ``state.pt`` (or its run folder), or the
        generator alone from an exported model folder (:meth:`_warm_start_from_model`); the step count
        stays 0 and this run's learning rates apply (see ``train(init_from=...)``).

        A state of the other critic kind (``TrainSettings.critic``: slices into a volume run or the reverse)
        gives the generator and its optimiser state only; this run's critic(s) keep their fresh initialisation
        (logged, and recorded as ``critic_copied: false`` in ``training.init_from``).

        Raises:
            ConfigError: no such state or model, not a training state, or one for another network (the training
                cube size and the critic kind may differ), other parameter names or another number of critics.
        """
        path = Path(init_from)
        if path.is_dir() and not (path / "state.pt").is_file() and (path / WEIGHTS_FILE).is_file():
            self._warm_start_from_model(path)
            return
        if path.is_dir():
            path = path / "state.pt"
        if not path.is_file():
            raise ConfigError("init_from", str(init_from), "a run folder with a state.pt, a state.pt file, or an "
                              "exported model folder (generator.pt + metadata.json)")
        state = _load_state(path, "init_from")
        theirs = dict(state["identity"]["network"])
        free = ("train_size", "critic")
        ours = {k: v for k, v in self.identity["network"].items() if k not in free}
        if {k: v for k, v in theirs.items() if k not in free} != ours:
            raise ConfigError("init_from", str(path), f"a state of the same network {ours} (the training cube "
                              f"size and the critic kind may differ); it has {theirs}")
        names = self.identity["parameter_names"]
        if list(state["identity"]["parameter_names"]) != list(names):
            raise ConfigError("init_from", str(path), f"a state conditioned on {names}; it is "
                              f"conditioned on {state['identity']['parameter_names']}")
        their_critic = theirs.get("critic", "slices")
        same_critic = their_critic == self.settings.critic
        if same_critic and len(state["D"]) != len(self.Ds):
            raise ConfigError("init_from", str(path), f"a state with {len(self.Ds)} critic(s) (3 for 3D volumes, 1 "
                              f"for 2D micrographs or a volume critic); it has {len(state['D'])}")
        self._load_networks(state, critics=same_critic)
        self.init_record = {"path": str(path.resolve()), "steps": int(state["step"]), "wall_s": float(state["wall_s"]),
                            "train_size": int(theirs["train_size"]), "dataset_hash": state["identity"]["dataset_hash"]}
        if not same_critic:
            self.init_record["critic_copied"] = False
            logger.info("warm start of %s: the source used critic=%s, this run critic=%s; generator and its optimiser "
                        "copied, critic initialised fresh", self.out_dir, their_critic, self.settings.critic)
        logger.info("warm start of %s from %s (%d steps at %d^3)", self.out_dir, self.init_record["path"],
                    self.init_record["steps"], self.init_record["train_size"])

    def _warm_start_from_model(self, folder: Path) -> None:
        """Generator weights from an exported model (``models/<name>/``); the critics and both optimisers
        start fresh (an export keeps neither). Recorded as ``training.init_from`` with ``critic_copied: false``;
        its ``steps`` and ``wall_s`` are the model's whole training where its metadata records a warm-start
        chain (``total_steps``, ``total_wall_s``), else those of its own run.

        Raises:
            ConfigError: another architecture or other conditioning parameters than this run's.
        """
        meta, weights, _ = load_checkpoint(folder)
        arch = meta.architecture
        ours = {"n_params": len(self.identity["parameter_names"]), "latent_channels": self.settings.latent_channels,
                "widths": list(self.settings.widths), "condition_every_layer": self.settings.condition_every_layer}
        theirs = {k: arch.get(k) for k in ours}
        theirs["widths"] = list(theirs["widths"] or [])
        if theirs != ours or list(meta.parameter_names) != list(self.identity["parameter_names"]):
            raise ConfigError("init_from", str(folder), f"a model of the same network {ours} conditioned on "
                              f"{self.identity['parameter_names']}; it has {theirs}, {list(meta.parameter_names)}")
        self.G.load_state_dict(weights)
        self.init_record = {"path": str(folder.resolve()), "model": meta.name,
                            "steps": int(meta.training.get("total_steps", meta.training.get("steps_done", 0))),
                            "wall_s": float(meta.training.get("total_wall_s", meta.training.get("wall_s", 0.0))),
                            "train_size": int(meta.training.get("train_size", 0)),
                            "dataset_hash": meta.dataset_hash, "critic_copied": False}
        logger.info("warm start of %s from the exported model %s (generator only; critics and optimisers fresh)",
                    self.out_dir, folder)

    def _load_networks(self, state: dict, critics: bool = True) -> None:
        """Networks and optimiser states from a saved state (``critics=False``: the generator and its optimiser
        only), then this run's learning rates and betas (``Optimizer.load_state_dict`` restores the saved
        parameter groups, rates included, so without this a resumed or warm-started run would silently keep
        the rates of the earlier run)."""
        self.G.load_state_dict(state["G"])
        self.opt_g.load_state_dict(state["opt_g"])
        if critics:
            for D, s in zip(self.Ds, state["D"], strict=True):
                D.load_state_dict(s)
            for o, s in zip(self.opt_d, state["opt_d"], strict=True):
                o.load_state_dict(s)
        st = self.settings
        for opt, lr in [(self.opt_g, st.lr_generator)] + [(o, st.lr_critic) for o in self.opt_d]:
            for group in opt.param_groups:
                group["lr"], group["betas"] = float(lr), (float(st.beta1), float(st.beta2))

    # ------------------------------------------------------------------------------- one update
    def _autocast(self):
        import torch

        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _latents(self, idx: np.ndarray):
        """Labels of training samples ``idx`` and fresh latent noise, on the device."""
        import torch

        st = self.settings
        lz = self.latent_size
        cond = self.cond_all[idx].to(self.device)
        z = torch.randn(len(idx), st.latent_channels, lz, lz, lz, generator=self.gen).to(self.device)
        return cond, z

    def critic_step(self, sums: np.ndarray) -> None:
        """One update of every critic on a fresh batch; adds ``[loss, W distance, gradient penalty]`` of each
        critic to ``sums`` (in place). With ``critic="volume"`` the one 3D critic scores the generated cubes
        (``b x 3 x L x L x L``) against ``b`` real sub-cubes, the penalty on interpolated volumes."""
        import torch

        st, S = self.settings, self.settings.slices_per_axis
        idx = self.rng.integers(len(self.data.images), size=st.batch_size)
        cond, z = self._latents(idx)
        with torch.no_grad(), self._autocast():
            fake_vol = self.G(z, cond).float()
        if self.volume_critic:
            real = self.sampler.cubes(idx, self.rng).to(self.device)
            sums += self._critic_update(self.Ds[0], self.opt_d[0], real, fake_vol, cond)
            return
        for a, (D, opt) in enumerate(zip(self.Ds, self.opt_d)):
            axis = a if self.n_critics == 3 else int(self.rng.integers(3))
            real = self.sampler.slices(idx, axis if self.data.ndim == 3 else 0, S, self.rng).to(self.device)
            fake = _fake_slices(fake_vol, axis, S, self.gen)
            sums += self._critic_update(D, opt, real, fake, cond.repeat_interleave(S, dim=0))

    def _critic_update(self, D, opt, real, fake, cond) -> np.ndarray:
        """One WGAN-GP step of critic ``D`` on ``real`` against ``fake`` (slices or volumes) with labels
        ``cond``; returns (loss, Wasserstein estimate, gradient penalty)."""
        with self._autocast():
            w = D(fake, cond).float().mean() - D(real, cond).float().mean()
            gp = _gradient_penalty(D, real, fake, cond, self.gen).float()
        loss = w + self.settings.gp_lambda * gp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return np.array([loss.item(), -w.item(), gp.item()])

    def generator_step(self):
        """One generator update on a fresh batch (critics frozen); returns the loss (a scalar tensor): minus the
        critic score(s) of the generated slices (or cubes, ``critic="volume"``), plus the phase-fraction and
        interface-density terms."""
        import torch

        st, S = self.settings, self.settings.slices_per_axis
        transport = st.transport_weight > 0 and self.step % st.transport_every == 0
        idx = self._transport_batch() if transport and st.transport_priority > 0 else \
            self.rng.integers(len(self.data.images), size=st.batch_size)
        cond, z = self._latents(idx)
        with self._autocast():
            fake_logits = self.G(z, cond, logits=True)
            fake_vol = torch.softmax(fake_logits, dim=1)
            g_loss = 0.0
            for a, D in enumerate(self.Ds):
                for p in D.parameters():
                    p.requires_grad_(False)
                if self.volume_critic:
                    g_loss = g_loss - D(fake_vol, cond).float().mean()
                else:
                    for ax in ([a] if self.n_critics == 3 else [0, 1, 2]):
                        fake = _fake_slices(fake_vol, ax, S, self.gen)
                        g_loss = g_loss - D(fake, cond.repeat_interleave(S, 0)).float().mean()
                for p in D.parameters():
                    p.requires_grad_(True)
            if st.phase_fraction_weight > 0:
                frac_fake = generated_fractions(fake_vol.float(), st.phase_fraction_labels)
                g_loss = g_loss + st.phase_fraction_weight * (
                    (frac_fake - self.frac_all[idx].to(self.device)) ** 2).sum(1).mean()
            if st.interface_weight > 0:
                fractions = self.frac_all[idx] if st.interface_labels == "design" else None
                dens = straight_through_interface_density(fake_vol.float(), fractions,  # labels' value, softmax gradient
                                                          fake_logits.float())
                g_loss = g_loss + st.interface_weight * (
                    (dens - self.interface_all[idx].to(self.device)) ** 2).sum(1).mean()
            if transport:
                g_loss = g_loss + st.transport_weight * self._transport_loss(idx, fake_logits.float())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return g_loss

    def _transport_loss(self, idx: np.ndarray, logits):
        """Mean over the batch of the squared residuals (pore, solid), weighted by
        ``transport_phase_weights``, of the generated cubes' log conductances against the fitted targets at
        their labels (:mod:`microdesign.generator.transport_term`); the mean residuals are kept in
        ``self.transport_residual`` (logged with the step)."""
        import torch

        from microdesign.generator.transport_term import log_conductance, phase_conductances, soft_pore

        labels = design_labels(logits, self.frac_all[idx])
        hard = (labels == PORE).to(logits.dtype)
        logc = log_conductance(phase_conductances(hard, soft_pore(logits, hard)))
        target = torch.as_tensor(self.transport_targets.predict(self.cond_all[idx].numpy()), dtype=logc.dtype,
                                 device=logc.device)
        resid = logc.reshape(2, len(idx)).T - target
        self.transport_residual = resid.detach().mean(0).cpu().numpy()
        weights = torch.as_tensor(self.settings.transport_phase_weights, dtype=resid.dtype, device=resid.device)
        sq = (resid.square() * weights).sum(1)
        self.transport_sq_residual[idx] = sq.detach().cpu().numpy()
        return sq.mean()

    def _transport_batch(self) -> np.ndarray:
        """Indices of a batch drawn by ``transport_priority`` (see :class:`TrainSettings`)."""
        r = self.transport_sq_residual
        seen = np.isfinite(r)
        top = r[seen].max() if seen.any() else 0.0
        if not top > 0:  # nothing measured yet, or every residual exactly 0
            w = np.ones_like(r)
        else:  # relative to the largest, so that a large exponent neither overflows nor underflows to 0
            w = np.where(seen, r / top, 1.0) ** self.settings.transport_priority
        return self.rng.choice(len(w), size=self.settings.batch_size, p=w / w.sum())

    def train_step(self) -> tuple[np.ndarray, float]:
        """One generator update after ``critic_iters`` critic updates; returns the critic sums (see
        :meth:`critic_step`) and the generator loss."""
        self.G.train()
        sums = np.zeros(3)
        for _ in range(self.settings.critic_iters):
            self.critic_step(sums)
        if self.step < self.settings.critic_warmup_steps:  # critics only (see TrainSettings.critic_warmup_steps)
            self.step += 1
            return sums, 0.0
        g_loss = self.generator_step()
        self.step += 1
        return sums, g_loss.item()

    # ------------------------------------------------------------------------------ files
    def save(self, wall: float) -> None:
        """Write ``state.pt`` atomically (networks, optimisers, random streams, step, wall time)."""
        import torch

        tmp = self.state_path.with_suffix(".tmp")
        torch.save({"identity": self.identity, "settings": self.settings.to_dict(), "step": self.step, "wall_s": wall,
                    "G": self.G.state_dict(), "D": [D.state_dict() for D in self.Ds],
                    "opt_g": self.opt_g.state_dict(), "opt_d": [o.state_dict() for o in self.opt_d],
                    "np_rng": self.rng.bit_generator.state, "torch_gen": self.gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "init_from": self.init_record,
                    "transport_sq_residual": self.transport_sq_residual}, tmp)
        tmp.replace(self.state_path)

    def export(self, wall: float, calibrate: bool) -> Path:
        """Write the loadable checkpoint ``model/`` (and ``export_dir``); ``calibrate``: re-estimate the
        batch-norm statistics of the copy first (:func:`_calibrate_batchnorm`)."""
        import copy

        import torch

        from microdesign import __version__

        st, data = self.settings, self.data
        net = copy.deepcopy(self.G).cpu()
        if calibrate and st.bn_calibration_batches > 0:
            _calibrate_batchnorm(net, self.cond_all, st, torch.Generator().manual_seed(st.seed + 2))
        record = {**st.to_dict(), "steps_done": self.step, "wall_s": round(wall, 1), "hardware": _hardware(self.device),
                  "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "n_training_samples": len(data.images), "training_data_ndim": data.ndim,
                  "batchnorm_calibrated": bool(calibrate)}
        if data.source_path:
            record["dataset_path"] = data.source_path
        if self.init_record is not None:
            record["init_from"] = self.init_record
        meta = CheckpointMetadata(
            name=self.name, parameter_names=tuple(data.parameter_names), parameter_units=tuple(data.parameter_units),
            training_bounds=dict(data.bounds), phases=PHASE_NAMES, voxel_size_m=float(data.voxel_size_m),
            dataset_hash=data.content_hash, dataset_description=data.description, package_version=__version__,
            architecture={"n_params": len(data.parameter_names), "latent_channels": st.latent_channels,
                          "widths": list(st.widths), "n_phases": N_PHASES,
                          "condition_every_layer": st.condition_every_layer},
            training=record)
        save_checkpoint(self.model_dir, meta, net.state_dict())
        if self.export_dir is not None:
            save_checkpoint(self.export_dir, meta, net.state_dict())
        return self.model_dir

    # -------------------------------------------------------------------------------- loop
    def run(self, progress: bool = True, max_wall_s: float | None = None) -> TrainResult:
        """Train up to ``settings.steps`` (logging, checkpointing), then save and export.

        Args:
            progress: show a tqdm progress bar.
            max_wall_s: stop (after saving) once this much time has passed in this run.

        Returns:
            :class:`TrainResult` (``status="failed"`` on a non-finite loss: training stops there).
        """
        from tqdm.auto import tqdm

        st = self.settings
        new_log = not self.log_path.exists()
        log_file = open(self.log_path, "a", newline="")
        writer = csv.writer(log_file)
        if new_log:
            writer.writerow(["step", "wall_s", "critic_loss", "wasserstein", "gradient_penalty", "generator_loss"]
                            + (["transport_residual_pore", "transport_residual_solid"] if st.transport_weight > 0 else []))
        t0 = time.perf_counter()
        bar = tqdm(total=st.steps, initial=self.step, disable=not progress, desc=f"train {self.name}", unit="step")
        status, reason = "ok", ""
        try:
            while self.step < st.steps:
                sums, g_loss = self.train_step()
                step = self.step
                bar.update(1)
                wall = self.wall_before + time.perf_counter() - t0
                if not np.isfinite(g_loss) or not np.all(np.isfinite(sums)):
                    status, reason = "failed", f"non-finite loss at step {step}"
                    logger.error("training %s diverged: %s", self.name, reason)
                    break
                if step % st.log_every == 0 or step == st.steps:
                    m = sums / (st.critic_iters * self.n_critics)
                    extra = [f"{r:.4g}" for r in self.transport_residual] if st.transport_weight > 0 else []
                    writer.writerow([step, f"{wall:.1f}", f"{m[0]:.5g}", f"{m[1]:.5g}", f"{m[2]:.5g}", f"{g_loss:.5g}"]
                                    + extra)
                    log_file.flush()
                    bar.set_postfix(W=f"{m[1]:.3f}", gp=f"{m[2]:.3f}")
                if step % st.checkpoint_every == 0 and step < st.steps:
                    self.save(wall)
                    self.export(wall, calibrate=False)
                if max_wall_s is not None and time.perf_counter() - t0 > max_wall_s:
                    logger.info("stopping %s after max_wall_s=%s at step %d", self.name, max_wall_s, step)
                    break
        finally:
            bar.close()
            log_file.close()
        wall = self.wall_before + time.perf_counter() - t0
        self.save(wall)
        model = self.export(wall, calibrate=True)
        logger.info("trained %s: %d steps, %.0f s, checkpoint %s", self.name, self.step, wall, model)
        return TrainResult(self.step, wall, model, self.log_path, status, reason)


def train(data: TrainingData, settings: TrainSettings, out_dir: str | Path, name: str,
          export_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
          max_wall_s: float | None = None, init_from: str | Path | None = None) -> TrainResult:
    """Train (or resume training) a conditional generator and export a checkpoint (a :class:`Trainer` run).

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
            A state of the other ``critic`` kind (slices or volume) gives the generator and its optimiser
            only; the critic starts fresh. An exported model folder (``models/<name>/``) gives the
            generator only (critics and optimisers fresh; see ``TrainSettings.critic_warmup_steps``).
            Ignored when ``out_dir`` already holds a state to resume.

    Returns:
        :class:`TrainResult`.

    Raises:
        ConfigError: inconsistent settings, a resume state for other data or another network, or an
            ``init_from`` state that is missing or for another network or design space; a resume or
            ``init_from`` file that is not a training state.
    """
    trainer = Trainer(data, settings, out_dir, name, export_dir)
    if not (resume and trainer.resume()):
        trainer.start(init_from)
    return trainer.run(progress, max_wall_s)


def _load_state(path: Path, name: str) -> dict:
    """A training state written by :meth:`Trainer.save`; ``ConfigError`` naming ``name`` where the file is not one."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a bad file
        raise ConfigError(name, str(path), f"a training state written by train-generator ({exc})") from exc
    keys = ("identity", "step", "wall_s", "G", "D", "opt_g", "opt_d")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise ConfigError(name, str(path), f"a training state written by train-generator (a dict with {keys})")
    return state


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
