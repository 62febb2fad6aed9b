"""Rate-capability maps: capacity retention and energy density over mass loading x press density.

A battery engineer's question - how much of its capacity does a cathode keep at 1C and 2C as it gets
heavier and denser? - answered on a grid of the linked parameters (docs/process_model.md, "Linked
parameters"; docs/rate_map.md):

* mass loading ML [mg.cm-2] and press density PD [g.cm-3] at a crystallographic (solid) density CD
  give porosity 1 - PD/CD, AM fraction f PD/CD and thickness ML/(PD 100);
* the microstructure at each point comes from the base set's Bruggeman transport
  (:class:`~microdesign.cell.chemistry.BruggemanCathode`, ``microstructure="bruggeman"``, default) or
  from the generator and characterisation (``"generator"``: cubes at porosity 1 - PD/CD, measured);
* each point is one whole cell at the configured N/P ratio (the anode follows the cathode),
  discharged by a :class:`~microdesign.cell.protocols.RateSweep`: one model build, one C/10 reference
  and one discharge per C-rate; retention = capacity at the rate / capacity at C/10.

Grid points run in parallel processes (``concurrent.futures.ProcessPoolExecutor``), each building its
own :class:`~microdesign.cell.full_cell.CellModel` from the cell config once.

Outputs (:meth:`RateMap.write`): ``rate_map.h5`` (HDF5: axes, arrays, status, settings),
``rate_map.csv`` (one row per point and C-rate) and heatmaps with contour lines (``retention.png``,
one panel per C-rate; ``energy_density.png``, volumetric energy density per C-rate).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.cell.protocols import C10_CAPACITY_KEY, RETENTION_KEY, RateSweep
from microdesign.cell.result import CellResult
from microdesign.errors import ConfigError, require

log = logging.getLogger(__name__)

MICROSTRUCTURES = ("bruggeman", "generator")
#: Arrays of a map, shape ``(n_ml, n_pd, r)``: field name -> (HDF5 dataset, CSV column / label).
RATE_FIELDS = {
    "capacity_Ah": "Discharge capacity [A.h]",
    "retention": RETENTION_KEY,
    "energy_Wh": "Energy [W.h]",
    "volumetric_energy_density_Wh_L": "Volumetric energy density [W.h.L-1]",
    "specific_energy_Wh_kg": "Specific energy [W.h.kg-1]",
}
#: Arrays of a map, shape ``(n_ml, n_pd)``.
POINT_FIELDS = {
    "c10_capacity_Ah": C10_CAPACITY_KEY,
    "c10_areal_capacity_mAh_cm2": "C/10 areal capacity [mA.h.cm-2]",
    "electrode_area_m2": "Electrode area [m2]",
    # ML / (thickness x 100): the grid's press density (bruggeman) or the measured one (generator)
    "simulated_press_density_g_cm3": "Press density of the simulated coating [g.cm-3]",
    "cathode_thickness_m": "Positive electrode thickness [m]",
    "porosity": "Positive electrode porosity",
    "am_volume_fraction": "Positive electrode active material volume fraction",
    "tortuosity_factor": "Positive electrode tortuosity factor (electrolyte)",
}


# ---------------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateMapGrid:
    """Mass loadings x press densities x C-rates, checked before any solve.

    Attributes:
        mass_loadings_mg_cm2: ML [mg.cm-2], each > 0, shape ``n_ml``.
        press_densities_g_cm3: PD [g.cm-3], each in (0, CD), shape ``n_pd``.
        c_rates: C-rates [h-1] relative to each design's own C/10 capacity, each > 0, shape ``r``.
        crystallographic_density_g_cm3: CD [g.cm-3], the true density of the coating's solid.

    Raises:
        ConfigError: an empty axis, a non-positive or non-finite value, a press density at or above
            the crystallographic density, or a repeated value.
    """

    mass_loadings_mg_cm2: tuple[float, ...]
    press_densities_g_cm3: tuple[float, ...]
    c_rates: tuple[float, ...]
    crystallographic_density_g_cm3: float

    def __post_init__(self) -> None:
        ctx = "rate map"
        cd = self.crystallographic_density_g_cm3
        require(isinstance(cd, float | int) and math.isfinite(cd) and cd > 0, "crystallographic_density_g_cm3", cd,
                "a finite density > 0 [g.cm-3]", ctx)
        for name, values, unit in (("mass_loading_mg_cm2", self.mass_loadings_mg_cm2, "mg.cm-2"),
                                   ("press_density_g_cm3", self.press_densities_g_cm3, "g.cm-3"),
                                   ("c_rates", self.c_rates, "h-1")):
            require(len(values) > 0, name, list(values), "a non-empty list", ctx)
            for v in values:
                require(isinstance(v, float | int) and math.isfinite(v) and v > 0, name, list(values),
                        f"finite values > 0 [{unit}]", ctx)
            require(len(set(values)) == len(values), name, list(values), "distinct values", ctx)
        high = [pd for pd in self.press_densities_g_cm3 if pd >= cd]
        require(not high, "press_density_g_cm3", high,
                f"below the crystallographic density {cd:g} g.cm-3 (porosity 1 - PD/CD > 0)", ctx)

    @classmethod
    def from_lists(cls, mass_loadings_mg_cm2: Sequence[float], press_densities_g_cm3: Sequence[float],
                   c_rates: Sequence[float], crystallographic_density_g_cm3: float) -> RateMapGrid:
        """From any sequences (config lists); values are converted to float.

        Raises:
            ConfigError: as the class, or a value that is not a number.
        """
        def floats(name: str, values: Any) -> tuple[float, ...]:
            if values is None or isinstance(values, str | bytes) or not isinstance(values, Sequence):
                raise ConfigError(name, values, "a list of numbers", "rate map")
            try:
                return tuple(float(v) for v in values)
            except (TypeError, ValueError):
                raise ConfigError(name, list(values), "a list of numbers", "rate map") from None

        try:
            cd = float(crystallographic_density_g_cm3)
        except (TypeError, ValueError):
            raise ConfigError("crystallographic_density_g_cm3", crystallographic_density_g_cm3, "a number",
                              "rate map") from None
        return cls(floats("mass_loading_mg_cm2", mass_loadings_mg_cm2),
                   floats("press_density_g_cm3", press_densities_g_cm3), floats("c_rates", c_rates), cd)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_ml, n_pd, r)``."""
        return len(self.mass_loadings_mg_cm2), len(self.press_densities_g_cm3), len(self.c_rates)

    def points(self) -> list[tuple[int, int, float, float]]:
        """``(i, j, ML_i, PD_j)`` for every grid point, mass loading outermost."""
        return [(i, j, ml, pd) for i, ml in enumerate(self.mass_loadings_mg_cm2)
                for j, pd in enumerate(self.press_densities_g_cm3)]


