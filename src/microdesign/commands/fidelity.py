"""Fidelity report of a generator: its volumes' metrics vs the training source's at held-out points.

Reference ``synthetic``: the synthetic line that built the generator's training dataset, rebuilt from
that dataset's provenance (line settings, voxel size, cube size; :mod:`microdesign.generator.reference`),
at each point, ``n_seeds`` seeds. ``reference.dataset=auto`` finds the dataset by the checkpoint's
recorded path or by content hash among ``reference.dataset_candidates``; ``conf/synth`` is only a
fallback for settings the provenance lacks (warned), and explicit values that contradict it are refused.
Reference ``volume``: random sub-cubes of one segmented image (a single-class generator trained on
it). Metrics by :class:`microdesign.characterise.Characteriser`; targets: phase fractions within
0.02 absolute, AM-pore specific surface area and through-plane pore tortuosity factor within 10 %;
with ``solid_conductivity=true`` also the through-plane effective electronic conductivity of the solid
(the campaign's solve and bulk conductivities) within 10 % (off by default: the costliest solve).
Reference ``micrograph``: one segmented 2D image (a generator trained on it); slices of ``n_seeds``
generated cubes along all three axes are compared with it in 2D terms
(:mod:`microdesign.generator.fidelity_2d`: phase fractions, interface length per area of each phase
pair, two-point correlation ``S2``; settings under ``micrograph``).
Writes ``<output_dir>/<generator name>.md`` and ``.json``.

Examples::

    microdesign fidelity n_points=4 n_seeds=5
    microdesign fidelity solid_conductivity=true
    microdesign fidelity generator.checkpoint=models/my_model reference.dataset=data/my_build.h5
    microdesign fidelity generator=nrel reference.kind=volume \
        reference.path=<data>/nrel_nmc1_cal_cbd_bridge.tif '+reference.label_map={0:0,1:1,2:2}'
    microdesign fidelity generator=sem reference.kind=micrograph reference.downsample=4 \
        reference.path=<data>/sem_nmc_cathode_2d.tif '+reference.label_map={0:0,1:1,2:2}' n_seeds=8

``<data>``: the folder of the public NMC data sets (docs/public_data.md).
"""

from __future__ import annotations

NAME = "fidelity"
HELP = ("compare generated volumes with the training source (phase fractions, SSA, tortuosity, optionally the "
        "solid conductivity) at held-out points, "
        "or their slices with a 2D micrograph")
CONFIG_NAME = "fidelity"


