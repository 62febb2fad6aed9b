"""Cheap analytic stand-ins for the three expensive stages (tests, dry runs, the benchmark's analytic case).

They follow the real stages' protocols and physics trends, not their accuracy:

* :class:`StubGenerator` — independent voxels with the phase fractions of the process model
  (``Formulation.phase_volume_fractions``, docs/process_model.md), so per-cube fractions scatter binomially
  and the characterisation CI is real.
* :class:`StubCharacteriser` — voxel-counted fractions per cube; Bruggeman tortuosity
  ``τ = ε^(1−b)`` (b = 1.5; Bruggeman 1935, Tjaden et al., Curr. Opin. Chem. Eng. 12 (2016) 44);
  spherical-particle surface area ``a = 3 X_AM / r`` split between pore and CBD by their volume
  shares; a power-law solid conductivity. Optionally fails below a porosity (percolation stand-in).
* :class:`StubCell` — a closed-form volumetric energy density with the trade-offs of a real cell:
  areal capacity grows with thickness and AM fraction; the share of it delivered at the discharge
  power falls once the thickness exceeds an electrolyte penetration depth ``∝ ε/τ``
  (Gallagher et al., JES 163 (2016) A138: thick electrodes are electrolyte-transport limited);
  inactive layers (foils, separator) dilute it. It has an interior optimum in every parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from microdesign.characterise.metrics import (
    AM_VOLUME_FRACTION,
    CBD_VOLUME_FRACTION,
    CONDUCTIVITY_SOLID,
    POROSITY,
    SSA_AM_CBD,
    SSA_AM_PORE,
    TORTUOSITY_THROUGH_PLANE,
    MetricEstimate,
    MicrostructureMetrics,
)
from microdesign.materials import GRAPHITE_DENSITY_KG_M3, NMC811_DENSITY_KG_M3, g_cm3


class StubGenerator:
    """Independent-voxel volumes with the process model's phase fractions.

    Args:
        voxel_size_m: voxel edge [m] attached to the volumes.
        carbon_to_binder_weight_ratio: of the non-AM solids (process ``Formulation`` default 1.0).
        delay_s: sleep this long per sampled cube [s] (emulates the real generator's time in
            scheduling benchmarks, ``scripts/benchmark_executor.py``).
        training_bounds: ``name -> (lower, upper)`` to declare like a trained generator (the campaign
            then checks designs against them, e.g. the shipped generator's, docs/generator.md); None:
            accepts anything.
    """

    def __init__(self, voxel_size_m: float = 4.0e-7, carbon_to_binder_weight_ratio: float = 1.0,
                 delay_s: float = 0.0, training_bounds: Mapping[str, Any] | None = None):
        from microdesign.errors import check_voxel_size, require

        voxel_size_m = check_voxel_size("generator.voxel_size_m", voxel_size_m)
        require(float(carbon_to_binder_weight_ratio) > 0, "generator.carbon_to_binder_weight_ratio",
                carbon_to_binder_weight_ratio, "a ratio > 0")
        self.voxel_size_m = float(voxel_size_m)
        self.c2b = float(carbon_to_binder_weight_ratio)
        self.delay_s = float(delay_s)
        self.training_bounds: dict[str, tuple[float, float]] | None = (
            None if training_bounds is None else {k: (float(v[0]), float(v[1])) for k, v in dict(training_bounds).items()})

    def fractions(self, params: Mapping[str, float]) -> dict[str, float]:
        from microdesign.process.formulation import Formulation

        f = Formulation.from_am_weight_fraction(float(params["am_weight_fraction"]), self.c2b)
        x = f.phase_volume_fractions(float(params["porosity"]))
        return {k: float(v) for k, v in x.items()}

    def sample(self, params: Mapping[str, float], n: int = 1, size_voxels: int = 16, seed: int = 0) -> np.ndarray:
        """``n x L x L x L`` uint8 labels (0 pore, 1 AM, 2 CBD), i.i.d. voxels."""
        x = self.fractions(params)
        if self.delay_s > 0:
            import time

            time.sleep(self.delay_s * int(n))
        rng = np.random.default_rng(int(seed))
        u = rng.random((int(n), int(size_voxels), int(size_voxels), int(size_voxels)))
        out = np.zeros(u.shape, np.uint8)
        out[u < x["active_material"] + x["cbd"]] = 2
        out[u < x["active_material"]] = 1
        return out


class StubCharacteriser:
    """Per-cube metrics in closed form from voxel-counted fractions.

    Args:
        particle_radius_m: AM particle radius for ``a = 3 X_AM / r`` [m] (5 µm, NMC811 secondary particles).
        bruggeman_exponent: ``b`` in ``τ = ε^(1−b)`` (1.5).
        fail_below_porosity: a mean porosity below this fails ("does not percolate"); None: never.
        delay_s: sleep this long per characterised cube [s] (emulates the real characterisation's time
            in scheduling benchmarks, ``scripts/benchmark_executor.py``).
        delay_cv: coefficient of variation of that time between designs: the sleep is multiplied by
            a lognormal factor of mean 1 drawn from the call's ``seed`` (0: always ``delay_s``).
    """

    def __init__(self, particle_radius_m: float = 5.0e-6, bruggeman_exponent: float = 1.5,
                 fail_below_porosity: float | None = None, delay_s: float = 0.0, delay_cv: float = 0.0):
        self.r, self.b, self.fail_below = float(particle_radius_m), float(bruggeman_exponent), fail_below_porosity
        self.delay_s, self.delay_cv = float(delay_s), float(delay_cv)

    def characterise(self, volumes: np.ndarray, voxel_size_m: float, seed: int | None = None) -> MicrostructureMetrics:
        v = np.asarray(volumes)
        if v.ndim == 3:
            v = v[None]
        n, L = v.shape[0], v.shape[1]
        if self.delay_s > 0:
            import time

            sigma = math.sqrt(math.log1p(self.delay_cv ** 2))
            factor = float(np.random.default_rng([int(seed or 0), 7]).lognormal(-sigma ** 2 / 2, sigma))
            time.sleep(self.delay_s * n * factor)
        flat = v.reshape(n, -1)
        eps = (flat == 0).mean(1)
        am = (flat == 1).mean(1)
        cbd = (flat == 2).mean(1)
        if self.fail_below is not None and eps.mean() < self.fail_below:
            return MicrostructureMetrics.failed("pore network does not percolate through-plane (stub: porosity "
                                                f"{eps.mean():.3f} < {self.fail_below})", voxel_size_m, L, n)
        a = 3 * am / self.r
        share = eps / np.maximum(eps + cbd, 1e-12)
        values = {
            POROSITY: eps, AM_VOLUME_FRACTION: am, CBD_VOLUME_FRACTION: cbd,
            TORTUOSITY_THROUGH_PLANE: np.maximum(eps, 1e-6) ** (1 - self.b),
            SSA_AM_PORE: a * share, SSA_AM_CBD: a * (1 - share),
            CONDUCTIVITY_SOLID: 760.0 * cbd ** 1.5 + 0.18 * am ** 1.5,
        }
        est = {k: MetricEstimate.from_values(k, x) for k, x in values.items()}
        return MicrostructureMetrics(estimates=est, voxel_size_m=float(voxel_size_m), cube_size_voxels=L, n_cubes=n,
                                     stop_reason="fixed_count")


class StubCell:
    """Closed-form cell energy (see module docstring). Returns a ``CellResult``.

    Args:
        power_W: discharge power [W] (recorded; scales the penetration depth as ``(10 W / P)^0.5``).
        can_volume_L: outer cell volume [L] (4680: 0.133 L, docs/cell_model.md).
        penetration_depth_m: electrolyte penetration depth at ε/τ = 0.2 and 10 W [m].
        max_thickness_m: a thicker coating fails ("does not fit", the geometry-failure path).
        delay_s: sleep this long per simulation [s] (emulates a slow stage in kill/resume tests).
        raise_above_thickness_m: raise RuntimeError above this thickness (the "stage raised" path).
        kill_process_once_flag: path of a flag file: the first simulation that finds it absent creates
            it and kills its own process with SIGKILL after ``delay_s`` (a worker lost mid-trial, for
            the tests of the Ray executor; never set it in-process). None: off.
    """

    def __init__(self, power_W: float = 10.0, can_volume_L: float = 0.133, penetration_depth_m: float = 1.2e-4,
                 max_thickness_m: float | None = None, delay_s: float = 0.0,
                 raise_above_thickness_m: float | None = None, kill_process_once_flag: str | None = None):
        from microdesign.errors import require

        require(math.isfinite(float(power_W)) and float(power_W) > 0, "cell.power_W", power_W, "a finite power > 0 [W]")
        require(float(can_volume_L) > 0, "cell.can_volume_L", can_volume_L, "a volume > 0 [L]")
        self.power_W, self.can_volume_L = float(power_W), float(can_volume_L)
        self.delay_s, self.raise_above = float(delay_s), raise_above_thickness_m
        self.L_pen, self.max_thickness_m = float(penetration_depth_m), max_thickness_m
        self.kill_process_once_flag = kill_process_once_flag

    def simulate(self, metrics: MicrostructureMetrics, cathode_thickness_m: float, protocol: Any = None) -> Any:
        from microdesign.cell.result import CellResult

        L = float(cathode_thickness_m)
        if self.delay_s > 0:
            import time

            time.sleep(self.delay_s)
        if self.kill_process_once_flag is not None:
            import os
            import signal

            try:  # O_EXCL: exactly one process wins the flag, even among concurrent workers
                os.close(os.open(self.kill_process_once_flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        if self.raise_above is not None and L > self.raise_above:
            raise RuntimeError(f"stub cell raised at thickness {L:.3g} m")
        if not metrics.ok:
            return CellResult.failed(f"characterisation failed: {metrics.reason}", cell_format="stub")
        if self.max_thickness_m is not None and L > self.max_thickness_m:
            return CellResult.failed(f"cathode {L * 1e6:.0f} um thicker than {self.max_thickness_m * 1e6:.0f} um",
                                     cathode_thickness_m=L, cell_format="stub")
        m = metrics.means()
        eps, x_am, tau = m[POROSITY], m[AM_VOLUME_FRACTION], m[TORTUOSITY_THROUGH_PLANE]
        sigma = m.get(CONDUCTIVITY_SOLID, 1.0)
        rho_am, rho_graphite = NMC811_DENSITY_KG_M3, GRAPHITE_DENSITY_KG_M3
        q_vol = 0.190 * (rho_am * 1e3) * 3.7  # 190 mAh/g NMC x 4.75 g/cm3 x 3.7 V -> Wh per m3 of AM
        L_pen = self.L_pen * ((eps / tau) / 0.2) * math.sqrt(10.0 / self.power_W) * sigma / (sigma + 0.5)
        utilisation = 1.0 / (1.0 + (L / L_pen) ** 2)
        inactive = (16e-6 / 2 + 12e-6 / 2 + 12e-6
                    + 1.1 * L * x_am * g_cm3(rho_am) * 0.19 / (g_cm3(rho_graphite) * 0.36 * 0.7))  # per side
        wh_per_m3_stack = q_vol * x_am * L * utilisation / (L + inactive) / 1000.0
        packing = 0.72  # jelly roll share of the can volume
        ved = wh_per_m3_stack * packing
        energy = ved * self.can_volume_L
        return CellResult(status="ok", protocol=f"stub constant power {self.power_W:g} W", power_W=self.power_W,
                          energy_Wh=energy, volumetric_energy_density_Wh_L=ved,
                          specific_energy_Wh_kg=energy / 0.36, cathode_thickness_m=L, can_volume_L=self.can_volume_L,
                          cell_format="stub", extra={"utilisation": utilisation})
