"""The generator stage: process parameters (physical units) + seed -> segmented 3D volumes."""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.device import resolve_device
from microdesign.errors import ConfigError
from microdesign.generator.checkpoint import LABELLINGS, CheckpointError, CheckpointMetadata, load_checkpoint
from microdesign.phases import PHASE_NAMES

logger = logging.getLogger(__name__)

OUT_OF_BOUNDS_MODES = ("error", "warn")
#: how :meth:`Generator.sample` turns the network's phase scores into labels
PHASE_FRACTION_MODES = (*LABELLINGS, "auto")
#: conditioning parameters that fix the design's phase volume fractions (``phase_fractions="design"``)
DESIGN_FRACTION_PARAMETERS = ("am_weight_fraction", "porosity")


class OutOfTrainingBoundsWarning(UserWarning):
    """A generator was asked for parameters outside its training envelope (``out_of_bounds: warn``)."""


class Generator:
    """A trained conditional generator, ready to sample volumes.

    Build it from a checkpoint folder with :meth:`from_checkpoint` (what ``conf/generator/*.yaml`` do)
    or, for tests, an untrained network with :meth:`untrained`.

    Attributes:
        parameter_names: conditioning parameters (tuple, may be empty for a single-class model).
        parameter_units: unit of each parameter.
        training_bounds: ``name -> (lower, upper)`` in physical units.
        voxel_size_m: voxel edge [m] of generated volumes.
        phases: phase names by label, ``("pore", "active_material", "cbd")``.
        metadata: the full :class:`CheckpointMetadata`.
        out_of_bounds: ``"error"`` (raise :class:`ConfigError`) or ``"warn"`` for requests outside
            the training bounds.
        phase_fractions: ``"argmax"`` (each voxel takes its most probable phase), ``"design"`` (each
            cube takes the design's phase volume fractions, see :meth:`sample`) or ``"auto"``
            (:func:`resolve_phase_fractions`: ``"design"`` for a generator conditioned on
            :data:`DESIGN_FRACTION_PARAMETERS`, else ``"argmax"``). The attribute holds the mode in use;
            a mode the checkpoint lists in ``labelling_caveats`` is logged as a warning with its caveat.
        carbon_to_binder_weight_ratio: carbon-to-binder weight ratio of the CBD used for the design's
            volume fractions (``"design"`` only); 1.0 as the synthetic line's default.
        pore_neighbour_penalty: ``"design"`` only: logits per pore face neighbour by which a solid
            voxel's AM margin is lowered (:func:`label_with_counts`), so that CBD stays on the
            pore-facing surface; 0 (the default of this class) ranks by the network's margins alone.
            ``conf/generator/shipped.yaml`` sets 2, chosen for the shipped model on calibration points
            disjoint from the fidelity sets and reference designs (docs/generator.md, "Phase fractions").
    """

    def __init__(self, network: Any, metadata: CheckpointMetadata, device: str = "cpu",
                 out_of_bounds: str = "error", batch_size: int = 2, phase_fractions: str = "argmax",
                 carbon_to_binder_weight_ratio: float = 1.0, pore_neighbour_penalty: float = 0.0):
        import torch

        if out_of_bounds not in OUT_OF_BOUNDS_MODES:
            raise ConfigError("out_of_bounds", out_of_bounds, f"one of {OUT_OF_BOUNDS_MODES}")
        if int(batch_size) < 1:
            raise ConfigError("batch_size", batch_size, "a positive integer")
        requested = phase_fractions
        phase_fractions = resolve_phase_fractions(phase_fractions, metadata.parameter_names,
                                                  metadata.parameter_units, metadata.name)
        if requested != phase_fractions:
            logger.info("generator %s: phase_fractions %s -> %s", metadata.name, requested, phase_fractions)
        if phase_fractions in metadata.labelling_caveats:
            logger.warning("generator %s with phase_fractions=%s: %s", metadata.name, phase_fractions,
                           metadata.labelling_caveats[phase_fractions])
        if not (np.isfinite(carbon_to_binder_weight_ratio) and carbon_to_binder_weight_ratio > 0):
            raise ConfigError("carbon_to_binder_weight_ratio", carbon_to_binder_weight_ratio, "a positive number")
        if not _is_penalty(pore_neighbour_penalty):
            raise ConfigError("pore_neighbour_penalty", pore_neighbour_penalty, "a finite number >= 0 [logits]")
        self.metadata = metadata
        self.device = torch.device(resolve_device(device))
        self.network = network.to(self.device).eval()
        self.out_of_bounds = out_of_bounds
        self.batch_size = int(batch_size)
        self.phase_fractions = phase_fractions
        self.carbon_to_binder_weight_ratio = float(carbon_to_binder_weight_ratio)
        self.pore_neighbour_penalty = float(pore_neighbour_penalty)

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str = "cpu", out_of_bounds: str = "error",
                        batch_size: int = 2, expected_parameter_names: Sequence[str] | None = None,
                        expected_voxel_size_m: float | None = None, phase_fractions: str = "argmax",
                        carbon_to_binder_weight_ratio: float = 1.0, pore_neighbour_penalty: float = 0.0) -> Generator:
        """Load a validated checkpoint folder.

        Args:
            checkpoint: folder path, or a model name under ``models/`` (:func:`microdesign.config.models_dir`).
            device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
            out_of_bounds: ``"error"`` or ``"warn"``.
            batch_size: volumes per network call when sampling (memory only; results do not depend on it).
            expected_parameter_names: if given, the checkpoint's parameter names must equal these
                (order-insensitive), e.g. the design space's microstructure parameters.
            expected_voxel_size_m: if given, the checkpoint's voxel size must match (relative 1e-6).
            phase_fractions, carbon_to_binder_weight_ratio, pore_neighbour_penalty: see the class.

        Raises:
            CheckpointError: missing, corrupted or mismatched checkpoint.
            ConfigError: a bad ``out_of_bounds``, ``batch_size``, ``phase_fractions`` or ``pore_neighbour_penalty``.
        """
        from microdesign.generator.network import ConditionalGenerator3D

        meta, state, directory = load_checkpoint(checkpoint)
        if expected_parameter_names is not None and set(expected_parameter_names) != set(meta.parameter_names):
            raise CheckpointError(directory, f"conditions on {list(meta.parameter_names)}",
                                  f"the parameters {sorted(expected_parameter_names)}")
        if expected_voxel_size_m is not None and not np.isclose(meta.voxel_size_m, expected_voxel_size_m,
                                                                rtol=1e-6, atol=0):
            raise CheckpointError(directory, f"voxel_size_m = {meta.voxel_size_m}",
                                  f"voxel_size_m = {expected_voxel_size_m}")
        arch = meta.architecture
        network = ConditionalGenerator3D(n_params=int(arch["n_params"]), latent_channels=int(arch["latent_channels"]),
                                         widths=tuple(arch["widths"]), n_phases=int(arch["n_phases"]),
                                         condition_every_layer=bool(arch.get("condition_every_layer", False)))
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(directory, f"weights do not fit the recorded architecture {arch} ({exc})",
                                  "weights saved with that architecture") from exc
        from microdesign import __version__

        if meta.package_version.split(".")[:1] != __version__.split(".")[:1]:
            logger.warning("generator %s was trained with microdesign %s, running %s", meta.name,
                           meta.package_version, __version__)
        logger.info("loaded generator %s (%s) from %s", meta.name, ", ".join(meta.parameter_names) or "unconditioned",
                    directory)
        return cls(network, meta, device=device, out_of_bounds=out_of_bounds, batch_size=batch_size,
                   phase_fractions=phase_fractions, carbon_to_binder_weight_ratio=carbon_to_binder_weight_ratio,
                   pore_neighbour_penalty=pore_neighbour_penalty)

    @classmethod
    def untrained(cls, parameter_names: Sequence[str], training_bounds: Mapping[str, Sequence[float]],
                  parameter_units: Sequence[str] | None = None, voxel_size_m: float = 1.0e-6,
                  latent_channels: int = 4, widths: Sequence[int] = (8, 8, 4, 4), seed: int = 0,
                  device: str = "cpu", out_of_bounds: str = "error", batch_size: int = 2,
                  phase_fractions: str = "argmax", carbon_to_binder_weight_ratio: float = 1.0,
                  pore_neighbour_penalty: float = 0.0) -> Generator:
        """A randomly initialised generator (for tests and dry runs; its volumes are noise).

        Args:
            parameter_names: conditioning parameters.
            training_bounds: ``name -> [lower, upper]``.
            parameter_units: units (default ``"1"`` each).
            voxel_size_m: voxel edge [m].
            latent_channels, widths: network size.
            seed: initialisation seed.
            device, out_of_bounds, batch_size, phase_fractions, carbon_to_binder_weight_ratio,
                pore_neighbour_penalty: see the class.
        """
        import torch

        from microdesign import __version__
        from microdesign.generator.network import ConditionalGenerator3D

        names = tuple(parameter_names)
        units = tuple(parameter_units) if parameter_units is not None else ("1",) * len(names)
        arch = {"n_params": len(names), "latent_channels": int(latent_channels),
                "widths": tuple(int(w) for w in widths), "n_phases": len(PHASE_NAMES)}
        data = {"name": "untrained", "parameter_names": names, "parameter_units": units,
                "training_bounds": {k: list(training_bounds[k]) for k in names}, "phases": PHASE_NAMES,
                "voxel_size_m": voxel_size_m, "dataset_hash": "none", "dataset_description": "untrained",
                "package_version": __version__, "architecture": arch, "training": {"steps": 0, "seed": seed},
                "format_version": 1}
        meta = CheckpointMetadata.from_dict(data, "untrained")
        torch.manual_seed(seed)
        network = ConditionalGenerator3D(**{**arch, "widths": arch["widths"]})
        return cls(network, meta, device=device, out_of_bounds=out_of_bounds, batch_size=batch_size,
                   phase_fractions=phase_fractions, carbon_to_binder_weight_ratio=carbon_to_binder_weight_ratio,
                   pore_neighbour_penalty=pore_neighbour_penalty)

    # -- attributes -----------------------------------------------------------------------------------
    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.metadata.parameter_names

    @property
    def parameter_units(self) -> tuple[str, ...]:
        return self.metadata.parameter_units

    @property
    def training_bounds(self) -> dict[str, tuple[float, float]]:
        return dict(self.metadata.training_bounds)

    @property
    def voxel_size_m(self) -> float:
        return self.metadata.voxel_size_m

    @property
    def phases(self) -> tuple[str, ...]:
        return self.metadata.phases

    @property
    def name(self) -> str:
        return self.metadata.name

    # -- validation -----------------------------------------------------------------------------------
    def normalise(self, params: Mapping[str, float]) -> np.ndarray:
        """Check ``params`` and map them to the unit cube of the training bounds.

        Args:
            params: ``name -> value`` in physical units; exactly :attr:`parameter_names`.

        Returns:
            Normalised parameters, shape ``d``, in network channel order.

        Raises:
            ConfigError: missing or unknown names, non-finite values, or (``out_of_bounds="error"``) a
                value outside the training bounds. With ``"warn"`` an out-of-bounds request warns
                (:class:`OutOfTrainingBoundsWarning`) and is passed on unclipped.
        """
        params = dict(params)
        missing = [k for k in self.parameter_names if k not in params]
        unknown = [k for k in params if k not in self.parameter_names]
        if missing or unknown:
            raise ConfigError("params", sorted(params), f"exactly the generator's parameters "
                              f"{list(self.parameter_names)} (missing {missing}, unknown {unknown})",
                              context=f"generator {self.name}")
        out = np.empty(len(self.parameter_names))
        for i, name in enumerate(self.parameter_names):
            try:
                value = float(params[name])
            except (TypeError, ValueError) as exc:
                raise ConfigError(name, params[name], "a real number", context=f"generator {self.name}") from exc
            if not np.isfinite(value):
                raise ConfigError(name, value, "a finite number", context=f"generator {self.name}")
            lo, hi = self.metadata.training_bounds[name]
            tol = 1e-9 * (hi - lo)
            if not (lo - tol <= value <= hi + tol):
                expected = f"a value inside the training bounds [{lo}, {hi}] (the generator never extrapolates)"
                if self.out_of_bounds == "error":
                    raise ConfigError(name, value, expected, context=f"generator {self.name}")
                warnings.warn(f"{name} = {value} outside the training bounds [{lo}, {hi}] of generator "
                              f"{self.name}: extrapolating", OutOfTrainingBoundsWarning, stacklevel=3)
            out[i] = (value - lo) / (hi - lo)
        return out

    # -- sampling -------------------------------------------------------------------------------------
    def sample(self, params: Mapping[str, float], n: int = 1, size_voxels: int = 64, seed: int = 0) -> np.ndarray:
        """Generate ``n`` segmented cubes at one parameter point.

        Args:
            params: ``name -> value`` in physical units (see :attr:`parameter_units`).
            n: number of cubes.
            size_voxels: cube side ``L`` in voxels (any ``L >= 1``; the network emits the next size it
                can make and the cube is cropped from its centre).
            seed: seed of the latent noise; the same seed and parameters give the same volumes on the
                same device, independent of ``batch_size``.

        Returns:
            ``n x L x L x L`` uint8 labels, 0 pore, 1 active material, 2 CBD (:mod:`microdesign.phases`).
            With ``phase_fractions="argmax"`` each voxel takes its most probable phase. With ``"design"``
            each cube takes the phase volume fractions of the design, each within one voxel: the
            formulation's X_i = (1 - eps)(w_i/rho_i)/sum_j(w_j/rho_j) from ``am_weight_fraction`` and
            ``porosity`` (Thomitzek et al., Sustainability 14 (2022) 1530;
            :func:`microdesign.synth.line.phase_volume_fractions`), which every volume of the
            synthetic line, the shipped generator's training source, has by construction
            (docs/synthetic_line.md). The labels are assigned by :func:`label_with_counts` from the
            network's scores before the softmax.

        Raises:
            ConfigError: bad ``params`` (see :meth:`normalise`), ``n < 1`` or ``size_voxels < 1``, or
                volumes that do not fit in the memory available (:meth:`check_memory`).
        """
        import torch

        if int(n) != n or n < 1:
            raise ConfigError("n", n, "a positive integer number of volumes")
        if int(size_voxels) != size_voxels or size_voxels < 1:
            raise ConfigError("size_voxels", size_voxels, "a positive integer cube side")
        n, size = int(n), int(size_voxels)
        self.check_memory(n, size)
        cond_np = self.normalise(params)
        net = self.network
        lz = net.latent_size_for(size)
        full = net.output_size(lz)
        start = (full - size) // 2
        rng = torch.Generator(device="cpu").manual_seed(int(seed))
        z_all = torch.randn(n, net.latent_channels, lz, lz, lz, generator=rng)
        out = np.empty((n, size, size, size), dtype=np.uint8)
        out_t = torch.from_numpy(out)  # shares memory: labels are written in place, no extra copy
        cond_t = torch.as_tensor(cond_np, dtype=torch.float32, device=self.device)
        counts = self.design_voxel_counts(params, size**3) if self.phase_fractions == "design" else None
        with torch.inference_mode():
            for i in range(0, n, self.batch_size):
                z = z_all[i:i + self.batch_size].to(self.device)
                prob = net(z, cond_t.expand(z.shape[0], -1), logits=counts is not None)[
                    ..., start:start + size, start:start + size, start:start + size]
                labels = out_t[i:i + z.shape[0]]
                if counts is not None:
                    labels.copy_(label_with_counts(prob, counts, self.pore_neighbour_penalty).cpu())
                elif self.device.type == "cpu":
                    argmax_uint8(prob, labels)
                else:
                    labels.copy_(argmax_uint8(prob, torch.empty(labels.shape, dtype=torch.uint8, device=self.device)))
        return out

    @property
    def labelling(self) -> dict[str, Any]:
        """How :meth:`sample` labels voxels, for reports and provenance: ``{"phase_fractions": mode,
        "pore_neighbour_penalty": logits}`` (the penalty is 0.0 under ``"argmax"``, where it is unused)."""
        return labelling_record(self.phase_fractions, self.pore_neighbour_penalty)

    def design_voxel_counts(self, params: Mapping[str, float], n_voxels: int) -> tuple[int, ...]:
        """Voxels per phase (pore, AM, CBD) of a cube of ``n_voxels`` at the design's phase volume
        fractions (see :meth:`sample`), each within one voxel (:func:`voxel_counts`).

        Args:
            params: checked parameters (:meth:`normalise`) with ``am_weight_fraction`` and ``porosity``.
            n_voxels: voxels of the cube.

        Raises:
            ConfigError: a formulation without phase volume fractions (from
                :class:`microdesign.process.formulation.Formulation`).
        """
        from microdesign.synth.line import phase_volume_fractions

        fractions = phase_volume_fractions(float(params["am_weight_fraction"]), float(params["porosity"]),
                                           self.carbon_to_binder_weight_ratio)
        return voxel_counts([fractions[name] for name in PHASE_NAMES], n_voxels)

    def memory_bytes(self, n: int, size_voxels: int) -> tuple[int, int]:
        """Estimated memory of :meth:`sample` [bytes]: ``(on the device, on the host)``.

        Device: one batch's forward pass (:meth:`ConditionalGenerator3D.peak_bytes`) x 1.5 for the
        convolutions' workspace and the allocator (measured on a CPU with the shipped generator: peak
        memory growth 1.3-1.45 x the activations at L = 128-256), plus its labels. Host: the
        ``n x L^3`` uint8 result and the latent noise of every volume (float32); on a CPU the two add up.
        """
        net = self.network
        lz = net.latent_size_for(int(size_voxels))
        batch = min(int(n), self.batch_size)
        device = int(1.5 * net.peak_bytes(batch, lz)) + batch * net.output_size(lz) ** 3
        host = int(n) * int(size_voxels) ** 3 + 4 * int(n) * net.latent_channels * lz**3
        return device, host

    def check_memory(self, n: int, size_voxels: int) -> None:
        """Refuse a request whose estimated memory (:meth:`memory_bytes`) exceeds what is available:
        free host memory (``psutil.virtual_memory().available``) and, on a GPU, free device memory
        (``torch.cuda.mem_get_info``).

        Raises:
            ConfigError: naming ``size_voxels``, the estimate and the memory available.
        """
        import psutil

        device, host = self.memory_bytes(n, size_voxels)
        gib = 2.0**30
        where = [("host", host + (device if self.device.type == "cpu" else 0), psutil.virtual_memory().available)]
        if self.device.type == "cuda":
            import torch

            where.append((str(self.device), device, torch.cuda.mem_get_info(self.device)[0]))
        for name, need, free in where:
            if need > free:
                raise ConfigError("size_voxels", size_voxels,
                                  f"cubes that fit in memory: {n} x {size_voxels}^3 needs about {need / gib:.3g} GiB "
                                  f"of {name} memory at batch_size {min(int(n), self.batch_size)}, "
                                  f"{free / gib:.3g} GiB is available (smaller cubes, or n / batch_size lower)")

    def __repr__(self) -> str:
        return (f"Generator(name={self.name!r}, parameters={list(self.parameter_names)}, "
                f"voxel_size_m={self.voxel_size_m:g}, device={self.device})")


