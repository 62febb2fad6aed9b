"""Benchmark the rate-capability map: our rate map vs a plain PyBaMM loop, same grid, same run.

Ours: ``microdesign.cell.rate_map.rate_map`` on a mass loading x press density grid (Chen2020's
cathode re-densified with its Bruggeman transport, N/P held, 4680 format): per grid point one DFN
build, one C/10 reference and one discharge per C-rate (``RateSweep``), grid points in parallel
processes (and, for the ratio per CPU, in one process). Plain: the documented PyBaMM way, one
``pybamm.Simulation`` with a ``pybamm.Experiment`` per discharge (one build per solve), the default
Bruggeman transport of the set, the anode scaled with the cathode's capacity, the C/10 reference then
each C-rate of the measured C/10 capacity. Accuracy: retention (capacity at the rate / capacity at
C/10) in percentage points and the C/10 areal capacity, ours vs plain, at every point and C-rate.

Usage: OMP_NUM_THREADS=1 python scripts/benchmark_rate_map.py [--n 5] [--c-rates 0.5 1 2] [--figures docs]
Writes docs/benchmarks/rate_map.md (and, with --figures, the Chen2020 maps docs/rate_map_*.png), then
reassembles docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import REPO_ROOT, write_section  # noqa: E402

from microdesign.cell.pybamm_reference import plain_rate_capability as plain_point  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5, help="grid points per axis")
    ap.add_argument("--c-rates", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--workers", type=int, default=None, help="processes of our map (default: one per CPU)")
    ap.add_argument("--figures", default=None, help="folder for the maps' PNG files (e.g. docs)")
    args = ap.parse_args()

    import pybamm
    from omegaconf import OmegaConf

    from microdesign.cell.rate_map import RateMapGrid, prepare_cell_config, rate_map
    from microdesign.config import compose

    cell_cfg, cd = prepare_cell_config(OmegaConf.to_container(compose("cell").cell, resolve=True), None)
    mls = [float(v) for v in np.linspace(15.0, 35.0, args.n)]
    pds = [float(v) for v in np.linspace(2.8, 3.6, args.n)]
    grid = RateMapGrid(tuple(mls), tuple(pds), tuple(args.c_rates), cd)
    n_points, r = args.n * args.n, len(args.c_rates)
    # warm-up (imports, the base set's electrode balance), so that no run below pays for it
    rate_map(cell_cfg, RateMapGrid((mls[0],), (pds[0],), (1.0,), cd), workers=1)
    plain_point(mls[0], pds[0], cd, [1.0])
    load0 = os.getloadavg()[0]

    def cpu() -> float:  # this process and its finished worker processes [s]
        return time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime \
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime

    cpu0, t0 = cpu(), time.perf_counter()
    serial = rate_map(cell_cfg, grid, workers=1)
    t_serial, cpu_serial = time.perf_counter() - t0, cpu() - cpu0
    cpu0, t0 = cpu(), time.perf_counter()
    ours = rate_map(cell_cfg, grid, workers=args.workers)
    t_ours, cpu_ours = time.perf_counter() - t0, cpu() - cpu0

    cpu0 = cpu()
    t0 = time.perf_counter()
    plain_ret = np.full((args.n, args.n, r), np.nan)
    plain_areal = np.full((args.n, args.n), np.nan)
    for i, j, ml, pd in grid.points():
        q10, ret, area = plain_point(ml, pd, cd, list(args.c_rates))
        plain_ret[i, j] = ret
        plain_areal[i, j] = q10 / area * 0.1
    t_plain, cpu_plain = time.perf_counter() - t0, cpu() - cpu0
    load1 = os.getloadavg()[0]

    d_ret = np.abs(100 * ours.arrays["retention"] - 100 * plain_ret)
    d_areal = np.abs(ours.arrays["c10_areal_capacity_mAh_cm2"] / plain_areal - 1)
    same = all(np.array_equal(ours.arrays[k], serial.arrays[k], equal_nan=True) for k in ours.arrays)
    ret2 = 100 * ours.arrays["retention"][:, :, -1]
    ved = ours.arrays["volumetric_energy_density_Wh_L"]
    best = np.unravel_index(np.nanargmax(ved[:, :, -1]), ved.shape[:2])
    lo, hi = (np.unravel_index(f(ret2), ret2.shape) for f in (np.nanargmin, np.nanargmax))

    if args.figures:
        ours.plot(REPO_ROOT / args.figures, prefix="rate_map_chen2020_")
        ours.write_csv(REPO_ROOT / args.figures / "rate_map_chen2020.csv")

    rates = ", ".join(f"{c:g}C" for c in args.c_rates)
    body = f"""
