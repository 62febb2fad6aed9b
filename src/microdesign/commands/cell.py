"""Simulate one cathode design in a whole cell (default 4680) and print a table.

The design is given as the metrics characterisation would report (``design.*``), or as a press
density (``design.press_density_g_cm3``: the base set's cathode at porosity 1 - PD/CD with its
Bruggeman transport, docs/rate_map.md), plus a mass loading or a cathode thickness (a mass loading
sets the thickness, ML/(PD 100), and the log says so). ``mode=one`` runs the configured protocol
(``cell.protocol``; C-rates are relative to the design's own C/10 capacity, and the table shows that
capacity and the retention); ``mode=ragone`` runs a constant-power sweep (``ragone.low_W``,
``ragone.high_W``, ``ragone.n``). Examples::

    microdesign cell                                     # Chen2020's cathode in a 4680, Ragone sweep
    microdesign cell mode=one cell.protocol.power_W=50
    microdesign cell mode=one cell.protocol.c_rate=2 design.mass_loading_mg_cm2=25 design.press_density_g_cm3=3.2
    microdesign cell mode=one "cell.protocol.c_rates=[0.5,1,2]" cell.electrode_area_m2=0.1027
    microdesign cell design.mass_loading_mg_cm2=30 "cell_format@cell.cell_format=cyl_21700"
    microdesign cell output=ragone.csv
"""

NAME = "cell"
HELP = ("cell model: PyBaMM DFN of a 4680 (21700, pouch) from cathode metrics or a press density; one discharge, "
        "a rate sweep or a Ragone sweep")
CONFIG_NAME = "cell"

_COLUMNS = (
    ("status", "status", "{}"),
    ("A.h", "capacity_Ah", "{:.2f}"),
    ("W.h", "energy_Wh", "{:.2f}"),
    ("V", "mean_voltage_V", "{:.3f}"),
    ("s", "duration_s", "{:.0f}"),
    ("W.h/L", "volumetric_energy_density_Wh_L", "{:.1f}"),
    ("W.h/kg", "specific_energy_Wh_kg", "{:.1f}"),
    ("mA.h/g AM", "cathode_capacity_mAh_g_am", "{:.1f}"),
)
_C10_COLUMNS = (("C/10 A.h", "{:.2f}", 1.0), ("retention %", "{:.1f}", 100.0))


