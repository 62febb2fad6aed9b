"""Evaluate the process-to-structure model at its configured inputs and print the electrode structure.

With ``monte_carlo_samples=N`` (N ≥ 2) the configured manufacturing tolerances are propagated and
each output is printed as mean ± std; with ``sensitivity.ranges`` the Sobol indices (SALib) of the
structure w.r.t. those inputs. Examples::

    microdesign process process.inputs.line_load_N_mm=800 monte_carlo_samples=100000
    microdesign process 'sensitivity.ranges={line_load_N_mm:[200,1200],flow_rate_mL_min:[450,650]}'
"""

NAME = "process"
HELP = "process model: formulation -> coating -> drying -> calendering -> electrode structure (+ tolerances)"
CONFIG_NAME = "process"

_UNITS = {"g_cm3": "g.cm-3", "mg_cm2": "mg.cm-2", "_m": "m"}


def _unit(name: str) -> str:
    for suffix, unit in _UNITS.items():
        if name.endswith(suffix):
            return unit
    return "1"


def run(cfg) -> int:
    import logging

    from hydra.utils import instantiate
    from rich.console import Console
    from rich.table import Table

    from microdesign.design import DesignSpace

    log = logging.getLogger(__name__)
    from microdesign.errors import ConfigError

    DesignSpace.from_config(cfg.design_space)  # validates the design space config
    if int(cfg.monte_carlo_samples) != 0 and int(cfg.monte_carlo_samples) < 2:
        raise ConfigError("monte_carlo_samples", cfg.monte_carlo_samples, "0 (off) or a sample count >= 2")
    model = instantiate(cfg.process)
    structure = model.evaluate().to_dict()
    n = int(cfg.monte_carlo_samples)
    result = model.propagate(n_samples=n, seed=int(cfg.seed)) if n >= 2 else None
    if result is not None:
        log.info("Monte Carlo: %d samples, seed %d, tolerances on %s", n, cfg.seed, sorted(model.tolerances))

    table = Table(title="Electrode structure (one cathode coating)")
    table.add_column("quantity")
    table.add_column("unit")
    table.add_column("nominal", justify="right")
    if result is not None:
        table.add_column("MC mean", justify="right")
        table.add_column("MC std", justify="right")
    for name, value in structure.items():
        row = [name, _unit(name), f"{value:.6g}"]
        if result is not None:
            row += [f"{result.mean[name]:.6g}", f"{result.std[name]:.3g}"]
        table.add_row(*row)
    Console().print(table)
    if cfg.sensitivity.ranges:
        Console().print(_sensitivity_table(model, cfg))
    return 0


def _sensitivity_table(model, cfg):
    from rich.table import Table

    from microdesign.process.sensitivity import sobol_indices

    ranges = {k: tuple(v) for k, v in cfg.sensitivity.ranges.items()}
    res = sobol_indices(ranges, model.inputs, model.drying, n_base_samples=int(cfg.sensitivity.n_base_samples),
                        seed=int(cfg.seed))
    table = Table(title=f"Sobol indices S1 / ST ({res.n_evaluations} evaluations)")
    table.add_column("output")
    for name in res.input_names:
        table.add_column(name, justify="right")
    for out in res.first_order:
        table.add_row(out, *(f"{a:.3f} / {b:.3f}" for a, b in zip(res.first_order[out], res.total_order[out])))
    return table
