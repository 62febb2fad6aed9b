"""Benchmark: generator volumes per second at 128^3 -> docs/benchmarks/generator.md.

Times, in the same run and on the same machine:
* ``Generator.sample`` (our wrapper: validation, seeded noise, network, labels, crop) at 128^3, with the
  config's labelling and, where that is not the argmax, with the argmax labels too (and, where the config
  sets a ``pore_neighbour_penalty``, with the design labels without it);
* the plain network forward pass (torch only, same latent size) - the library floor;
* the forward pass + ``torch.argmax`` labels (the plain labelling, replaced by
  :func:`microdesign.generator.sampler.argmax_uint8`; identical labels);
* the synthetic line ``SyntheticLine.generate`` at 128^3 (the "manufacturing simulation" the
  generator replaces; it is also the oracle of the fidelity report).

Usage: python scripts/benchmark_generator.py [--generator shipped] [--size 128] [--repeats 3] [--threads 0]
Never run in CI.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="shipped")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--output", default="docs/benchmarks/generator.md")
    args = ap.parse_args()

    import numpy as np
    import torch
    from hydra.utils import instantiate

    from microdesign.config import compose
    from microdesign.generator.sampler import describe_labelling

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = compose("sample", [f"generator={args.generator}"])
    gen = instantiate(cfg.generator)
    params = {k: 0.5 * (lo + hi) for k, (lo, hi) in gen.training_bounds.items()}
    L = args.size
    rows = []
    load0 = os.getloadavg()[0]
    gen.sample(params, 1, L, seed=0)  # warm-up
    def like(**changes):  # the same network and settings, with ``changes``
        kw = {"batch_size": gen.batch_size, "phase_fractions": gen.phase_fractions,
              "carbon_to_binder_weight_ratio": gen.carbon_to_binder_weight_ratio,
              "pore_neighbour_penalty": gen.pore_neighbour_penalty}
        return type(gen)(gen.network, gen.metadata, device=str(gen.device), **{**kw, **changes})

    variants = [gen]
    if gen.labelling["pore_neighbour_penalty"]:  # the same design labels without the penalty
        variants.append(like(pore_neighbour_penalty=0.0))
    if gen.phase_fractions != "argmax":
        variants.append(like(phase_fractions="argmax"))
    for g in variants:
        for n in (1, 4):
            t = _time(lambda: g.sample(params, n, L, seed=1), args.repeats)
            rows.append((f"Generator.sample, {describe_labelling(g.labelling)}, n={n} (batch_size {g.batch_size})",
                         n, t))
    wide = like(batch_size=4)
    rows.append((f"Generator.sample, {describe_labelling(gen.labelling)}, n=4 (batch_size 4)", 4,
                 _time(lambda: wide.sample(params, 4, L, seed=1), args.repeats)))
    net = gen.network
    lz = net.latent_size_for(L)
    cond = torch.as_tensor(gen.normalise(params), dtype=torch.float32)[None]
    z = torch.randn(1, net.latent_channels, lz, lz, lz)

    def plain():
        with torch.inference_mode():
            net(z, cond)

    def argmax_path():  # the plain labelling: torch.argmax over the phases, int64 -> uint8 -> numpy
        with torch.inference_mode():
            return net(z, cond).argmax(dim=1).to(torch.uint8).cpu().numpy()

    rows.append(("plain torch forward (softmax output, no labels), n=1", 1, _time(plain, args.repeats)))
    rows.append(("plain torch forward + torch.argmax labels (argmax path), n=1", 1, _time(argmax_path, args.repeats)))
    synth_note = ""
    if gen.parameter_names and set(gen.parameter_names) <= {"am_weight_fraction", "porosity", "cbd_adhesion"}:
        from omegaconf import OmegaConf

        from microdesign.generator.reference import training_line_reference

        ref_cfg = compose("fidelity", []).reference
        line = training_line_reference(gen, "auto", list(ref_cfg.dataset_candidates),
                                       fallback=OmegaConf.to_container(ref_cfg.fallback_synth)).line()
        t = _time(lambda: line.generate(params, L, voxel_size_m=gen.voxel_size_m, seed=0), max(1, args.repeats - 1))
        rows.append(("SyntheticLine.generate (reference simulation), n=1", 1, t))
    else:
        synth_note = "(synthetic line not timed: the generator is not conditioned on its parameters)"
    vol = gen.sample(params, 1, L, seed=2)
    fr = np.bincount(vol.ravel(), minlength=3) / vol.size

    lines = [
        "# Generator benchmark", "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, device {gen.device}",
        f"- load average at start: {load0:.1f}, at end: {os.getloadavg()[0]:.1f} (other jobs on the machine)",
        f"- command: `python scripts/benchmark_generator.py --generator {args.generator} --size {L} "
        f"--repeats {args.repeats}{' --threads ' + str(args.threads) if args.threads else ''}`",
        f"- generator: `{gen.name}` ({sum(p.numel() for p in net.parameters())} parameters), at {params}",
        f"- cube: {L}^3 voxels at {gen.voxel_size_m:.3g} m; phase fractions of one sample: "
        f"pore {fr[0]:.3f}, AM {fr[1]:.3f}, CBD {fr[2]:.3f}", "",
        "| what | volumes per call | median s per call | volumes per s |", "|---|---|---|---|",
    ]
    for name, n, t in rows:
        med = statistics.median(t)
        lines.append(f"| {name} | {n} | {med:.3f} | {n / med:.2f} |")
    lines += ["", "Accuracy: see the fidelity tables in docs/generator.md (the generator is compared with the "
              "synthetic line at held-out points). " + synth_note]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