def run(cfg) -> int:
    import logging
    import time
    from pathlib import Path

    import numpy as np
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from microdesign.data.files import require_writable, write_json
    from microdesign.errors import ConfigError
    from microdesign.generator import fidelity
    from microdesign.generator.sampler import describe_labelling

    log = logging.getLogger(__name__)
    t0 = time.perf_counter()
    n_seeds = int(cfg.n_seeds)
    if n_seeds < 1:
        raise ConfigError("n_seeds", cfg.n_seeds, "a positive number of cubes per point and source")
    if cfg.points is None and int(cfg.n_points) < 1:
        raise ConfigError("n_points", cfg.n_points, "a positive number of held-out points (or a list in points)")
    solid_conductivity = cfg.get("solid_conductivity", False)
    fidelity.targets(solid_conductivity)  # ConfigError unless a bool
    require_writable(cfg.output_dir, "output_dir", directory=True)
    ref_cfg = cfg.reference
    if ref_cfg.kind == "micrograph":
        if solid_conductivity:
            raise ConfigError("solid_conductivity", solid_conductivity,
                              "false with reference.kind=micrograph (a 2D image has no through-plane conductivity)")
        return _micrograph(cfg, instantiate(cfg.generator), t0)
    gen = instantiate(cfg.generator)
    characteriser = instantiate(cfg.characteriser)
    if ref_cfg.kind == "synthetic":
        line_ref = _synthetic_reference(cfg, gen)
        L = line_ref.size_voxels
        line = line_ref.line()

        def reference(params, n, seed):
            return np.stack([line.generate(params, L, voxel_size_m=line_ref.voxel_size_m, seed=seed + k)
                             for k in range(n)])

        ref_desc = line_ref.describe()
    elif ref_cfg.kind == "volume":
        from microdesign.generator.data import load_training_data
        from microdesign.generator.reference import DEFAULT_SIZE_VOXELS

        L = int(cfg.size_voxels) if cfg.size_voxels is not None else DEFAULT_SIZE_VOXELS
        image = _reference_image(ref_cfg, gen)
        if image.ndim != 3 or min(image.shape) < L:
            raise ConfigError("reference.path", str(ref_cfg.path), f"a 3D volume with every side >= {L}")

        def reference(params, n, seed):
            rng = np.random.default_rng(seed)
            cubes = []
            for _ in range(n):
                o = [int(rng.integers(s - L + 1)) for s in image.shape]
                cubes.append(image[o[0]:o[0] + L, o[1]:o[1] + L, o[2]:o[2] + L])
            return np.stack(cubes)

        ref_desc = f"random {L}^3 sub-cubes of {ref_cfg.path}"
    else:
        raise ConfigError("reference.kind", ref_cfg.kind, "'synthetic', 'volume' or 'micrograph'")
    if cfg.points is not None:
        points = [dict(p) for p in OmegaConf.to_container(cfg.points, resolve=True)]
    else:
        points = fidelity.held_out_points(gen.training_bounds, int(cfg.n_points), int(cfg.points_seed))
    reports = fidelity.evaluate(gen, reference, characteriser, points, n_seeds, L, seed=int(cfg.seed),
                                solid_conductivity=solid_conductivity)
    wall = time.perf_counter() - t0
    labels = gen.phase_fractions
    title = (f"Fidelity of generator `{gen.name}` vs {ref_cfg.kind} reference: {len(points)} points x {n_seeds} "
             f"seeds, {L}^3 cubes, voxel {gen.voxel_size_m:.3g} m, {describe_labelling(gen.labelling)}")
    md = fidelity.report_markdown(reports, title)
    if labels == "design":
        md += ("\n\nThe generated cubes take the design's phase volume fractions (phase_fractions=design): the "
               "phase-fraction rows agree by construction; generator.phase_fractions=argmax scores the network's own.")
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{gen.name}.md").write_text(md + f"\n\nReference: {ref_desc}. Wall time {wall:.0f} s.\n")
    write_json({
        "generator": gen.name, "reference": ref_desc, "size_voxels": L, "n_seeds": n_seeds, "wall_s": wall,
        "solid_conductivity": solid_conductivity, **gen.labelling,
        "points": [{"params": r.params, "failures": r.failures,
                    "metrics": {c.metric: {"generated": c.generated.tolist(), "reference": c.reference.tolist(),
                                           "difference": c.difference, "standard_error": c.standard_error,
                                           "kind": c.kind, "tolerance": c.tolerance,
                                           "passed": c.passed} for c in r.comparisons}} for r in reports]},
        out / f"{gen.name}.json")  # standard JSON: a metric without a value is null
    log.info("fidelity report -> %s\n%s", out / f"{gen.name}.md", md)
    return 0


def _synthetic_reference(cfg, gen):
    """The synthetic line that built the generator's training data (its dataset's provenance)."""
    from omegaconf import OmegaConf

    from microdesign.generator.reference import training_line_reference

    ref_cfg = cfg.reference
    return training_line_reference(
        gen, dataset=ref_cfg.dataset, candidates=list(ref_cfg.dataset_candidates or []),
        fallback=OmegaConf.to_container(ref_cfg.fallback_synth, resolve=True),
        overrides=OmegaConf.to_container(ref_cfg.synth, resolve=True) if ref_cfg.synth is not None else {},
        voxel_size_m=ref_cfg.voxel_size_m, size_voxels=cfg.size_voxels)