# ---------------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------------
@dataclass
class RateMap:
    """A computed map. Failed points are NaN in the arrays, with their reason in ``reasons``.

    Attributes:
        grid: the grid.
        arrays: :data:`RATE_FIELDS` names -> arrays ``(n_ml, n_pd, r)`` and :data:`POINT_FIELDS`
            names -> arrays ``(n_ml, n_pd)``.
        status: ``"ok"``/``"failed"`` per point and rate, ``(n_ml, n_pd, r)``.
        reasons: ``"i,j,k" -> reason`` of every failed entry.
        settings: what produced it (base set, cell format, N/P ratio, microstructure source, ...).
        wall_s: wall-clock seconds of the whole map.
    """

    grid: RateMapGrid
    arrays: dict[str, np.ndarray]
    status: np.ndarray
    reasons: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def n_failed(self) -> int:
        return int(np.sum(self.status != "ok"))

    def rows(self) -> list[dict[str, Any]]:
        """One row per grid point and C-rate (CSV columns, units in the names)."""
        g = self.grid
        out = []
        for i, j, ml, pd in g.points():
            for k, c in enumerate(g.c_rates):
                row: dict[str, Any] = {"Mass loading [mg.cm-2]": ml, "Press density [g.cm-3]": pd, "C-rate": c}
                row.update({label: float(self.arrays[name][i, j]) for name, label in POINT_FIELDS.items()})
                row.update({label: float(self.arrays[name][i, j, k]) for name, label in RATE_FIELDS.items()})
                row["Status"] = str(self.status[i, j, k])
                row["Reason"] = self.reasons.get(f"{i},{j},{k}", "")
                out.append(row)
        return out

    def write_csv(self, path: str | os.PathLike) -> Path:
        rows = self.rows()
        path = Path(path)
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    def write_hdf5(self, path: str | os.PathLike) -> Path:
        """HDF5: ``axes/{mass_loading_mg_cm2, press_density_g_cm3, c_rate}``, one dataset per array
        (attribute ``label``: the PyBaMM-style name with its unit), ``status`` and the settings as
        JSON in the root attribute ``settings``."""
        import h5py

        path = Path(path)
        g = self.grid
        with h5py.File(path, "w") as f:
            f.attrs["settings"] = json.dumps(self.settings, default=str)
            f.attrs["crystallographic_density_g_cm3"] = g.crystallographic_density_g_cm3
            f.attrs["wall_s"] = self.wall_s
            f.attrs["reasons"] = json.dumps(self.reasons)
            axes = f.create_group("axes")
            axes["mass_loading_mg_cm2"] = np.asarray(g.mass_loadings_mg_cm2)
            axes["press_density_g_cm3"] = np.asarray(g.press_densities_g_cm3)
            axes["c_rate"] = np.asarray(g.c_rates)
            for name, label in {**RATE_FIELDS, **POINT_FIELDS}.items():
                f[name] = self.arrays[name]
                f[name].attrs["label"] = label
            f["status"] = self.status.astype("S6")
        return path

    @classmethod
    def read_hdf5(cls, path: str | os.PathLike) -> RateMap:
        """The map :meth:`write_hdf5` wrote."""
        import h5py

        with h5py.File(path, "r") as f:
            grid = RateMapGrid(tuple(float(v) for v in f["axes/mass_loading_mg_cm2"][()]),
                               tuple(float(v) for v in f["axes/press_density_g_cm3"][()]),
                               tuple(float(v) for v in f["axes/c_rate"][()]),
                               float(f.attrs["crystallographic_density_g_cm3"]))
            arrays = {name: f[name][()] for name in {**RATE_FIELDS, **POINT_FIELDS}}
            status = f["status"][()].astype(str)
            return cls(grid, arrays, status, json.loads(f.attrs["reasons"]), json.loads(f.attrs["settings"]),
                       float(f.attrs["wall_s"]))

    def plot(self, out_dir: str | os.PathLike, dpi: int = 150, prefix: str = "") -> list[Path]:
        """Heatmaps with contour lines: ``<prefix>retention.png`` (retention [%] per C-rate) and
        ``<prefix>energy_density.png`` (W.h.L-1 per C-rate); press density on x, mass loading on y."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        g = self.grid
        x, y = np.asarray(g.press_densities_g_cm3), np.asarray(g.mass_loadings_mg_cm2)
        base = self.settings.get("base_parameter_set", "")
        paths = []
        for stem, name, scale, label, cmap in (
                ("retention", "retention", 100.0, "capacity retention vs C/10 [%]", "viridis"),
                ("energy_density", "volumetric_energy_density_Wh_L", 1.0, "volumetric energy density [W.h.L-1]",
                 "magma")):
            r = len(g.c_rates)
            fig, axes = plt.subplots(1, r, figsize=(4.2 * r + 0.6, 3.8), squeeze=False, constrained_layout=True)
            for k, c in enumerate(g.c_rates):
                ax = axes[0, k]
                z = self.arrays[name][:, :, k] * scale
                mesh = ax.pcolormesh(x, y, z, shading="nearest", cmap=cmap)
                if len(x) > 1 and len(y) > 1 and np.isfinite(z).sum() >= 4 and np.nanmax(z) > np.nanmin(z):
                    lines = ax.contour(x, y, z, levels=6, colors="white", linewidths=0.8)
                    ax.clabel(lines, fmt="%.0f" if np.nanmax(z) > 200 else "%.1f", fontsize=7)
                fig.colorbar(mesh, ax=ax, label=label if k == r - 1 else None)
                ax.set_title(f"{c:g}C")
                ax.set_xlabel("press density [g.cm-3]")
                if k == 0:
                    ax.set_ylabel("mass loading [mg.cm-2]")
            fig.suptitle(f"{label}: {base} cathode, {self.settings.get('cell_format', '')} cell, "
                         f"{self.settings.get('microstructure', '')} microstructure", fontsize=9)
            path = out / f"{prefix}{stem}.png"
            fig.savefig(path, dpi=dpi)
            plt.close(fig)
            paths.append(path)
        return paths

    def write(self, out_dir: str | os.PathLike, plots: bool = True) -> list[Path]:
        """``rate_map.h5``, ``rate_map.csv`` and (``plots``) the heatmaps in ``out_dir`` (created)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [self.write_hdf5(out / "rate_map.h5"), self.write_csv(out / "rate_map.csv")]
        if plots:
            paths += self.plot(out)
        return paths