Grid: {args.n} mass loadings ({mls[0]:g}-{mls[-1]:g} mg.cm-2) x {args.n} press densities ({pds[0]:g}-{pds[-1]:g}
g.cm-3, crystallographic density {cd:g} g.cm-3) x {r} C-rates ({rates}) = {n_points} cells, {n_points * r} rated
discharges plus {n_points} C/10 references; Chen2020's cathode re-densified (Bruggeman transport of the set),
N/P {ours.settings['n_p_ratio']:.3f} held, 4680 format, DFN, IDAKLU (rtol = atol = 1e-6), PyBaMM {pybamm.__version__}.

| run | wall time | CPU time (all processes) | ratio vs plain: wall / CPU |
|---|---|---|---|
| ours, `rate_map`, 1 process | {t_serial:.1f} s | {cpu_serial:.1f} s | {t_plain / t_serial:.1f}x / {cpu_plain / cpu_serial:.1f}x |
| ours, `rate_map`, {ours.settings['workers']} worker processes | {t_ours:.1f} s | {cpu_ours:.1f} s | {t_plain / t_ours:.1f}x / {cpu_plain / cpu_ours:.1f}x |
| plain PyBaMM loop (one build per solve, {n_points * (r + 1)} builds) | {t_plain:.1f} s | {cpu_plain:.1f} s | 1x |

All runs after a warm-up (imports, the base set's electrode balance). Per grid point: ours {cpu_serial / n_points:.2f} s CPU
in one process (one build, {r + 1} solves), plain {cpu_plain / n_points:.2f} s CPU ({r + 1} builds and solves); the parallel
map forks its workers (each builds its own models). Parallel and serial maps identical: {same}.
Load: 1-min load average {load0:.1f} at the start and {load1:.1f} at the end on {os.cpu_count()} cores
(shared machine: wall times include other jobs).

Accuracy (ours vs plain, all {n_points * r} entries): max |retention difference| = {np.nanmax(d_ret):.1e} percentage
points (mean {np.nanmean(d_ret):.1e}); max relative difference of the C/10 areal capacity = {np.nanmax(d_areal):.1e};
failed entries: ours {ours.n_failed}, plain {int(np.isnan(plain_ret).sum())}.

What the map says (Chen2020 cathode, 4680): {args.c_rates[-1]:g}C retention ranges from {np.nanmin(ret2):.1f}%
({mls[lo[0]]:g} mg.cm-2, {pds[lo[1]]:g} g.cm-3) to {np.nanmax(ret2):.1f}% ({mls[hi[0]]:g} mg.cm-2, {pds[hi[1]]:g} g.cm-3); the highest volumetric
energy density at {args.c_rates[-1]:g}C is {np.nanmax(ved[:, :, -1]):.0f} W.h.L-1 at {mls[best[0]]:g} mg.cm-2 and
{pds[best[1]]:g} g.cm-3 (docs/rate_map.md).
"""
    cmd = "OMP_NUM_THREADS=1 python scripts/benchmark_rate_map.py" + (f" --figures {args.figures}" if args.figures else "")
    path = write_section("rate_map", "Rate-capability map (mass loading x press density)", body, cmd)
    print(path.read_text())
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "benchmark.py"), "--assemble-only"],
                   check=True, cwd=REPO_ROOT)


if __name__ == "__main__":
    main()
