"""Fidelity report of a generator: its volumes' metrics vs the training source's at held-out points.

Reference ``synthetic``: the synthetic line that built the generator's training dataset, rebuilt from
that dataset's provenance (line settings, voxel size, cube size; :mod:`microdesign.generator.reference`),
at each point, ``n_seeds`` seeds. ``reference.dataset=auto`` finds the dataset by the checkpoint's
recorded path or by content hash among ``reference.dataset_candidates``; ``conf/synth`` is only a
fallback for settings the provenance lacks (warned), and explicit values that contradict it are refused.
Reference ``volume``: random sub-cubes of one segmented image (a single-class generator trained on
it). Metrics by :class:`microdesign.characterise.Characteriser`; targets: phase fractions within
0.02 absolute, AM-pore specific surface area and through-plane pore tortuosity factor within 10 %.
Writes ``<output_dir>/<generator name>.md`` and ``.json``.

Examples::

    microdesign fidelity n_points=4 n_seeds=5
    microdesign fidelity generator.checkpoint=models/my_model reference.dataset=data/my_build.h5
    microdesign fidelity generator=nrel reference.kind=volume \
        reference.path=<data>/nrel_nmc1_cal_cbd_bridge.tif '+reference.label_map={0:0,1:1,2:2}'

``<data>``: the folder of the public NMC data sets (docs/public_data.md).
"""

from __future__ import annotations

NAME = "fidelity"
HELP = "compare generated volumes with the training source (phase fractions, SSA, tortuosity) at held-out points"
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

    log = logging.getLogger(__name__)
    t0 = time.perf_counter()
    n_seeds = int(cfg.n_seeds)
    if n_seeds < 1:
        raise ConfigError("n_seeds", cfg.n_seeds, "a positive number of cubes per point and source")
    if cfg.points is None and int(cfg.n_points) < 1:
        raise ConfigError("n_points", cfg.n_points, "a positive number of held-out points (or a list in points)")
    require_writable(cfg.output_dir, "output_dir", directory=True)
    gen = instantiate(cfg.generator)
    characteriser = instantiate(cfg.characteriser)
    ref_cfg = cfg.reference
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
        label_map = {int(k): int(v) for k, v in (ref_cfg.label_map or {}).items()}
        vox = ref_cfg.voxel_size_m if ref_cfg.voxel_size_m is not None else gen.voxel_size_m
        if not np.isclose(vox, gen.voxel_size_m, rtol=1e-6):
            raise ConfigError("reference.voxel_size_m", vox, f"the generator's voxel size {gen.voxel_size_m}")
        image = load_training_data(ref_cfg.path, voxel_size_m=vox, label_map=label_map or None,
                                   option="reference.path").images[0]
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
        raise ConfigError("reference.kind", ref_cfg.kind, "'synthetic' or 'volume'")
    if cfg.points is not None:
        points = [dict(p) for p in OmegaConf.to_container(cfg.points, resolve=True)]
    else:
        points = fidelity.held_out_points(gen.training_bounds, int(cfg.n_points), int(cfg.points_seed))
    reports = fidelity.evaluate(gen, reference, characteriser, points, n_seeds, L, seed=int(cfg.seed))
    wall = time.perf_counter() - t0
    title = (f"Fidelity of generator `{gen.name}` vs {ref_cfg.kind} reference: {len(points)} points x {n_seeds} "
             f"seeds, {L}^3 cubes, voxel {gen.voxel_size_m:.3g} m")
    md = fidelity.report_markdown(reports, title)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{gen.name}.md").write_text(md + f"\n\nReference: {ref_desc}. Wall time {wall:.0f} s.\n")
    write_json({
        "generator": gen.name, "reference": ref_desc, "size_voxels": L, "n_seeds": n_seeds, "wall_s": wall,
        "points": [{"params": r.params, "failures": r.failures,
                    "metrics": {c.metric: {"generated": c.generated.tolist(), "reference": c.reference.tolist(),
                                           "difference": c.difference, "kind": c.kind, "tolerance": c.tolerance,
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