# ---------------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------------
def default_crystallographic_density_g_cm3(materials: Any, active_fraction: float) -> float:
    """CD = f rho_AM + (1 - f) rho_CBD [g.cm-3]: the solid density the cell's mass model weighs
    (``materials``: :class:`~microdesign.cell.geometry.Materials`), so that PD x thickness is the coating
    mass the cell carries (Chen2020, f = 1: 4.75 g.cm-3, NMC811)."""
    return (active_fraction * materials.cathode_am_density_kg_m3
            + (1.0 - active_fraction) * materials.cathode_cbd_density_kg_m3) / 1000.0


def am_density_for(crystallographic_density_g_cm3: float, active_fraction: float, cbd_density_kg_m3: float) -> float:
    """rho_AM [kg.m-3] that makes ``f rho_AM + (1 - f) rho_CBD`` equal a given CD (the inverse of
    :func:`default_crystallographic_density_g_cm3`).

    Raises:
        ConfigError: CD too low for the CBD share (rho_AM would not be positive).
    """
    rho = (1000.0 * crystallographic_density_g_cm3 - (1.0 - active_fraction) * cbd_density_kg_m3) / active_fraction
    require(rho > 0, "crystallographic_density_g_cm3", crystallographic_density_g_cm3,
            f"> (1 - f) rho_CBD = {(1 - active_fraction) * cbd_density_kg_m3 / 1000:.3g} g.cm-3", "rate map")
    return rho