def _reference_image(ref_cfg, gen):
    """The segmented image ``reference.path`` (labels 0/1/2) at the generator's voxel size.

    ``reference.voxel_size_m`` is the file's pixel size; ``reference.downsample`` (default 1) coarse-grains
    the image by majority vote, as ``train-generator dataset.downsample`` does; their product must be the
    generator's voxel size.
    """
    import numpy as np
    from omegaconf import OmegaConf

    from microdesign.errors import ConfigError
    from microdesign.generator.data import load_training_data

    k = ref_cfg.get("downsample")
    k = 1 if k is None else k
    if isinstance(k, bool) or not float(k).is_integer() or int(k) < 1:
        raise ConfigError("reference.downsample", k, "an integer coarse-graining factor >= 1")
    k = int(k)
    vox = ref_cfg.voxel_size_m if ref_cfg.voxel_size_m is not None else gen.voxel_size_m / k
    if not np.isclose(vox * k, gen.voxel_size_m, rtol=1e-6):
        raise ConfigError("reference.voxel_size_m", vox, f"the generator's voxel size {gen.voxel_size_m}"
                          + (f" / reference.downsample {k}" if k > 1 else ""))
    # label map: file value (number or numeric string) -> phase label or name (data.importer.parse_grey_table)
    label_map = OmegaConf.to_container(ref_cfg.label_map, resolve=True) if ref_cfg.label_map is not None else None
    return load_training_data(ref_cfg.path, voxel_size_m=vox, label_map=label_map or None,
                              option="reference.path", downsample=k).images[0]


def _micrograph(cfg, gen, t0: float) -> int:
    """``reference.kind=micrograph``: slices of generated cubes vs one 2D image (generator.fidelity_2d)."""
    import logging
    import time
    from pathlib import Path

    from omegaconf import OmegaConf

    from microdesign.data.files import write_json
    from microdesign.errors import ConfigError
    from microdesign.generator import fidelity_2d

    mc = cfg.micrograph
    L = int(cfg.size_voxels) if cfg.size_voxels is not None else int(mc.size_voxels)
    if cfg.points is not None:
        points = [dict(p) for p in OmegaConf.to_container(cfg.points, resolve=True)]
    else:
        points = [{}] if not gen.parameter_names else []
    if len(points) != 1:
        raise ConfigError("points", cfg.points, "one point (the micrograph's process parameters) for a conditional "
                          f"generator ({list(gen.parameter_names)}); none for a single-class one")
    image = _reference_image(cfg.reference, gen)
    if image.ndim != 2:
        raise ConfigError("reference.path", str(cfg.reference.path), f"a 2D micrograph; it is {image.ndim}D "
                          "(reference.kind=volume compares with a 3D volume)")
    report = fidelity_2d.evaluate_generator(
        gen, image, int(cfg.n_seeds), L, seed=int(cfg.seed), params=points[0],
        r_max=mc.r_max, slice_stride=int(mc.slice_stride), n_windows=int(mc.n_windows),
        isotropic_correction=bool(mc.isotropic_correction))
    wall = time.perf_counter() - t0
    label = ", ".join(f"{k}={v:.4g}" for k, v in points[0].items()) or "unconditioned"
    title = (f"2D fidelity of generator `{gen.name}` ({label}) vs micrograph: slices along all three axes of "
             f"{report.n_cubes} cubes of {L}^3 (slice stride {report.slice_stride}), pixel {gen.voxel_size_m:.3g} m, "
             f"S2 up to {int(report.r_px[-1])} px")
    md = fidelity_2d.report_markdown(report, title)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref_desc = f"micrograph {cfg.reference.path}"
    (out / f"{gen.name}.md").write_text(md + f"\n\nReference: {ref_desc}. Wall time {wall:.0f} s.\n")
    write_json({"generator": gen.name, "reference": ref_desc, "kind": "micrograph", "params": points[0],
                "seed": int(cfg.seed), "wall_s": wall, **report.to_dict()}, out / f"{gen.name}.json")
    logging.getLogger(__name__).info("2D fidelity report -> %s\n%s", out / f"{gen.name}.md", md)
    return 0
