"""Rate-capability map of a cathode: retention and energy density over mass loading x press density.

Every grid point is a whole cell (``cell``, default a 4680 with Chen2020) at the configured N/P
ratio, discharged at C/10 and at each C-rate of ``c_rates`` (relative to its own C/10 capacity).
Writes ``rate_map.h5``, ``rate_map.csv``, ``retention.png`` and ``energy_density.png`` to ``output``
(default ``runs/rate-map-<time>/``) and prints the retention table (docs/rate_map.md). Examples::

    microdesign rate-map
    microdesign rate-map "grid.mass_loading_mg_cm2=[10,20,30]" "grid.press_density_g_cm3=[3.0,3.3]" "c_rates=[1,2,3]"
    microdesign rate-map cell.base_parameter_set=Mohtat2020 grid.crystallographic_density_g_cm3=4.7
    microdesign rate-map cell.base_parameter_set=my_cell.json cell.positive_current_collector_thickness_m=1.5e-5 \\
        cell.negative_current_collector_thickness_m=1e-5          # a BPX file
    microdesign rate-map microstructure=generator "grid.press_density_g_cm3=[2.6,2.9,3.2]"
"""

NAME = "rate-map"
HELP = "rate-capability map: capacity retention and energy density over mass loading x press density at several C-rates"
CONFIG_NAME = "rate_map"


def run(cfg) -> int:
    import logging
    import time
    from pathlib import Path

    from omegaconf import OmegaConf
    from rich.console import Console
    from rich.table import Table

    from microdesign.cell.rate_map import RateMapGrid, generator_structures, prepare_cell_config, rate_map
    from microdesign.errors import ConfigError

    log = logging.getLogger(__name__)
    micro = str(cfg.microstructure)
    gd = cfg.generator_design
    cell_cfg = OmegaConf.to_container(cfg.cell, resolve=True)
    cell_cfg, cd = prepare_cell_config(cell_cfg, cfg.grid.crystallographic_density_g_cm3, micro,
                                       float(gd.am_weight_fraction))
    plain = OmegaConf.to_container(cfg, resolve=True)
    grid = RateMapGrid.from_lists(plain["grid"]["mass_loading_mg_cm2"], plain["grid"]["press_density_g_cm3"],
                                  plain["c_rates"], cd)
    if cfg.workers is not None and int(cfg.workers) < 1:
        raise ConfigError("workers", cfg.workers, "an integer >= 1 or null")
    out_dir = Path(str(cfg.output)) if cfg.output else Path("runs") / time.strftime("rate-map-%Y%m%d-%H%M%S")
    structures = None
    if micro == "generator":
        from microdesign.campaign.build import instantiate
        from microdesign.cell.full_cell import build_cell_model

        generator = instantiate(cfg.generator, "generator")
        characteriser = instantiate(cfg.characterise, "characterise")
        structures = generator_structures(generator, characteriser, grid, build_cell_model(OmegaConf.create(cell_cfg)),
                                          float(gd.am_weight_fraction), float(gd.cbd_adhesion), int(gd.n_cubes),
                                          int(gd.cube_size_voxels), int(gd.seed))
    rm = rate_map(cell_cfg, grid, micro, structures, None if cfg.workers is None else int(cfg.workers),
                  str(cfg.executor))
    paths = rm.write(out_dir, plots=bool(cfg.plots))

    s = rm.settings
    table = Table(title=f"capacity retention vs C/10 [%]: {s['base_parameter_set']} cathode, {s['cell_format']} cell, "
                        f"N/P {s['n_p_ratio']:.3f}, CD {cd:.3f} g.cm-3, {micro} microstructure")
    table.add_column("ML [mg.cm-2]", justify="right")
    table.add_column("PD [g.cm-3]", justify="right")
    table.add_column("L [um]", justify="right")
    table.add_column("C/10 [A.h]", justify="right")
    table.add_column("C/10 [mA.h.cm-2]", justify="right")
    for c in grid.c_rates:
        table.add_column(f"{c:g}C", justify="right")
    table.add_column(f"W.h/L at {grid.c_rates[-1]:g}C", justify="right")
    a = rm.arrays
    for i, j, ml, pd in grid.points():
        table.add_row(f"{ml:g}", f"{pd:g}", f"{a['cathode_thickness_m'][i, j] * 1e6:.1f}",
                      f"{a['c10_capacity_Ah'][i, j]:.2f}", f"{a['c10_areal_capacity_mAh_cm2'][i, j]:.2f}",
                      *[f"{100 * a['retention'][i, j, k]:.1f}" for k in range(len(grid.c_rates))],
                      f"{a['volumetric_energy_density_Wh_L'][i, j, -1]:.0f}")
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)  # a file or pipe: no truncated columns
    for key, reason in rm.reasons.items():
        log.warning("point %s failed: %s", key, reason)
    log.info("%d points x %d C-rates in %.1f s; wrote %s", len(grid.points()), len(grid.c_rates), rm.wall_s,
             ", ".join(str(p) for p in paths))
    return 0 if rm.n_failed == 0 else 1