def prepare_cell_config(cell_cfg: Mapping[str, Any], crystallographic_density_g_cm3: float | None,
                        microstructure: str = "bruggeman", am_weight_fraction: float = 0.925) -> tuple[dict, float]:
    """The cell config and the crystallographic density CD [g.cm-3] of a map, made consistent.

    Bruggeman: CD ``None`` -> :func:`default_crystallographic_density_g_cm3` of the cell's materials and
    the base set's active fraction f; a given CD sets ``materials.cathode_am_density_kg_m3`` by
    :func:`am_density_for`, so the cell weighs the coating the grid describes (ML = PD x thickness).
    Generator: CD ``None`` -> the dry-coating solid density of the formulation at ``am_weight_fraction``
    (:meth:`microdesign.process.formulation.Formulation.solids_density_g_cm3`); the cell weighs what
    characterisation measured.

    Returns:
        ``(cell_cfg as a plain dict, CD)``.

    Raises:
        ConfigError: unknown base set, a set the cell cannot use, bad materials or a CD too low.
    """
    from microdesign.cell.chemistry import BruggemanCathode, load_parameter_values
    from microdesign.cell.geometry import Materials

    cfg = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in dict(cell_cfg).items()}
    require(microstructure in MICROSTRUCTURES, "microstructure", microstructure, f"one of {list(MICROSTRUCTURES)}")
    if microstructure == "generator":
        if crystallographic_density_g_cm3 is None:
            from microdesign.process.formulation import Formulation

            crystallographic_density_g_cm3 = float(Formulation.from_am_weight_fraction(am_weight_fraction)
                                                   .solids_density_g_cm3)
        return cfg, float(crystallographic_density_g_cm3)
    src = str(cfg.get("base_parameter_set", "Chen2020"))
    f = BruggemanCathode.from_parameter_values(load_parameter_values(src), src).active_fraction
    try:
        materials = Materials(**dict(cfg.get("materials") or {}))
    except TypeError as exc:
        raise ConfigError("cell.materials", cfg.get("materials"), f"keys of Materials ({exc})") from exc
    if crystallographic_density_g_cm3 is None:
        return cfg, default_crystallographic_density_g_cm3(materials, f)
    cd = float(crystallographic_density_g_cm3)
    require(math.isfinite(cd) and cd > 0, "crystallographic_density_g_cm3", cd, "a finite density > 0 [g.cm-3]")
    cfg["materials"] = {**dict(cfg.get("materials") or {}),
                        "cathode_am_density_kg_m3": am_density_for(cd, f, materials.cathode_cbd_density_kg_m3)}
    return cfg, cd