def argmax_uint8(prob, out):
    """``out[...] = prob.argmax(dim=1)`` as uint8 labels, written in place.

    Identical to :func:`torch.argmax` over the phase axis (the first maximal phase wins a tie) for
    finite probabilities, but without its int64 result and its strided reduction over the phase
    axis, which took ~0.4 s of a 0.8 s 128^3 sample on a 2-core CPU: one comparison and one masked
    fill per phase instead (~0.01 s).

    Args:
        prob: ``b x k x *spatial`` finite scores (softmax probabilities), any strides.
        out: ``b x *spatial`` uint8 tensor on ``prob``'s device.

    Returns:
        ``out``.
    """
    import torch

    out.zero_()
    best = prob[:, 0]
    for j in range(1, prob.shape[1]):
        pj = prob[:, j]
        out.masked_fill_(pj > best, j)  # strict: an earlier phase keeps a tie, as torch.argmax
        if j + 1 < prob.shape[1]:
            best = torch.maximum(best, pj)
    return out


def resolve_phase_fractions(mode: str, parameter_names: Sequence[str], parameter_units: Sequence[str] | None = None,
                            name: str = "generator") -> str:
    """The labelling a generator uses for a ``phase_fractions`` setting (see :class:`Generator`).

    Args:
        mode: ``"argmax"``, ``"design"`` or ``"auto"``.
        parameter_names, parameter_units: what the generator conditions on (units default to ``"1"``).
        name: the generator's name, for messages.

    Returns:
        ``"argmax"`` or ``"design"`` (``"auto"``: ``"design"`` for a generator conditioned on
        :data:`DESIGN_FRACTION_PARAMETERS` as fractions, unit ``"1"``, else ``"argmax"``).

    Raises:
        ConfigError: an unknown mode, or ``"design"`` for a generator without those parameters.
    """
    if mode not in PHASE_FRACTION_MODES:
        raise ConfigError("phase_fractions", mode, f"one of {PHASE_FRACTION_MODES}")
    units = dict(zip(parameter_names, parameter_units or ["1"] * len(parameter_names)))
    missing = [k for k in DESIGN_FRACTION_PARAMETERS if units.get(k) != "1"]
    if mode == "auto":
        return "argmax" if missing else "design"
    if mode == "design" and missing:
        raise ConfigError("phase_fractions", mode,
                          f"'argmax' (generator.phase_fractions=argmax on the command line) for a generator "
                          f"not conditioned on {list(DESIGN_FRACTION_PARAMETERS)} as fractions (unit '1'): "
                          f"{name} conditions on {units}")
    return mode


