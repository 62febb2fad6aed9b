"""Benchmark the cell model: seconds per discharge and per Ragone curve, ours vs plain PyBaMM.

Ours: ``CellModel`` builds one DFN per geometry (cached) with the cathode structure and the power as
``[input]`` parameters, and re-solves it with IDAKLU for each power. Plain: the documented PyBaMM
way, a fresh ``pybamm.Simulation`` with ``pybamm.Experiment(["Discharge at P W until 2.5 V"])`` and
fixed parameter values per discharge (same parameter values, same IDAKLU solver and tolerances).
Accuracy: relative energy difference between the two at every power.

Usage: python scripts/benchmark_cell.py [--n 8] [--low 5] [--high 200]
Writes docs/benchmarks/cell.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8, help="powers per Ragone curve")
    ap.add_argument("--low", type=float, default=5.0)
    ap.add_argument("--high", type=float, default=200.0)
    args = ap.parse_args()

    import pybamm

    from microdesign.cell import CathodeStructure, ConstantPower, build_cell_model
    from microdesign.config import compose

    powers = [float(p) for p in np.geomspace(args.low, args.high, args.n)]
    cathode = CathodeStructure.from_parameter_values(pybamm.ParameterValues("Chen2020"))
    designs = {"Chen2020 cathode, 75.6 um": (cathode.to_metrics(), 75.6e-6),
               "CBD 0.1, tau 3, 110 um": (CathodeStructure(0.30, 0.60, 0.10, 3.0, 2.0, 3.0e5).to_metrics(), 110e-6)}

    rows, acc = [], []
    cpu0, load0 = time.process_time(), os.getloadavg()[0]
    for label, (metrics, L) in designs.items():
        model = build_cell_model(compose("cell").cell)
        design = model.design(metrics, L)
        # ours: first discharge includes the build, the rest of the curve re-uses it
        t0 = time.perf_counter()
        first, _ = model.run_protocol(design, ConstantPower(powers[0]))
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = [first] + [model.run_protocol(design, ConstantPower(p))[0] for p in powers[1:]]
        t_rest = time.perf_counter() - t0
        t_curve_ours = t_first + t_rest
        t_warm = t_rest / max(1, len(powers) - 1)
        # warm re-solve only (model already built): the whole curve again
        t0 = time.perf_counter()
        for p in powers:
            model.run_protocol(design, ConstantPower(p))
        t_curve_warm = time.perf_counter() - t0

        # plain PyBaMM: a fresh simulation with an Experiment per discharge, fixed values
        pv = model.parameter_values(design, drive="current", fixed=True)
        pv.update({"Current function [A]": 1.0})
        solver_opts = model.solver_options
        plain_E, t_plain = [], []
        for p in powers:
            t0 = time.perf_counter()
            sim = pybamm.Simulation(
                pybamm.lithium_ion.DFN(options={"transport efficiency": "tortuosity factor",
                                                "calculate discharge energy": "true"}),
                parameter_values=pv.copy(),
                experiment=pybamm.Experiment([f"Discharge at {p:g} W until {model.cutoff_V:g} V"]),
                solver=pybamm.IDAKLUSolver(rtol=solver_opts["rtol"], atol=solver_opts["atol"]))
            sol = sim.solve()
            t_plain.append(time.perf_counter() - t0)
            plain_E.append(float(sol["Discharge energy [W.h]"].entries[-1]))
        rel = [abs(o.energy_Wh - e) / e for o, e in zip(ours, plain_E) if o.ok and e > 0]
        acc.append((label, max(rel) if rel else float("nan"), sum(o.ok for o in ours)))
        rows.append((label, t_first, t_warm, t_curve_ours, t_curve_warm, float(np.mean(t_plain)), float(np.sum(t_plain)),
                     ours[0].volumetric_energy_density_Wh_L, ours[-1].volumetric_energy_density_Wh_L))

    cpu, load1 = time.process_time() - cpu0, os.getloadavg()[0]
    lines = ["| design (4680) | ours: 1st discharge (build + solve) | ours: warm discharge | ours: Ragone curve "
             "(cold / warm) | plain PyBaMM: per discharge | plain: Ragone curve | ratio per curve (cold / warm) |",
             "|---|---|---|---|---|---|---|"]
    for (label, tf, tw, tc, tcw, tp, tpc, *_rest) in rows:
        lines.append(f"| {label} | {tf:.2f} s | {tw * 1e3:.0f} ms | {tc:.2f} s / {tcw:.2f} s | {tp:.2f} s | "
                     f"{tpc:.2f} s | {tpc / tc:.1f}x / {tpc / tcw:.1f}x |")
    acc_lines = "\n".join(f"- {label}: max relative energy difference ours vs plain over {args.n} powers = {m:.1e} "
                          f"({ok}/{args.n} discharges ok)" for label, m, ok in acc)
    ed = "\n".join(f"- {r[0]}: {r[7]:.0f} W.h.L-1 at {powers[0]:g} W, {r[8]:.0f} W.h.L-1 at {powers[-1]:g} W"
                   for r in rows)
    body = f"""
Ragone curve = {args.n} constant-power discharges from {args.low:g} W to {args.high:g} W (geometric), 4680 format,
Chen2020 base set, DFN with `transport efficiency: tortuosity factor`, IDAKLU (rtol = atol = 1e-6), PyBaMM
{pybamm.__version__}. "Cold" includes building the model for the design's geometry (thickness, effective
particle radius and area are not `[input]`-able, so every new design pays one build); "warm" re-solves
a cached model with new inputs (a second sweep of the same design, or the C/10 + C-rate pair).

{chr(10).join(lines)}

Load: 1-min load average {load0:.1f} at the start and {load1:.1f} at the end on {os.cpu_count()} cores (shared
machine: wall times are inflated by other jobs; this process used {cpu:.1f} s CPU for the whole run).

Accuracy:
{acc_lines}

Volumetric energy density:
{ed}
"""
    path = write_section("cell", "Cell model (PyBaMM DFN, 4680)", body, "python scripts/benchmark_cell.py")
    print(path.read_text())


if __name__ == "__main__":
    main()