def generator_structures(generator: Any, characteriser: Any, grid: RateMapGrid, model: Any,
                         am_weight_fraction: float = 0.925, cbd_adhesion: float = 0.5, n_cubes: int = 2,
                         cube_size_voxels: int = 32, seed: int = 0) -> list[tuple[int, int, Any, float]]:
    """Measured microstructures of the grid: per press density, ``n_cubes`` generated cubes at porosity
    1 - PD/CD, characterised (the mass loading does not change the microstructure, so each column is
    generated once); the thickness is ``model.cathode_thickness_from_mass_loading`` of the measured
    fractions, as in a campaign.

    Args:
        generator: ``sample(params, n, size_voxels, seed)``, ``voxel_size_m``, optional ``training_bounds``.
        characteriser: ``characterise(volumes, voxel_size_m, seed)`` (:class:`~microdesign.characterise.Characteriser`).
        grid: the grid; model: the :class:`~microdesign.cell.full_cell.CellModel`.
        am_weight_fraction, cbd_adhesion: the generator's other design parameters, held.
        n_cubes, cube_size_voxels, seed: cubes per column, their side [voxels], the seed.

    Returns:
        ``(i, j, MicrostructureMetrics, cathode_thickness_m)`` per grid point (failed metrics: NaN thickness).

    Raises:
        ConfigError: a porosity outside the generator's training bounds (checked before any sample).
    """
    cd = grid.crystallographic_density_g_cm3
    params = {j: {"am_weight_fraction": float(am_weight_fraction), "porosity": 1.0 - pd / cd,
                  "cbd_adhesion": float(cbd_adhesion)} for j, pd in enumerate(grid.press_densities_g_cm3)}
    bounds = getattr(generator, "training_bounds", None)
    if bounds:
        for j, p in params.items():
            for name, value in p.items():
                if name in bounds and not (bounds[name][0] <= value <= bounds[name][1]):
                    raise ConfigError("press_density_g_cm3" if name == "porosity" else f"generator_design.{name}",
                                      grid.press_densities_g_cm3[j] if name == "porosity" else value,
                                      f"{name} within the generator's training bounds {list(bounds[name])} "
                                      f"(porosity = 1 - PD/CD, CD = {cd:.3f} g.cm-3)", "rate map")
        params = {j: {k: v for k, v in p.items() if k in bounds} for j, p in params.items()}
    voxel = float(getattr(generator, "voxel_size_m", 0.0))
    measured = {}
    for j, p in params.items():
        cubes = generator.sample(p, int(n_cubes), int(cube_size_voxels), int(seed) + j)
        measured[j] = characteriser.characterise(cubes, voxel, seed=int(seed) + j)
        log.info("press density %.3f g.cm-3: %s", grid.press_densities_g_cm3[j],
                 "measured" if measured[j].ok else f"characterisation failed ({measured[j].reason})")
    out = []
    for i, j, ml, _pd in grid.points():
        m = measured[j]
        out.append((i, j, m, model.cathode_thickness_from_mass_loading(m, ml) if m.ok else float("nan")))
    return out