def voxel_counts(fractions: Sequence[float], n_voxels: int) -> tuple[int, ...]:
    """Voxels per phase of a volume of ``n_voxels`` at volume ``fractions``, each within one voxel.

    Largest-remainder rounding: every phase gets the floor of ``fraction x n_voxels``, and the voxels
    left over go one each to the phases with the largest fractional parts.

    Args:
        fractions: one volume fraction per phase, each in [0, 1], summing to 1 (within 1e-6).
        n_voxels: voxels of the volume (>= 0).

    Returns:
        Non-negative voxel counts summing to ``n_voxels``.

    Raises:
        ValueError: fractions that are not finite, negative, or do not sum to 1.
    """
    f = np.asarray(fractions, dtype=float)
    if not (np.all(np.isfinite(f)) and np.all(f >= 0) and abs(f.sum() - 1.0) <= 1e-6):
        raise ValueError(f"fractions {f.tolist()}: expected finite volume fractions >= 0 summing to 1")
    exact = f / f.sum() * int(n_voxels)
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:int(n_voxels) - int(counts.sum())]] += 1
    return tuple(int(c) for c in counts)


def label_with_counts(scores, counts, pore_neighbour_penalty: float = 0.0):
    """Labels with exactly ``counts[j]`` voxels of phase ``j`` in every volume.

    Phases are assigned in label order: phase ``j`` takes the ``counts[j]`` still unassigned voxels
    with the largest margin ``scores[j] - max(scores[j+1:])`` (the phase's generated region, grown
    or shrunk where the network was least sure), the last phase the remainder. With counts equal to
    those of the argmax and no penalty the result is the argmax (for distinct scores).

    With ``pore_neighbour_penalty`` > 0 the margin of every phase after the first (pore) is lowered by
    that many score units per face neighbour already labelled as the first phase: of the solid voxels
    where the network was unsure between AM and CBD, those facing the pore go to CBD first, so the CBD
    the counts remove is taken away from inside the solid before the films on the pore-facing surface
    (docs/generator.md, "Phase fractions"). Voxels outside the volume count as not pore.

    Args:
        scores: ``b x k x *spatial`` finite phase scores (logits or probabilities).
        counts: ``k`` non-negative voxel counts summing to the voxels of one volume.
        pore_neighbour_penalty: score units (logits for the generator) per face neighbour of the first
            phase; 0 ranks by the margin alone.

    Returns:
        ``b x *spatial`` uint8 labels on ``scores``' device.

    Raises:
        ValueError: counts of the wrong length, negative, not integers or not summing to the voxels per
            volume; scores that are not finite; a ``pore_neighbour_penalty`` that is not a finite real
            number >= 0.
    """
    import torch

    b, k = scores.shape[:2]
    spatial = scores.shape[2:]
    n_voxels = int(np.prod(spatial))
    if (len(counts) != k or any(int(c) != c for c in counts) or min(counts) < 0 or sum(counts) != n_voxels):
        raise ValueError(f"counts {tuple(counts)}: expected {k} non-negative integer voxel counts summing to "
                         f"{n_voxels}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores: expected finite phase scores (NaN or infinite values found)")
    if not _is_penalty(pore_neighbour_penalty):
        raise ValueError(f"pore_neighbour_penalty {pore_neighbour_penalty!r}: expected a finite number >= 0")
    flat = scores.reshape(b, k, n_voxels)
    labels = torch.full((b, n_voxels), k - 1, dtype=torch.uint8, device=scores.device)
    free = torch.ones((b, n_voxels), dtype=torch.bool, device=scores.device)
    penalty = None
    for j in range(k - 1):
        if counts[j] == 0:
            continue
        margin = (flat[:, j] - flat[:, j + 1:].amax(dim=1)).masked_fill_(~free, -torch.inf)
        if penalty is not None:
            margin -= penalty
        # the counts[j]-th largest margin (a selection, not a sort), then as many of its ties as needed
        threshold = torch.kthvalue(margin, n_voxels - int(counts[j]) + 1, dim=1).values[:, None]
        chosen = margin > threshold
        ties = margin == threshold
        chosen |= ties & (ties.cumsum(dim=1) <= int(counts[j]) - chosen.sum(dim=1, keepdim=True))
        labels.masked_fill_(chosen, j)
        free &= ~chosen
        if j == 0 and k > 2 and pore_neighbour_penalty > 0:
            penalty = pore_neighbour_penalty * face_neighbour_counts(chosen.reshape(b, *spatial)).reshape(b, n_voxels)
    return labels.reshape(b, *spatial)