def run(cfg) -> int:
    import logging
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from omegaconf import OmegaConf

    from microdesign.cell import CathodeStructure, PowerSweep, build_cell_model
    from microdesign.cell.protocols import C10_CAPACITY_KEY, RETENTION_KEY
    from microdesign.errors import ConfigError

    log = logging.getLogger(__name__)
    if cfg.get("output"):
        from microdesign.data.files import require_writable

        require_writable(cfg.output, "output")
    d = cfg.design
    if d.get("tortuosity_factor") is not None and float(d.tortuosity_factor) < 1:
        raise ConfigError("design.tortuosity_factor", d.tortuosity_factor,
                          "a tortuosity factor >= 1 (tau = eps D0 / D_eff; 1 is a straight channel)")
    ml = d.get("mass_loading_mg_cm2")
    pd = d.get("press_density_g_cm3")
    if pd is not None:
        from microdesign.cell.chemistry import BruggemanCathode, load_parameter_values
        from microdesign.cell.rate_map import prepare_cell_config

        cell_cfg, cd = prepare_cell_config(OmegaConf.to_container(cfg.cell, resolve=True),
                                           d.get("crystallographic_density_g_cm3"), "bruggeman")
        model = build_cell_model(OmegaConf.create(cell_cfg))
        base = BruggemanCathode.from_parameter_values(load_parameter_values(model.chemistry.name), model.chemistry.name)
        cathode, thickness = base.at(float(ml) if ml is not None else 1.0, float(pd), cd)
        log.info("press density %g g.cm-3 (crystallographic density %.3f g.cm-3) sets the cathode: porosity %.4f, "
                 "AM fraction %.4f, tortuosity factor %.3f (the %s cathode's Bruggeman transport; design.porosity, "
                 "design.am_volume_fraction, ... are not used)", float(pd), cd, cathode.porosity,
                 cathode.am_volume_fraction, cathode.tortuosity_factor, model.chemistry.name)
    else:
        model = build_cell_model(cfg.cell)
        cathode = CathodeStructure(porosity=float(d.porosity), am_volume_fraction=float(d.am_volume_fraction),
                                   cbd_volume_fraction=float(d.cbd_volume_fraction),
                                   tortuosity_factor=float(d.tortuosity_factor),
                                   conductivity_S_m=float(d.conductivity_S_m),
                                   specific_surface_area_m=float(d.specific_surface_area_m))
    metrics = cathode.to_metrics()
    if ml is not None:
        if pd is None:
            thickness = model.cathode_thickness_from_mass_loading(metrics, float(ml))
            pd = cathode.press_density_g_cm3(model.materials.cathode_am_density_kg_m3 / 1000,
                                             model.materials.cathode_cbd_density_kg_m3 / 1000)
        ignored = (f"; design.cathode_thickness_m ({float(d.cathode_thickness_m) * 1e6:.1f} um) is not used"
                   if d.get("cathode_thickness_m") is not None else "")
        log.info("mass loading %g mg.cm-2 at press density %.4g g.cm-3 sets the cathode thickness to %.1f um%s",
                 float(ml), float(pd), thickness * 1e6, ignored)
    elif d.get("cathode_thickness_m") is not None:
        thickness = float(d.cathode_thickness_m)
    else:
        raise ConfigError("design.mass_loading_mg_cm2 / design.cathode_thickness_m", None, "one of them set")
    mode = str(cfg.mode)
    if mode == "ragone":
        protocol = PowerSweep.geometric(float(cfg.ragone.low_W), float(cfg.ragone.high_W), int(cfg.ragone.n))
    elif mode == "one":
        protocol = None
    else:
        raise ConfigError("mode", mode, "'one' or 'ragone'")
    results = model.sweep(metrics, thickness, protocol)

    first = results[0]
    log.info("%s cell: cathode %.1f um, anode %.1f um, jelly roll %.3f m, electrode area %.4f m2, mass %.1f g, "
             "volume %.4f L, N/P %.3f", model.cell_format.name, thickness * 1e6, first.anode_thickness_m * 1e6,
             first.jelly_roll_length_m, first.electrode_area_m2, first.cell_mass_kg * 1e3, first.can_volume_L,
             model.n_p_ratio)
    table = Table(title=f"{model.cell_format.name} cell, base set {model.chemistry.name}, "
                        f"cut-off {model.cutoff_V:g} V")
    table.add_column("load")
    for title, _, _ in _COLUMNS:
        table.add_column(title, justify="left" if title == "status" else "right")
    rated = any(C10_CAPACITY_KEY in r.extra for r in results)
    if rated:  # C-rates relative to the design's own C/10 capacity: show it and the retention
        for title, _, _ in _C10_COLUMNS:
            table.add_column(title, justify="right")
    for r in results:
        load = f"{r.power_W:.4g} W" if r.power_W > 0 else (f"{r.c_rate:g}C" if r.c_rate > 0 else r.protocol)
        cells = [fmt.format(getattr(r, key)) for _, key, fmt in _COLUMNS]
        if rated:
            cells += [fmt.format(scale * r.extra[key]) if key in r.extra else "-"
                      for (_, fmt, scale), key in zip(_C10_COLUMNS, (C10_CAPACITY_KEY, RETENTION_KEY))]
        table.add_row(load, *cells)
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)  # a file or pipe: no truncated columns
    for r in results:
        if not r.ok:
            log.warning("%s: %s", r.protocol, r.reason)
    if cfg.get("output"):
        path = Path(str(cfg.output))
        rows = [r.to_dict() for r in results]
        if path.suffix == ".json":
            from microdesign.data.files import write_json

            write_json(rows, path)  # standard JSON: a non-finite value is null
        else:
            import csv

            with path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        log.info("wrote %s", path)
    return 0 if all(r.ok for r in results) else 1