_WORKER_MODEL: Any = None


def _init_worker(cell_cfg: Mapping[str, Any]) -> None:
    global _WORKER_MODEL
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER_MODEL = _build_model(cell_cfg)


def _build_model(cell_cfg: Mapping[str, Any]) -> Any:
    from omegaconf import OmegaConf

    from microdesign.cell.full_cell import build_cell_model

    return build_cell_model(OmegaConf.create(dict(cell_cfg)))


def _run_point(task: tuple[int, int, Any, float, tuple[float, ...]]) -> tuple[int, int, list[CellResult]]:
    i, j, metrics, thickness_m, c_rates = task
    return i, j, _WORKER_MODEL.sweep(metrics, thickness_m, RateSweep(c_rates))


EXECUTORS = ("process", "ray")


def rate_map(cell_cfg: Mapping[str, Any], grid: RateMapGrid, microstructure: str = "bruggeman",
             structures: Sequence[tuple[int, int, Any, float]] | None = None, workers: int | None = None,
             executor: str = "process") -> RateMap:
    """Compute a rate-capability map.

    Args:
        cell_cfg: a ``conf/cell/*.yaml`` node as a plain mapping (``_target_`` included); its
            ``materials.cathode_am_density_kg_m3`` should already agree with the grid's CD
            (:func:`prepare_cell_config`).
        grid: the checked grid.
        microstructure: ``"bruggeman"`` (each point from the base set's cathode,
            :class:`~microdesign.cell.chemistry.BruggemanCathode`) or ``"generator"`` (``structures``
            must then be given).
        structures: ``(i, j, MicrostructureMetrics, cathode_thickness_m)`` per point (from
            :func:`generator_structures`); None for ``"bruggeman"``.
        workers: processes (None: one per CPU, at most one per point; 1: in this process).
        executor: ``"process"`` (``concurrent.futures.ProcessPoolExecutor`` on this machine) or
            ``"ray"`` (``ray.util.multiprocessing.Pool``: Ray workers, local or the cluster
            ``ray.init`` connects to; the ``ray`` extra, docs/scale_out.md).

    Returns:
        The :class:`RateMap`.

    Raises:
        ConfigError: bad microstructure source, workers or executor, Ray asked for but not installed,
            or a base set the cell cannot use (raised before any solve).
    """
    from microdesign.cell.chemistry import BruggemanCathode, load_parameter_values

    require(microstructure in MICROSTRUCTURES, "microstructure", microstructure, f"one of {list(MICROSTRUCTURES)}")
    require(executor in EXECUTORS, "executor", executor, f"one of {list(EXECUTORS)}")
    if executor == "ray":
        try:
            import ray.util.multiprocessing  # noqa: F401
        except ImportError:
            raise ConfigError("executor", executor, "Ray installed (pip install -e '.[ray]')") from None
    t0 = time.perf_counter()
    model = _build_model(cell_cfg)  # validates the config and the base set before any solve
    src = model.chemistry.name
    settings: dict[str, Any] = {
        "base_parameter_set": src, "cell_format": model.cell_format.name, "n_p_ratio": model.n_p_ratio,
        "microstructure": microstructure, "lower_voltage_cutoff_V": model.cutoff_V,
        "cathode_am_density_kg_m3": model.materials.cathode_am_density_kg_m3,
        "cathode_cbd_density_kg_m3": model.materials.cathode_cbd_density_kg_m3}
    if structures is None:
        require(microstructure == "bruggeman", "microstructure", microstructure,
                "'bruggeman' when no measured structures are given")
        cathode = BruggemanCathode.from_parameter_values(load_parameter_values(src), src)
        settings["active_fraction"] = cathode.active_fraction
        structures = []
        for i, j, ml, pd in grid.points():
            s, thick = cathode.at(ml, pd, grid.crystallographic_density_g_cm3)
            structures.append((i, j, s.to_metrics(), thick))
    tasks = [(i, j, m, float(th), grid.c_rates) for i, j, m, th in structures]
    n_workers = min(os.cpu_count() or 1, len(tasks)) if workers is None else int(workers)
    require(n_workers >= 1, "workers", workers, "an integer >= 1 or null")
    settings["workers"] = n_workers
    settings["executor"] = executor if n_workers > 1 else "serial"
    results: dict[tuple[int, int], list[CellResult]] = {}
    if n_workers == 1:
        for i, j, metrics, thickness, c_rates in tasks:
            results[(i, j)] = model.sweep(metrics, thickness, RateSweep(c_rates))
    elif executor == "ray":
        from ray.util.multiprocessing import Pool

        with Pool(processes=n_workers, initializer=_init_worker, initargs=(dict(cell_cfg),)) as pool:
            for i, j, res in pool.map(_run_point, tasks):
                results[(i, j)] = res
    else:
        import multiprocessing

        # fork re-uses the imported PyBaMM and the parsed base set (seconds per worker); a parent that
        # has loaded torch (generator mode) may hold OpenMP threads that a fork would copy broken: spawn
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules else "spawn"
        ctx = multiprocessing.get_context(method)
        plain_cfg = dict(cell_cfg)
        with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(plain_cfg,)) as pool:
            for i, j, res in pool.map(_run_point, tasks):
                results[(i, j)] = res
    rm = _assemble(grid, structures, results, settings)
    rm.wall_s = time.perf_counter() - t0
    log.info("rate map: %d points x %d C-rates in %.1f s (%d workers, %d failed)", len(tasks), len(grid.c_rates),
             rm.wall_s, n_workers, rm.n_failed)
    return rm


