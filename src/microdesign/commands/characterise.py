"""Characterise a labelled volume (TIFF / npy) or fresh synthetic volumes: metrics with 95% CIs.

Examples::

    microdesign characterise source.path=<data>/nrel_nmc1_cal_cbd_bridge.tif source.voxel_size_m=3.98e-7
    microdesign characterise source.path=vol.tif source.voxel_size_m=3.9e-7 'source.phase_values=[0,85,170]' n_cubes=8
    microdesign characterise source.kind=synthetic cube_size=48 characterise=fast
    microdesign characterise ... characterise/solver=taufactor     # TauFactor's own SOR solvers

``<data>``: the folder of the public NMC data sets (docs/public_data.md).
"""

from __future__ import annotations

NAME = "characterise"
HELP = "volume fractions, surface areas, tortuosity factor and solid conductivity with 95% CIs over cubes"
CONFIG_NAME = "characterise"


def run(cfg) -> int:
    import logging
    import math

    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from rich.console import Console
    from rich.table import Table

    from microdesign.characterise.io import command_cube_sources, metrics_to_dict
    from microdesign.data.files import require_writable, write_json

    log = logging.getLogger(__name__)
    if cfg.output:
        require_writable(cfg.output, "output")
    sources, voxel = command_cube_sources(cfg, [int(cfg.cube_size)])
    sample = sources[int(cfg.cube_size)]
    characteriser = instantiate(cfg.characterise)
    seed = int(cfg.seed)
    if cfg.n_cubes is None:
        result = characteriser.characterise_adaptive(sample, voxel, seed=seed)
    else:
        result = characteriser.characterise(sample(int(cfg.n_cubes), seed), voxel, seed=seed)
    console = Console()
    if not result.ok:
        console.print(f"[red]characterisation failed:[/red] {result.reason}")
    else:
        table = Table(title=f"{result.n_cubes} cubes of {result.cube_size_voxels}^3 at {voxel:.4g} m "
                            f"({result.stop_reason}, solver {characteriser.solver.name})")
        for col in ("metric", "mean", "std", "95% CI +-", "rel. CI"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for k, e in result.estimates.items():
            if not math.isfinite(e.ci95_half_width):  # one cube: no CI
                table.add_row(k, f"{e.mean:.5g}", f"{e.std:.3g}", "n/a", "n/a (one cube)")
                continue
            rel = e.relative_ci95 if e.ci95_half_width else 0.0
            rel_text = f"{100 * rel:.2f}%" if math.isfinite(rel) else "n/a (mean 0)"
            table.add_row(k, f"{e.mean:.5g}", f"{e.std:.3g}", f"{e.ci95_half_width:.3g}", rel_text)
        console.print(table)
    if cfg.output:
        out = metrics_to_dict(result)
        out["config"] = OmegaConf.to_container(cfg, resolve=True)
        path = write_json(out, cfg.output)
        log.info("wrote %s", path)
    return 0 if result.ok else 1
