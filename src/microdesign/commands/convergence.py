"""Convergence analysis of characterisation: cube sizes x cube counts -> mean and CI of each metric.

Writes ``convergence.csv`` (every size, count and metric), ``convergence.md`` (the table and the
conclusion) and ``convergence.png`` (relative CI against count, one line per size, target dashed)
to ``output_dir``, and reports the cheapest setting meeting ``target_relative_ci``.

Examples::

    microdesign convergence source.path=<data>/nrel_nmc1_cal_cbd_bridge.tif source.voxel_size_m=3.98e-7
    microdesign convergence source.kind=synthetic cube_sizes=[32,48] counts=[4,8] characterise=fast

``<data>``: the folder of the public NMC data sets (docs/public_data.md).
"""

from __future__ import annotations

NAME = "convergence"
HELP = "cube size x cube count convergence of the characterisation metrics (table + plot, smallest setting)"
CONFIG_NAME = "convergence"


def run(cfg) -> int:
    import csv
    import logging
    from pathlib import Path

    from hydra.utils import instantiate

    from microdesign.characterise.convergence import convergence_analysis
    from microdesign.characterise.io import command_cube_sources

    from omegaconf import ListConfig

    from microdesign.data.files import require_writable

    log = logging.getLogger(__name__)
    require_writable(cfg.output_dir, "output_dir", directory=True)

    def as_list(value):  # a single size or count is a list of one
        return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]

    sizes = [int(s) for s in as_list(cfg.cube_sizes)]
    # validate the source for every size before any solve
    sources, voxel = command_cube_sources(cfg, sizes)
    characteriser = instantiate(cfg.characterise)
    res = convergence_analysis(characteriser, lambda L: sources[L], voxel, sizes, [int(n) for n in as_list(cfg.counts)],
                               target_relative_ci=float(cfg.target_relative_ci), seed=int(cfg.seed))
    out = Path(str(cfg.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "convergence.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cube_size_voxels", "n_cubes", "metric", "mean", "std", "ci95_half_width", "relative_ci95"])
        for r in res.rows:
            w.writerow([r.cube_size_voxels, r.n_cubes, r.metric, r.mean, r.std, r.ci95_half_width, r.relative_ci95])
    metrics = list(dict.fromkeys(r.metric for r in res.rows))
    lines = [f"# Characterisation convergence (target relative 95% CI {res.target_relative_ci:g})", "",
             f"voxel size {voxel:.4g} m, solver {characteriser.solver.name}, seed {cfg.seed}", "",
             "| L | n | " + " | ".join(f"{m} (mean, rel. CI)" for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    keys = sorted({(r.cube_size_voxels, r.n_cubes) for r in res.rows})
    for L, n in keys:
        cells = {r.metric: r for r in res.rows if (r.cube_size_voxels, r.n_cubes) == (L, n)}
        lines.append(f"| {L} | {n} | " + " | ".join(
            f"{cells[m].mean:.4g} ({100 * cells[m].relative_ci95:.2f}%)" for m in metrics) + " |")
    lines.append("")
    for L, reason in res.failures.items():
        lines.append(f"- cube size {L}: failed: {reason}")
    for L, n in res.predicted_n.items():
        lines.append(f"- cube size {L}: about {n} cubes predicted for the target")
    conclusion = (f"smallest setting meeting the target: {res.smallest[1]} cubes of {res.smallest[0]}^3"
                  if res.smallest else "no setting met the target; see the predicted counts")
    lines += ["", f"**{conclusion}**", ""]
    (out / "convergence.md").write_text("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = min(4, max(1, len(metrics)))
    nrow = -(-len(metrics) // ncol) if metrics else 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.2 * nrow), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        for L in sorted({r.cube_size_voxels for r in res.rows}):
            rr = sorted((r for r in res.rows if r.metric == m and r.cube_size_voxels == L), key=lambda r: r.n_cubes)
            ax.loglog([r.n_cubes for r in rr], [max(r.relative_ci95, 1e-6) for r in rr], "o-", label=f"L={L}")
        ax.axhline(res.target_relative_ci, ls="--", c="k", lw=1)
        ax.set_title(m, fontsize=8)
        ax.set_xlabel("cubes")
        ax.set_ylabel("relative 95% CI")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if metrics:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)
    plt.close(fig)
    log.info("%s; wrote %s", conclusion, out)
    print(conclusion)
    return 0
