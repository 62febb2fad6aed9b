"""Sample segmented 3D volumes from a generator at one parameter point.

Writes ``n`` cubes of side ``size_voxels`` (labels 0 pore, 1 AM, 2 CBD) to ``output``: a ``.h5``
microdesign dataset (volumes with their parameter labels, voxel size and provenance), or ``.tif`` /
``.npy`` files (one per volume, ``<stem>_<i>``).

Example::

    microdesign sample params.porosity=0.3 n=4 size_voxels=128 seed=1 output=runs/sample/p30.h5
"""

from __future__ import annotations

NAME = "sample"
HELP = "generate segmented 3D volumes (n x L^3, uint8 0/1/2) from a generator at a parameter point"
CONFIG_NAME = "sample"


def run(cfg) -> int:
    import logging
    import time
    from pathlib import Path

    import numpy as np
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from microdesign.data.files import require_writable
    from microdesign.errors import ConfigError

    log = logging.getLogger(__name__)
    out = Path(cfg.output)
    suffix = out.suffix.lower()
    if suffix not in (".h5", ".hdf5", ".tif", ".tiff", ".npy"):
        raise ConfigError("output", str(out), "a path ending in .h5, .hdf5, .tif, .tiff or .npy")
    require_writable(out, "output")
    gen = instantiate(cfg.generator)
    params = OmegaConf.to_container(cfg.params, resolve=True) or {}
    if cfg.ignore_unknown_params:
        # only the shipped defaults are dropped (conf/sample.yaml, for a generator such as nrel that has
        # no such parameter); a name added by the user that the generator lacks is a mistake
        from microdesign.config import compose

        defaults = set(compose("sample", []).params or {})
        added = [k for k in params if k not in gen.parameter_names and k not in defaults]
        if added:
            import difflib

            close = difflib.get_close_matches(added[0], list(gen.parameter_names), n=3, cutoff=0.6)
            raise ConfigError(f"params.{added[0]}", params[added[0]], f"a parameter of generator {gen.name} "
                              + (f"(did you mean {close}?)" if close else f"{list(gen.parameter_names)}"))
        params = {k: v for k, v in params.items() if k in gen.parameter_names}
    t0 = time.perf_counter()
    vols = gen.sample(params, n=int(cfg.n), size_voxels=int(cfg.size_voxels), seed=int(cfg.seed))
    dt = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".h5", ".hdf5"):
        from microdesign.data.dataset import write_dataset

        write_dataset(out, vols, [params] * len(vols), {k: u for k, u in zip(gen.parameter_names, gen.parameter_units)},
                      gen.voxel_size_m, provenance={"command": "microdesign sample", "generator": gen.name,
                                                    "seed": int(cfg.seed), "params": params,
                                                    **gen.labelling},
                      parameter_names=gen.parameter_names, seeds=[int(cfg.seed)] * len(vols),
                      sources=[f"{gen.name} seed {cfg.seed} #{i}" for i in range(len(vols))], overwrite=True)
        written = [out]
    elif suffix in (".tif", ".tiff", ".npy"):
        written = []
        for i, v in enumerate(vols):
            path = out.with_name(f"{out.stem}_{i}{out.suffix}") if len(vols) > 1 else out
            if suffix == ".npy":
                np.save(path, v)
            else:
                import tifffile

                tifffile.imwrite(path, v, metadata={"voxel_size_m": gen.voxel_size_m, "labels": "0 pore, 1 AM, 2 CBD"})
            written.append(path)
    else:
        raise ConfigError("output", str(out), "a path ending in .h5, .hdf5, .tif, .tiff or .npy")
    fr = np.bincount(vols.reshape(-1), minlength=3) / vols.size
    log.info("%d volumes of %d^3 in %.2f s (voxel %.3g m); phase fractions pore %.3f, AM %.3f, CBD %.3f -> %s",
             len(vols), cfg.size_voxels, dt, gen.voxel_size_m, *fr, ", ".join(map(str, written)))
    return 0
