"""Benchmark and validation of the synthetic line; writes docs/benchmarks/synth.md.

1. Speed and accuracy: :class:`microdesign.synth.SyntheticLine` (3 phases, exact fractions) against
   the plain library call PoreSpy ``generators.polydisperse_spheres`` (2 phases: solid/pore, same
   log-normal radii, same target solid fraction), 128^3 at the default voxel size.
2. Realism: the synthetic line at the NREL NMC-1 volume's phase fractions (adhesion 1, i.e. CBD
   as bridges, the placement NREL used) against cubes of the real volume
   (nrel_nmc1_cal_cbd_bridge.tif, 0.398 um voxels; docs/public_data.md): AM local-thickness radius,
   equivalent-sphere radius 3 X_AM / S_AM, interfacial areas (face counting, TauFactor) and the pore
   tortuosity factor through-plane (axis 0) and in-plane (axis 1) (TauFactor ``Solver``).
3. Trends: pore tortuosity factor and AM-pore surface area over porosity x CBD adhesion (64^3).

Usage (PoreSpy is the ``bench`` extra: ``pip install -e ".[bench]"``)::

    python scripts/benchmark_synth.py [--cube 128] [--seeds 3] [--no-tau] [--no-trends]

Never run in CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NREL = REPO.parent / "shared" / "data" / "nrel_nmc1_cal_cbd_bridge.tif"
VOXEL = 0.398e-6
# NREL phase fractions -> AM weight fraction with the 1:1 carbon:PVDF formulation that gives the same
# CBD:AM volume ratio (0.1000 / 0.4995): w = 0.928 (solved from the phase-fraction equation of
# docs/process_model.md).
NREL_PARAMS = {"am_weight_fraction": 0.928, "porosity": 0.4005, "cbd_adhesion": 1.0}


def describe(vol: np.ndarray, tau: bool) -> dict[str, float]:
    import porespy as ps
    from taufactor.metrics import interfacial_areas

    out: dict[str, float] = {}
    frac = np.bincount(vol.ravel(), minlength=3) / vol.size
    out["X_pore"], out["X_AM"], out["X_CBD"] = map(float, frac)
    areas = interfacial_areas(vol, spacing=(1, 1, 1), device="cpu")  # faces per voxel
    per_m = {k: v / VOXEL for k, v in areas.items()}
    out["S_AM-pore [1/um]"] = per_m.get((0, 1), 0.0) * 1e-6
    out["S_AM-CBD [1/um]"] = per_m.get((1, 2), 0.0) * 1e-6
    out["S_CBD-pore [1/um]"] = per_m.get((0, 2), 0.0) * 1e-6
    s_am = per_m.get((0, 1), 0.0) + per_m.get((1, 2), 0.0)
    out["r_eq = 3X_AM/S_AM [um]"] = 3 * frac[1] / s_am * 1e6
    am = vol == 1
    lt = ps.filters.local_thickness(am, method="dt", sizes=40)
    out["AM local thickness radius [um]"] = float(lt[am].mean()) * VOXEL * 1e6
    if tau:
        import taufactor as tf

        for name, axis in (("tau pore through-plane (ax0)", 0), ("tau pore in-plane (ax1)", 1)):
            img = np.ascontiguousarray(np.moveaxis(vol == 0, axis, 0)).astype(np.uint8)
            s = tf.Solver(img, device="cpu")
            s.solve(verbose=False, conv_crit=1e-2, iter_limit=20000)
            out[name] = float(np.asarray(s.tau).ravel()[0])
    return out


def _face_area(vol: np.ndarray, a: int, b: int) -> float:
    """Faces between phases a and b per voxel (divide by the voxel size for [m-1])."""
    n = 0
    for ax in range(vol.ndim):
        x, y = np.moveaxis(vol, ax, 0)[:-1], np.moveaxis(vol, ax, 0)[1:]
        n += int(np.sum((x == a) & (y == b)) + np.sum((x == b) & (y == a)))
    return n / vol.size


def summarise(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    keys = rows[0].keys()
    return {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows], ddof=1) if len(rows) > 1
                                                           else 0.0)) for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cube", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--no-tau", action="store_true")
    ap.add_argument("--no-trends", action="store_true")
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks" / "synth.md"))
    args = ap.parse_args()
    L = args.cube

    try:
        import porespy as ps
    except ImportError:
        raise SystemExit("benchmark_synth.py compares against PoreSpy, an optional extra: "
                         'pip install -e ".[bench]"') from None
    import tifffile

    from microdesign.synth import SyntheticLine

    line = SyntheticLine()
    # ---- 1. speed and accuracy vs PoreSpy ------------------------------------------------------
    speed_params = {"am_weight_fraction": 0.94, "porosity": 0.35, "cbd_adhesion": 0.5}
    target = line.target_fractions(speed_params)
    ours_t, ours_err = [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        v = line.generate(speed_params, L, seed=seed)
        ours_t.append(time.perf_counter() - t0)
        f = np.bincount(v.ravel(), minlength=3) / v.size
        ours_err.append(max(abs(f[0] - target["pore"]), abs(f[1] - target["active_material"]),
                            abs(f[2] - target["cbd"])))
    from scipy import stats

    r_mean = line.particle_radius_mean_m / VOXEL
    sigma = np.sqrt(np.log1p(line.particle_radius_cv**2))
    dist = stats.lognorm(s=sigma, scale=r_mean * np.exp(-0.5 * sigma**2))
    ps_t, ps_err = [], []
    solid = target["active_material"]
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        im = ps.generators.polydisperse_spheres([L, L, L], porosity=1 - solid, dist=dist, nbins=5,
                                                r_min=max(2, int(r_mean / 2.5)), seed=seed)
        ps_t.append(time.perf_counter() - t0)
        ps_err.append(abs((~im.astype(bool)).mean() - solid))  # porespy: True = pore

    # ---- 2. realism vs the NREL volume ---------------------------------------------------------
    real_rows, synth_rows = [], []
    nrel_available = NREL.is_file()
    if nrel_available:
        vol = tifffile.imread(NREL)
        starts0 = [0, vol.shape[0] - L]
        starts12 = [0, vol.shape[1] - L]
        cubes = [(a, b, c) for a in starts0 for b in starts12 for c in starts12][: max(args.seeds, 2) + 1]
        for a, b, c in cubes:
            real_rows.append(describe(np.ascontiguousarray(vol[a:a + L, b:b + L, c:c + L]), not args.no_tau))
        for seed in range(args.seeds):
            synth_rows.append(describe(line.generate(NREL_PARAMS, L, voxel_size_m=VOXEL, seed=seed), not args.no_tau))

    # ---- 3. trends over the design space ---------------------------------------------------------
    trend_rows = []
    if not args.no_trends:
        import taufactor as tf

        T = 64
        for porosity in (0.25, 0.375, 0.5):
            for adhesion in (0.0, 0.5, 1.0):
                taus, s_ap = [], []
                for seed in range(2):
                    p = {"am_weight_fraction": 0.94, "porosity": porosity, "cbd_adhesion": adhesion}
                    v = line.generate(p, T, seed=seed)
                    s_ap.append(_face_area(v, 0, 1) / VOXEL * 1e-6)
                    solver = tf.Solver((v == 0).astype(np.uint8), device="cpu")
                    solver.solve(verbose=False, conv_crit=1e-2, iter_limit=20000)
                    taus.append(float(np.asarray(solver.tau).ravel()[0]))
                trend_rows.append((porosity, adhesion, np.mean(taus), np.std(taus), np.mean(s_ap), np.std(s_ap)))

    # ---- report ---------------------------------------------------------------------------------
    lines = [
        "# Synthetic line: speed, accuracy and comparison with the real NREL volume",
        "",
        f"- date: {dt.datetime.now().isoformat(timespec='minutes')}",
        f"- machine: {platform.node()} ({platform.processor() or platform.machine()}), "
        f"{__import__('os').cpu_count()} logical CPUs shared with other jobs (timings are upper bounds)",
        f"- command: `python scripts/benchmark_synth.py --cube {L} --seeds {args.seeds}"
        f"{' --no-tau' if args.no_tau else ''}{' --no-trends' if args.no_trends else ''}`",
        f"- synthetic line defaults: mean radius {line.particle_radius_mean_m * 1e6:.2f} um, cv "
        f"{line.particle_radius_cv}, dry porosity {line.dry_porosity}, particle flattening "
        f"{line.particle_flattening}, neck length "
        f"{line.cbd_neck_length_m * 1e6:.2f} um, agglomerate size {line.cbd_agglomerate_size_m * 1e6:.2f} um, "
        f"voxel {VOXEL * 1e6:.3f} um",
        "",
        f"## 1. Speed and accuracy, {L}^3, {args.seeds} seeds",
        "",
        "| generator | phases | wall time [s] mean (min-max) | max abs. phase-fraction error |",
        "|---|---|---|---|",
        f"| microdesign SyntheticLine ({speed_params}) | 3 | {np.mean(ours_t):.2f} ({min(ours_t):.2f}-{max(ours_t):.2f}) "
        f"| {max(ours_err):.2e} |",
        f"| PoreSpy `polydisperse_spheres` (same radii, solid fraction {solid:.3f}) | 2 | {np.mean(ps_t):.2f} "
        f"({min(ps_t):.2f}-{max(ps_t):.2f}) | {max(ps_err):.2e} |",
        "",
        "PoreSpy's generator gives only solid/pore with freely overlapping spheres and no calendering "
        "or CBD; the speed ratio is therefore for a simpler task. Ours hits every phase to within one voxel.",
        "",
    ]
    if nrel_available:
        real = summarise(real_rows)
        syn = summarise(synth_rows)
        lines += [
            f"## 2. Against the NREL NMC-1 calendered volume ({L}^3 cubes, voxel 0.398 um)",
            "",
            f"Real: {len(real_rows)} cubes of `nrel_nmc1_cal_cbd_bridge.tif` (corners of the volume). "
            f"Synthetic: {len(synth_rows)} seeds at the real volume's fractions, parameters {NREL_PARAMS}. "
            "Areas by face counting (TauFactor `interfacial_areas`; face counting overestimates smooth "
            "surfaces by ~1.5x for both alike); tortuosity by TauFactor `Solver` (conv_crit 1e-2).",
            "",
            "| quantity | NREL real, mean ± std | synthetic, mean ± std | synthetic / real |",
            "|---|---|---|---|",
        ]
        for k in real:
            rm, rs = real[k]
            sm, ss = syn[k]
            ratio = sm / rm if rm else float("nan")
            lines.append(f"| {k} | {rm:.4g} ± {rs:.2g} | {sm:.4g} ± {ss:.2g} | {ratio:.2f} |")
        lines.append("")
    else:
        lines += [f"NREL volume not found at {NREL}: comparison skipped.", ""]
    if trend_rows:
        lines += [
            "## 3. Trends over the design space (64^3, 0.398 um, AM weight fraction 0.94, 2 seeds each)",
            "",
            "| porosity | CBD adhesion | pore tortuosity factor through-plane | S_AM-pore [1/um] (face counting) |",
            "|---|---|---|---|",
        ]
        for por, adh, tm, ts, sm, ss in trend_rows:
            lines.append(f"| {por:.3f} | {adh:.1f} | {tm:.2f} ± {ts:.2f} | {sm:.3f} ± {ss:.3f} |")
        lines.append("")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
