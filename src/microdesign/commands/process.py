"""Evaluate the process-to-structure model at its configured inputs and print the electrode structure.

With ``monte_carlo_samples=N`` (N ≥ 2) the configured manufacturing tolerances are propagated and
each output is printed as mean ± std. Example::

    microdesign process process.inputs.line_load_N_mm=800 monte_carlo_samples=100000
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
    DesignSpace.from_config(cfg.design_space)  # validates the design space config
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
    return 0
