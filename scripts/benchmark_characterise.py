"""Benchmark: full characterisation metric set, ours vs a plain loop of single-cube TauFactor solves.

Same cubes (seeded sub-cubes of the real NREL NMC volume in ../shared/data, or a seeded random
three-phase field when it is absent), same discretisation, same bulk conductivities. Accuracy of
both is measured against a reference: our solver in float64 driven to a relative energy change of
1e-10 (the exact discrete solution of TauFactor's own discretisation, to ~1e-9).

* plain loop: for each cube, ``taufactor.Solver(pore).solve()`` and
  ``taufactor.MultiPhaseSolver(solid, cond).solve()`` with TauFactor's default criterion
  (``conv_crit=1e-2``) and ``iter_limit`` as given, plus the same volume fractions / surface areas.
* ours: ``Characteriser(solver="mgcg")`` on the same cubes (energy criterion, rtol 1e-4), and the
  same with TauFactor's flux criterion (``criterion="flux"``).

Times are CPU seconds of this process (``time.process_time``) with ``torch.set_num_threads(threads)``,
because the machine is shared and wall time depends on the other users; wall time is reported too.

Usage::

    python scripts/benchmark_characterise.py --sizes 64 128 --counts 4 2 --threads 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NREL = ROOT / ".." / "shared" / "data" / "nrel_nmc1_cal_cbd_bridge.tif"
VOXEL_M = 0.398e-6


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cubes_for(L: int, n: int, seed: int) -> tuple[np.ndarray, str]:
    from microdesign.characterise import SubcubeSampler
    from microdesign.characterise.testing import random_three_phase

    from microdesign.characterise.transport import spanning_mask

    if NREL.is_file():
        import tifffile

        sampler, origin = SubcubeSampler(tifffile.imread(NREL), L), "NREL NMC-1 calendered (shared/data)"
        draw = lambda k: sampler(1, seed + k)[0]  # noqa: E731
    else:
        origin = "random three-phase field"
        draw = lambda k: random_three_phase(L, seed=seed + k)  # noqa: E731
    out, k = [], 0
    while len(out) < n:  # keep cubes whose pore and solid networks both span axis 0
        c = draw(k)
        k += 1
        if spanning_mask(c == 0).any() and spanning_mask(c > 0).any():
            out.append(c)
    return np.stack(out), f"{origin}, first {n} percolating of {k} drawn (seed {seed})"


def plain_taufactor_loop(cubes, cond, iter_limit, voxel):
    """Per cube: TauFactor Solver + MultiPhaseSolver with defaults, plus VF and SSA (same code as ours)."""
    import taufactor as tf

    from microdesign.characterise.surface import interface_ssa
    from microdesign.characterise.transport import quiet

    tau, sig, conv_t, conv_s, it_t, it_s = [], [], [], [], [], []
    for c in cubes:
        _ = [(c == p).mean() for p in (0, 1, 2)]
        _ = interface_ssa(c, voxel)
        with quiet():
            s = tf.Solver((c == 0).astype(np.uint8), device="cpu")
            s.solve(iter_limit=iter_limit, verbose=False)
            m = tf.MultiPhaseSolver(c.astype(np.uint8), cond=cond, device="cpu")
            m.solve(iter_limit=iter_limit, verbose=False)
        tau.append(float(np.atleast_1d(s.tau)[0]))
        sig.append(float(np.atleast_1d(m.D_eff)[0]))
        conv_t.append(bool(s.converged))
        conv_s.append(bool(m.converged))
        it_t.append(int(s.iter))
        it_s.append(int(m.iter))
    return dict(tau=np.array(tau), sigma=np.array(sig), conv_tau=np.array(conv_t), conv_sigma=np.array(conv_s),
                it_tau=np.array(it_t), it_sigma=np.array(it_s))


def timed(f):
    t0, w0 = time.process_time(), time.perf_counter()
    out = f()
    return out, time.process_time() - t0, time.perf_counter() - w0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--counts", type=int, nargs="+", default=[4, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iter-limit", type=int, default=10000, help="TauFactor iteration limit (its solve() default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "characterise.md"))
    args = ap.parse_args(argv)
    if len(args.counts) != len(args.sizes):
        ap.error("--counts needs one count per size")

    import taufactor
    import torch

    from microdesign.characterise import Characteriser
    from microdesign.characterise import metrics as M
    from microdesign.characterise import transport as T

    torch.set_num_threads(args.threads)
    bulk = {"active_material": 0.18, "cbd": 760.0}
    cond = {1: bulk["active_material"], 2: bulk["cbd"]}
    load0 = os.getloadavg()
    rows, notes = [], []
    for L, n in zip(args.sizes, args.counts):
        cubes, origin = cubes_for(L, n, args.seed)
        print(f"[{L}^3 x {n}] reference ...", flush=True)
        ref_tau = T.mgcg_tortuosity(cubes == 0, rtol=1e-10, dtype="float64", iter_limit=5000).tau
        ref_sig = T.mgcg_conductivity(cubes, cond, rtol=1e-10, dtype="float64", iter_limit=5000).d_eff
        print(f"  reference tau {ref_tau}, sigma {ref_sig}", flush=True)
        print(f"[{L}^3 x {n}] ours (energy) ...", flush=True)
        ours = Characteriser(solver="mgcg", threads=args.threads, bulk_conductivity_S_m=bulk, min_cubes=2)
        (vals, reason), t_ours, w_ours = timed(lambda: ours.measure(cubes, VOXEL_M))
        assert reason is None, reason
        ours_f = Characteriser(solver="mgcg", criterion="flux", threads=args.threads, bulk_conductivity_S_m=bulk,
                               min_cubes=2)
        print(f"[{L}^3 x {n}] ours (flux criterion) ...", flush=True)
        (vals_f, reason_f), t_f, w_f = timed(lambda: ours_f.measure(cubes, VOXEL_M))
        assert reason_f is None, reason_f
        print(f"[{L}^3 x {n}] plain TauFactor loop ...", flush=True)
        tf_res, t_tf, w_tf = timed(lambda: plain_taufactor_loop(cubes, cond, args.iter_limit, VOXEL_M))

        def err(a, ref):
            e = np.abs(np.asarray(a) / ref - 1)
            return f"{e.max():.1e} (mean {e.mean():.1e})"

        for name, t, w, tau, sig, extra in (
            ("TauFactor loop (SOR, conv_crit 1e-2)", t_tf, w_tf, tf_res["tau"], tf_res["sigma"],
             f"iters tau {tf_res['it_tau'].tolist()}, sigma {tf_res['it_sigma'].tolist()}; converged tau "
             f"{int(tf_res['conv_tau'].sum())}/{n}, sigma {int(tf_res['conv_sigma'].sum())}/{n}"),
            ("ours: mgcg, energy criterion rtol 1e-4", t_ours, w_ours, vals[M.TORTUOSITY_THROUGH_PLANE],
             vals[M.CONDUCTIVITY_SOLID], ""),
            ("ours: mgcg, TauFactor flux criterion 1e-2", t_f, w_f, vals_f[M.TORTUOSITY_THROUGH_PLANE],
             vals_f[M.CONDUCTIVITY_SOLID], ""),
        ):
            rows.append((L, n, name, t, w, n / t, t_tf / t, err(tau, ref_tau), err(sig, ref_sig), extra))
        notes.append(f"- {L}^3: cubes from {origin}; reference tau {np.round(ref_tau, 4).tolist()}, "
                     f"sigma [S/m] {np.round(ref_sig, 5).tolist()}")
        print(rows[-3:], flush=True)
    load1 = os.getloadavg()

    lines = [
        "# Benchmark: characterisation (full metric set), ours vs a plain TauFactor loop",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='minutes')}",
        f"- command: `python scripts/benchmark_characterise.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs (shared; load average {load0[0]:.1f} at start, "
        f"{load1[0]:.1f} at end), torch {torch.__version__} with {args.threads} thread(s), taufactor "
        f"{getattr(taufactor, '__version__', '1.2.1')}, Python {platform.python_version()}",
        "- GPU: none on this machine; the GPU path (`device: auto|cuda`, batched solves) is coded but **not "
        "measured** here.",
        f"- metrics per cube: 3 volume fractions, 2 interface SSAs (face counting), pore tortuosity factor "
        f"through-plane (TauFactor `Solver` discretisation), solid conductivity with AM {bulk['active_material']} "
        f"S/m and CBD {bulk['cbd']} S/m (TauFactor `MultiPhaseSolver` discretisation). TauFactor iter_limit "
        f"{args.iter_limit}.",
        "- time: CPU seconds of the process (`time.process_time`); wall seconds in brackets (shared machine).",
        "- error: relative to the float64 reference solution of the same discrete problem (max over cubes, mean).",
        "",
        "| L | cubes | method | CPU s (wall s) | cubes / CPU s | speed-up vs TauFactor | tau error | sigma error | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for L, n, name, t, w, rate, ratio, e_tau, e_sig, extra in rows:
        lines.append(f"| {L} | {n} | {name} | {t:.1f} ({w:.1f}) | {rate:.3g} | {ratio:.1f}x | {e_tau} | {e_sig} | {extra} |")
    lines += ["", *notes, ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
