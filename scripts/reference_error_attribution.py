"""Which metric error sets a setting's objective error: first-order attribution against the reference.

For each reference design the campaign's cell model and objective are run at one power on the reference
metrics, then with each metric moved by the setting's mean relative error over its evaluations of that
design (one at a time, and all together): :func:`microdesign.analysis.reference_error.objective_attribution`.
Reads ``docs/reference/reference_evaluation.json`` and the setting's rows in
``docs/reference/reference_error_rows.json`` (made by ``scripts/reference_error.py``); writes a markdown table.

Usage: OMP_NUM_THREADS=1 python scripts/reference_error_attribution.py --setting default --power 200
Never run in CI (about 15 s on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _short_names() -> dict[str, str]:
    """Table labels of the characterisation's metric keys."""
    from microdesign.characterise import metrics as m

    return {m.POROSITY: "porosity", m.AM_VOLUME_FRACTION: "AM fraction", m.CBD_VOLUME_FRACTION: "CBD fraction",
            m.SSA_AM_PORE: "SSA AM–pore", m.SSA_AM_CBD: "SSA AM–CBD", m.TORTUOSITY_THROUGH_PLANE: "pore τ",
            m.CONDUCTIVITY_SOLID: "solid conductivity"}


def markdown(setting: str, power_W: float, result: list[dict], command: str, missing: list[int]) -> str:
    lines = [f"# Attribution of the objective error of `{setting}` at {power_W:g} W", "",
             "Relative change of the objective when the reference design's metrics are moved by the setting's "
             "mean relative metric error (over its seeds), one metric at a time (metrics off by less than 2 % "
             "are not moved alone) and all together, against the measured objective error "
             "([reference_error.md](../reference_error.md)). Made by "
             f"`{command}`.", "",
             "| design | measured [%] | all metrics moved [%] | metric: its error → objective change [%] |",
             "|---|---|---|---|"]
    if missing:
        lines[2:2] = [f"Designs without completed rows at {power_W:g} W (not attributed): {missing}.", ""]
    short = _short_names()
    for a in result:
        parts = "; ".join(f"{short.get(k, k)} {100 * v['metric_error']:+.0f} → {100 * v['objective_change']:+.1f}"
                          for k, v in sorted(a["by_metric"].items(), key=lambda kv: -abs(kv[1]["objective_change"])))
        lines.append(f"| {a['index']} | {100 * a['measured']:+.1f} | {100 * a['all_metrics']:+.1f} | {parts} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", default="default")
    ap.add_argument("--power", type=float, default=200.0)
    ap.add_argument("--reference", default=str(REPO / "docs" / "reference" / "reference_evaluation.json"))
    ap.add_argument("--rows", default=str(REPO / "docs" / "reference" / "reference_error_rows.json"))
    ap.add_argument("--output", default=None, help="markdown file (default docs/reference/attribution_SETTING_POWERW.md; "
                                                  "required with --rows other than the shipped rows)")
    args = ap.parse_args(argv)
    shipped_rows = REPO / "docs" / "reference" / "reference_error_rows.json"
    if args.output is None and Path(args.rows).resolve() != shipped_rows:
        ap.error("--rows other than the shipped rows: give --output outside docs/reference (a scratch file)")
    if not Path(args.reference).is_file() or not Path(args.rows).is_file():
        ap.error(f"--reference {args.reference} and --rows {args.rows}: expected existing files")

    from omegaconf import OmegaConf

    from microdesign.analysis.reference import load_reference
    from microdesign.analysis.reference_error import objective_attribution
    from microdesign.campaign.build import build_evaluator, instantiate
    from microdesign.characterise.metrics import MicrostructureMetrics
    from microdesign.config import compose

    reference = load_reference(args.reference)
    rows = json.loads(Path(args.rows).read_text()).get(args.setting)
    if not rows:
        ap.error(f"--setting {args.setting!r}: no rows in {args.rows}")
    cfg = compose("campaign", [])
    evaluator = build_evaluator(cfg)
    node = OmegaConf.create(OmegaConf.to_container(cfg.cell, resolve=True))
    node.protocol.kind, node.protocol.power_W = "constant_power", args.power
    evaluator.cell = instantiate(node, "cell")
    voxel = float(reference["settings"].get("voxel_size_m") or reference["designs"][0]["metrics"]["voxel_size_m"])

    def objective_of(inputs, means):
        metrics = MicrostructureMetrics.from_means(means, voxel_size_m=voxel)
        cell = evaluator.cell.simulate(metrics, evaluator.thickness_m(inputs, metrics))
        return evaluator.objective.evaluate(cell, metrics, None).raw_value

    key = f"{args.power:g}"
    designs = [d for d in reference["designs"] if "objective" in d["powers"].get(key, {})]
    if not designs:
        ap.error(f"--power {args.power:g}: the reference has no objective at that power")
    result = objective_attribution(designs, rows, args.power, objective_of)
    if not result:
        ap.error(f"--setting {args.setting!r}: no completed rows at {args.power:g} W")
    # the cell model and objective must still be the reference's: a config change moves the objective by
    # percent, another PyBaMM or SUNDIALS release by about 1e-5 relative (6e-6 at design 0, 200 W)
    for a in result:
        ref = next(d for d in designs if int(d["index"]) == a["index"])["powers"][key]["objective"]["raw_value"]
        if abs(a["base"] - ref) > 1e-4 * abs(ref):
            ap.error(f"design {a['index']}: the campaign's cell model gives {a['base']:.6g} on the reference "
                     f"metrics, the reference {ref:.6g}: the cell or objective config changed since the reference")
    missing = sorted({int(d["index"]) for d in designs} - {a["index"] for a in result})
    command = "OMP_NUM_THREADS=1 python scripts/reference_error_attribution.py " + shlex.join(argv or sys.argv[1:])
    text = markdown(args.setting, args.power, result, command.strip(), missing)
    out = Path(args.output or REPO / "docs" / "reference" / f"attribution_{args.setting}_{args.power:g}W.md")
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