def _assemble(grid: RateMapGrid, structures: Sequence[tuple[int, int, Any, float]],
              results: Mapping[tuple[int, int], list[CellResult]], settings: dict[str, Any]) -> RateMap:
    from microdesign.characterise import metrics as M

    n_ml, n_pd, r = grid.shape
    arrays = {name: np.full((n_ml, n_pd, r), np.nan) for name in RATE_FIELDS}
    arrays.update({name: np.full((n_ml, n_pd), np.nan) for name in POINT_FIELDS})
    status = np.full((n_ml, n_pd, r), "failed", dtype=object)
    reasons: dict[str, str] = {}
    for i, j, metrics, thick in structures:
        arrays["cathode_thickness_m"][i, j] = thick
        arrays["simulated_press_density_g_cm3"][i, j] = grid.mass_loadings_mg_cm2[i] * 1e-3 / (thick * 100)
        if metrics.ok:
            means = metrics.means()
            arrays["porosity"][i, j] = means[M.POROSITY]
            arrays["am_volume_fraction"][i, j] = means[M.AM_VOLUME_FRACTION]
            arrays["tortuosity_factor"][i, j] = means[M.TORTUOSITY_THROUGH_PLANE]
        for k, res in enumerate(results[(i, j)]):
            if not res.ok:
                reasons[f"{i},{j},{k}"] = str(res.reason)
                continue
            status[i, j, k] = "ok"
            arrays["c10_capacity_Ah"][i, j] = res.extra[C10_CAPACITY_KEY]
            arrays["electrode_area_m2"][i, j] = res.electrode_area_m2
            arrays["c10_areal_capacity_mAh_cm2"][i, j] = res.extra[C10_CAPACITY_KEY] / res.electrode_area_m2 * 0.1
            arrays["retention"][i, j, k] = res.extra[RETENTION_KEY]
            for name in ("capacity_Ah", "energy_Wh", "volumetric_energy_density_Wh_L", "specific_energy_Wh_kg"):
                arrays[name][i, j, k] = getattr(res, name)
    return RateMap(grid, arrays, status.astype(str), reasons, settings)