def _is_penalty(value: Any) -> bool:
    """A finite real number >= 0 (not a bool)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(value))
            and value >= 0)


def labelling_record(phase_fractions: str, pore_neighbour_penalty: float) -> dict[str, Any]:
    """``{"phase_fractions", "pore_neighbour_penalty"}`` as :meth:`Generator.sample` applies them: the
    penalty acts only under ``"design"`` and is recorded as 0.0 otherwise (:attr:`Generator.labelling`,
    the error table's key)."""
    return {"phase_fractions": phase_fractions,
            "pore_neighbour_penalty": float(pore_neighbour_penalty) if phase_fractions == "design" else 0.0}


def describe_labelling(labelling: Mapping[str, Any]) -> str:
    """``"phase_fractions=design, pore_neighbour_penalty=2"`` for :attr:`Generator.labelling` (the penalty
    only where it acts), for report titles and benchmark rows."""
    penalty = float(labelling.get("pore_neighbour_penalty", 0.0))
    return f"phase_fractions={labelling['phase_fractions']}" + (f", pore_neighbour_penalty={penalty:g}" if penalty else "")


def face_neighbour_counts(mask):
    """Number of face neighbours (2 per axis) inside ``mask`` of every voxel, for ``b x *spatial`` boolean
    masks; voxels outside the volume count as outside the mask.

    Returns:
        ``b x *spatial`` float32 counts on ``mask``'s device (0 to 2 × the number of spatial axes).
    """
    import torch

    m = mask.to(torch.float32)
    out = torch.zeros_like(m)
    for axis in range(1, m.dim()):
        n = m.shape[axis]
        if n < 2:
            continue
        out.narrow(axis, 1, n - 1).add_(m.narrow(axis, 0, n - 1))
        out.narrow(axis, 0, n - 1).add_(m.narrow(axis, 1, n - 1))
    return out
