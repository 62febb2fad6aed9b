"""Error table of campaign evaluation settings against the reference (writes docs/reference_error.md).

For each candidate setting (a named set of campaign overrides and a structure source), every completed
design of the reference data file (``scripts/reference_evaluation.py``) is evaluated over ``--seeds``
seeds at the reference powers (:func:`microdesign.analysis.reference_error.compare`); the table gives,
per power, the objective's and each metric's bias, spread and mean absolute relative error, the
failures and the CPU seconds per evaluation. The summaries, each with the command, machine, date and
library versions it was measured with, also go to
``src/microdesign/analysis/reference_error.json``, which the campaign summary and report read
(:func:`microdesign.analysis.reference_error.error_note`), and the per-evaluation rows to
``docs/reference/reference_error_rows.json``.

Usage::

    OMP_NUM_THREADS=1 python scripts/reference_error.py [--candidates default line-48] [--seeds 0 1]

Candidates already in the table are kept unless named again. A candidate re-measured with another
generator checkpoint (a new shipped model) keeps its former row as ``NAME@CHECKPOINT``, so that the
rows of every model measured stay comparable. Never run in CI.

A generator checkpoint that is not the shipped one (e.g. an export of a training run) is scored with
``--generator NAME=CHECKPOINT [--like gen-64x8]``: a candidate ``NAME`` with the settings of ``--like``
and ``generator.checkpoint=CHECKPOINT``. ``--table``, ``--rows`` and ``--markdown`` must then name files
outside the shipped ones (a scratch folder), so that a model that is not shipped does not enter them.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _fixed_cubes(size_voxels: int, n_cubes: int) -> list[str]:
    """Campaign overrides for a fixed number of cubes of one size (no adaptive stopping)."""
    return [f"campaign.cube_size_voxels={size_voxels}", "campaign.adaptive=false", f"campaign.n_cubes={n_cubes}"]


#: pins for the rows measured before the default became 64³ cubes with ``synth3p_64_transport``: the former
#: shipped generator and the former default's cube size (adaptive, at most 8 cubes)
_FORMER_GENERATOR = "generator.checkpoint=synth3p_64_interface"
_CUBES_48 = "campaign.cube_size_voxels=48"
#: the rows measured before the default calibrated its metrics (docs/metric_calibration.md)
_UNCALIBRATED = "campaign.metric_calibration=none"

#: name -> (structure source, campaign overrides, description)
CANDIDATES: dict[str, tuple[str, list[str], str]] = {
    "default": ("generator", [], "the default campaign evaluation: shipped generator (each cube at the "
                                 "design's phase volume fractions), adaptive cubes of 64³ (2 % CI target on the "
                                 "objective, at most 8 cubes), pore τ transport-averaged over the percolating cubes, "
                                 "pore τ and solid conductivity calibrated (docs/metric_calibration.md)"),
    "default-uncalibrated": ("generator", [_UNCALIBRATED],
                             "as default, the metrics as measured (no metric calibration)"),
    "default-calibrated-all": ("generator",
                               ["campaign.metric_calibration=docs/reference/metric_calibration_synth3p_64_transport_64_all.json"],
                               "as default, the AM–pore surface area calibrated too (every metric whose leave-one-out "
                               "error falls on average: scripts/metric_calibration.py --min-improved-share 0)"),
    "default-every-metric": ("generator", ["campaign.adaptive_target=every_metric", _UNCALIBRATED],
                             "as default, the 2 % CI target judged on every metric instead of the objective"),
    "default-tau-mean": ("generator", ["characterise.tau_estimator=mean", _CUBES_48],
                         "shipped generator, adaptive cubes of 48³, the pore tortuosity factor as the mean of the "
                         "per-cube τ"),
    "line-48": ("line", [_CUBES_48], "synthetic line, adaptive cubes of 48³ (2 % CI target, at most 8 cubes)"),
    "line-48-tau-mean": ("line", ["characterise.tau_estimator=mean", _CUBES_48],
                         "as line-48, the pore tortuosity factor as the mean of the per-cube τ"),
    "default-strict-percolation": ("generator", ["characterise.min_percolating_fraction=1.0", _CUBES_48],
                                   "shipped generator, adaptive cubes of 48³, every cube must percolate (the former "
                                   "rule)"),
    "gen-64x8": ("generator", [_FORMER_GENERATOR, *_fixed_cubes(64, 8)],
                 "the generator synth3p_64_interface, 8 cubes of 64³"),
    "default-argmax": ("generator", ["generator.phase_fractions=argmax", _FORMER_GENERATOR, _CUBES_48],
                       "the generator synth3p_64_interface, adaptive cubes of 48³, each voxel of a generated cube its "
                       "most probable phase (the cube's phase fractions are the network's, not the design's)"),
    "gen-64x8-argmax": ("generator", ["generator.phase_fractions=argmax", _FORMER_GENERATOR, *_fixed_cubes(64, 8)],
                        "as gen-64x8, each voxel of a generated cube its most probable phase"),
    "default-penalty0": ("generator", ["generator.pore_neighbour_penalty=0", _FORMER_GENERATOR, _CUBES_48],
                         "the generator synth3p_64_interface, adaptive cubes of 48³, the AM of a generated cube placed "
                         "by the network's margins alone (no pore-neighbour penalty)"),
    "default-penalty3": ("generator", ["generator.pore_neighbour_penalty=3", "campaign.adaptive_target=every_metric"],
                         "as default-every-metric, pore-neighbour penalty 3 (the calibration's choice for the shipped "
                         "generator, docs/reference/labelling_calibration_synth3p_64_transport.md) instead of 2"),
    "gen-64x8-penalty0": ("generator", ["generator.pore_neighbour_penalty=0", _FORMER_GENERATOR, *_fixed_cubes(64, 8)],
                          "as gen-64x8, no pore-neighbour penalty"),
    "default-transport": ("generator", ["generator.checkpoint=synth3p_64_transport", _CUBES_48],
                          "the generator synth3p_64_transport (synth3p_64_interface continued with the transport "
                          "term; docs/generator.md, \"Per-phase weights\"), adaptive cubes of 48³"),
    "gen-64x8-transport": ("generator",
                           ["generator.checkpoint=synth3p_64_transport", *_fixed_cubes(64, 8), _UNCALIBRATED],
                           "the generator synth3p_64_transport, 8 cubes of 64³"),
    "gen-96x4": ("generator", _fixed_cubes(96, 4), "generator, 4 cubes of 96³"),
    "gen-128x4": ("generator", _fixed_cubes(128, 4), "generator, 4 cubes of 128³"),
    "gen-coarse-64x4": ("generator-coarse2", _fixed_cubes(64, 4),
                        "generator, 4 cubes of 128³ coarse-grained to 64³ at twice the voxel size (0.796 µm)"),
    "line-coarse-64x4": ("line-coarse2", _fixed_cubes(64, 4),
                         "synthetic line, 4 cubes of 128³ coarse-grained to 64³ at twice the voxel size (0.796 µm)"),
    "line-voxel2-64x4": ("line-voxel2", _fixed_cubes(64, 4),
                         "synthetic line generated at twice the voxel size (0.796 µm), 4 cubes of 64³"),
    "line-64x8": ("line", _fixed_cubes(64, 8),
                  "synthetic line, 8 cubes of 64³ (what gen-64x8 would give with a generator true to its line)"),
    "line-128x4": ("line", _fixed_cubes(128, 4), "synthetic line, 4 cubes of 128³"),
    "gen-64x12": ("generator", [*_fixed_cubes(64, 12), _UNCALIBRATED],
                  "generator, 12 cubes of 64³ (1.5 times the default's cap)"),
    "line-64x12": ("line", _fixed_cubes(64, 12), "synthetic line, 12 cubes of 64³"),
}


def _pct(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:+.1f}"


def _abs_pct(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def keep_former_generator_row(table: dict, all_rows: dict, name: str, source: str, settings: dict) -> str | None:
    """Rename the stored entry ``name`` (and its rows) to ``name@CHECKPOINT`` when its structures come from
    the generator (``source``) and it was measured with another generator checkpoint than ``settings``
    names; returns the new name, or None (nothing renamed: a line row does not depend on the generator)."""
    old = [e for e in table["entries"] if e["name"] == name]
    if (not source.startswith("generator") or not old
            or old[0]["settings"].get("generator") == settings.get("generator")):
        return None
    checkpoint = old[0]["settings"].get("generator")
    former = f"{name}@{checkpoint}"
    table["entries"] = [e for e in table["entries"] if e["name"] != former]
    old[0]["name"] = former
    old[0]["description"] += f"; measured with the former shipped generator {checkpoint}"
    if name in all_rows:
        all_rows[former] = all_rows.pop(name)
    return former


def _by_seeds(entries: list[dict]) -> dict[str, list[str]]:
    """Entry names grouped by their seed list (``"0 1" -> [names]``), in table order."""
    groups: dict[str, list[str]] = {}
    for e in entries:
        groups.setdefault(" ".join(str(x) for x in e["seeds"]), []).append(e["name"])
    return groups


def _generator(entry: dict) -> str:
    return entry["settings"].get("generator", "") if entry["source"].startswith("generator") else "–"


def _pinned(entry: dict, shipped: str) -> str:
    """The generator a rerun of ``entry`` measures with: the checkpoint its overrides name, else ``shipped``."""
    named = [o.partition("=")[2] for o in entry.get("overrides", []) if o.startswith("generator.checkpoint=")]
    return named[-1] if named else shipped


def markdown(reference: dict, entries: list[dict], notes: str = "", current_generator: str | None = None) -> str:
    """The error table page; ``notes`` (hand-written findings, markdown) goes after the tables. The
    reproduce command lists the rows that a rerun measures as they are: line rows and generator rows of
    ``current_generator`` (the shipped one; None: every row without ``@``)."""
    from microdesign.analysis.reference_error import OBJECTIVE, SETTINGS_ADDED

    s = reference["settings"]
    done = [d for d in reference["designs"]]
    lines = [
        "# Error of the campaign evaluation against the reference", "",
        "How far the objective a campaign optimises (volumetric energy density of the whole cell) is from a "
        "reference evaluation of the same design, for the default evaluation and candidate settings.", "",
        "## Reference", "",
        f"- data: `docs/reference/reference_evaluation.json`, made by `{reference.get('command', '')}`",
        f"- designs: {len(done)} of {s['n_designs']} held-out scrambled-Sobol designs (seed {s['designs_seed']}) of "
        "the default design space, porosities at both ends of its range",
        f"- structures: {s['structures']}; one independent volume per cube",
        f"- characterisation: {s['n_cubes']} cubes of {s['size_voxels']}³, the campaign's characteriser; "
        "95 % CI per metric and of the objective (first-order propagation) in the data file",
        f"- cell model and objective: the campaign's, constant power {', '.join(f'{p:g} W' for p in s['powers_W'])}",
        "- CPU seconds per reference design: " + ", ".join(f"{d['cpu_s']['total']:.0f}" for d in done), "",
        "| design | porosity | AM wt. fraction | CBD adhesion | mass loading [mg.cm-2] | "
        + " | ".join(f"objective at {p:g} W [W.h.L-1] (95 % CI)" for p in s["powers_W"]) + " | worst metric rel. CI |",
        "|---|---|---|---|---|" + "---|" * len(s["powers_W"]) + "---|",
    ]
    for d in done:
        x = d["inputs"]
        obj = []
        for p in s["powers_W"]:
            o = d["powers"].get(f"{p:g}", {}).get("objective")
            obj.append(f"{o['raw_value']:.4g} ± {o['ci95_half_width']:.2g}" if o else d["powers"].get(f"{p:g}", {}).get(
                "reason", "failed"))
        est = d["metrics"].get("estimates", {})
        worst = max((e["ci95_half_width"] / abs(e["mean"]) for e in est.values() if e["mean"]), default=float("nan"))
        lines.append(f"| {d['index']} | {x['porosity']:.3f} | {x['am_weight_fraction']:.3f} | {x['cbd_adhesion']:.2f} | "
                     f"{x.get('mass_loading_mg_cm2', float('nan')):.1f} | " + " | ".join(obj) + f" | {100 * worst:.1f} % |")
    lines += ["", "## Objective error per setting", "",
              "Relative error (candidate − reference) / reference over designs × seeds: bias = mean, spread = "
              "standard deviation, MAE = mean absolute; targets: MAE ≤ 2 % at 10 W and ≤ 5 % at 200 W at ≤ 20 CPU s "
              "per evaluation. CPU s: process CPU seconds of one evaluation (structures, characterisation, cell and "
              "objective noise runs) at that power, on the machine below.", "",
              "| setting | source | generator | power [W] | designs | evaluations | failed | bias [%] | spread [%] | "
              "MAE [%] | mean objective 95 % CI [%] | CPU s / evaluation |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        for p, sm in e["summary"].items():
            o = sm[OBJECTIVE]
            lines.append(f"| {e['name']} | {e['source']} | {_generator(e)} | {p} | {sm['designs']} | {sm['evaluations']} | {sm['failed']} | "
                         f"{_pct(o['bias'])} | {_abs_pct(o['spread'])} | {_abs_pct(o['mean_abs'])} | "
                         f"{_abs_pct(sm['objective_relative_ci_mean'])} | {sm['cpu_s_mean']:.1f} |")
    lines += ["", "## Metric error per setting", "", "Bias ± spread of the relative error of each metric's mean, "
              "over the rows of the highest power (the structure is the same at both powers, except where the CI "
              "target is judged on the objective: there the highest power takes the most cubes).", ""]
    keys = sorted({k for e in entries for sm in e["summary"].values() for k in sm["metrics"]})
    lines += ["| setting | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    def highest_power(e: dict) -> dict | None:
        return e["summary"][max(e["summary"], key=float)] if e["summary"] else None

    for e in entries:
        sm = highest_power(e)
        if sm is None:
            continue
        cells = [f"{_pct(sm['metrics'][k]['bias'])} ± {_abs_pct(sm['metrics'][k]['spread'])}" if k in sm["metrics"]
                 else "–" for k in keys]
        lines.append(f"| {e['name']} | " + " | ".join(cells) + " |")
    lines += ["", "## Estimators of the pore tortuosity factor", "",
              "Relative error of each estimator over the setting's cubes (highest power) against the reference's mean τ "
              "(the value the cell model reads): mean of τ, median of τ, transport-averaged "
              "mean(ε)/mean(ε/τ); bias ± spread [%], percolating cubes only. The cell model reads the one "
              "the setting's `characterise.tau_estimator` names (docs/characterisation.md).", "",
              "| setting | mean of τ | median of τ | transport-averaged |", "|---|---|---|---|"]
    for e in entries:
        te = (highest_power(e) or {}).get("tau_estimators", {})
        if te:
            lines.append(f"| {e['name']} | " + " | ".join(
                f"{_pct(te[k]['bias'])} ± {_abs_pct(te[k]['spread'])}" for k in ("mean", "median", "transport_averaged"))
                + " |")
    if notes.strip():
        lines += ["", notes.strip()]
    lines += ["", "## Settings", ""]
    lines += [f"- `{e['name']}` ({e['source']}{', ' + _generator(e) if e['source'].startswith('generator') else ''}): "
              f"{e['description']}; overrides `{' '.join(e['overrides']) or '(none)'}`; "
              f"τ estimator `{e['settings'].get('tau_estimator', 'mean')}`; "
              + ("conductivity solve deflated; " if e['settings'].get('deflation') else "")
              + (f"CI target judged on `{e['settings'].get('adaptive_target', SETTINGS_ADDED['adaptive_target'])}`; "
                 if e['settings'].get('adaptive') else "")
              + (f"phase fractions `{e['settings'].get('phase_fractions', SETTINGS_ADDED['phase_fractions'])}`"
                 + (f" (pore-neighbour penalty {e['settings']['pore_neighbour_penalty']:g})"
                    if e['settings'].get('pore_neighbour_penalty') else "") + "; "
                 if e['source'].startswith('generator') else "")
              + (f"metric calibration `{e['settings']['metric_calibration']}`; "
                 if e['settings'].get('metric_calibration', 'none') != 'none' else "")
              + f"command `{e['command']}`; {e['machine']}; {e['date']}" for e in entries]
    stale = [e for e in entries if "@" not in e["name"] and current_generator is not None
             and e["source"].startswith("generator") and _generator(e) != _pinned(e, current_generator)]
    current = [e for e in entries if "@" not in e["name"] and e not in stale]
    lines += ["", "## Reproduce", "",
              "```bash",
              "# reference: appends each finished design to the data file; the same command resumes after a stop",
              f"{reference.get('command', '')}",
              "# this table (one command per seed list): keeps designs already evaluated with the same settings and seeds",
              *(f"OMP_NUM_THREADS=1 python scripts/reference_error.py --candidates {' '.join(names)} --seeds {seeds}"
                for seeds, names in _by_seeds(current).items()),
              "# which metric error sets a setting's objective error (tables in docs/reference/attribution_*)",
              "OMP_NUM_THREADS=1 python scripts/reference_error_attribution.py --setting default --power 200",
              "```", "",
              "Rows `NAME@CHECKPOINT` are the setting `NAME` measured with a former shipped generator, kept for "
              "comparison; their command is in the Settings list."]
    if stale:
        lines += ["", "Rows still measured with another generator than the shipped one (a rerun measures them with the "
                  "shipped one and keeps these as `NAME@CHECKPOINT`): "
                  + ", ".join(f"`{e['name']}` ({_generator(e)})" for e in stale) + "."]
    lines += ["", "## Not measured yet", "",
              "- the objective under the median of τ (only its τ error is measured; the characteriser offers the mean "
              "and the transport-averaged estimator);",
              "- the settings of `scripts/reference_error.py` not listed above, and all designs not yet in the reference.",
              "",
              "A setting whose row is absent has no measured error: the campaign summary then says "
              "\"estimated error vs reference: not measured for these settings\".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", nargs="+", default=None, choices=sorted(CANDIDATES),
                    help="settings to (re)measure; default: default, or none when --generator is given")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--reference", default=str(REPO / "docs" / "reference" / "reference_evaluation.json"))
    ap.add_argument("--table", default=str(REPO / "src" / "microdesign" / "analysis" / "reference_error.json"))
    ap.add_argument("--rows", default=str(REPO / "docs" / "reference" / "reference_error_rows.json"))
    ap.add_argument("--markdown", default=str(REPO / "docs" / "reference_error.md"))
    ap.add_argument("--notes", default=str(REPO / "docs" / "reference" / "reference_error_notes.md"),
                    help="hand-written findings included in the page after the tables")
    ap.add_argument("--generator", action="append", default=[], metavar="NAME=CHECKPOINT",
                    help="score a generator checkpoint (folder or model name) as candidate NAME with the "
                         "settings of --like; repeatable")
    ap.add_argument("--like", default="gen-64x8", choices=sorted(CANDIDATES),
                    help="the candidate whose structure source and overrides --generator candidates take")
    args = ap.parse_args(argv)
    args.candidates = list(args.candidates or ([] if args.generator else ["default"]))
    shipped = {str(REPO / "src" / "microdesign" / "analysis" / "reference_error.json"),
               str(REPO / "docs" / "reference" / "reference_error_rows.json"), str(REPO / "docs" / "reference_error.md")}
    if args.generator and shipped & {str(Path(p).resolve()) for p in (args.table, args.rows, args.markdown)}:
        ap.error("--generator: give --table, --rows and --markdown outside the shipped files (a scratch folder), "
                 "so that a model that is not shipped does not enter the shipped error table")
    for spec in args.generator:
        name, sep, checkpoint = spec.partition("=")
        if not sep or not name or not checkpoint or name in CANDIDATES:
            ap.error(f"--generator {spec!r}: expected NAME=CHECKPOINT with a NAME not in {sorted(CANDIDATES)}")
        source, overrides, description = CANDIDATES[args.like]
        if not source.startswith("generator"):
            ap.error(f"--like {args.like!r}: expected a candidate whose structures come from the generator")
        CANDIDATES[name] = (source, [*overrides, f"generator.checkpoint={checkpoint}"],
                            f"{description}; generator checkpoint {checkpoint}")
        args.candidates.append(name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from microdesign.analysis.reference import library_versions, load_reference
    from microdesign.analysis.reference_error import compare, evaluation_settings, now_utc, same_settings, summarise
    from microdesign.config import compose

    reference = load_reference(args.reference)
    reference["designs"] = [d for d in reference["designs"]
                            if all("objective" in v for v in d["powers"].values())]
    table_path, rows_path = Path(args.table), Path(args.rows)
    notes = Path(args.notes).read_text() if Path(args.notes).is_file() else ""
    table = json.loads(table_path.read_text()) if table_path.is_file() else {"entries": []}
    all_rows = json.loads(rows_path.read_text()) if rows_path.is_file() else {}
    command = "OMP_NUM_THREADS=1 python scripts/reference_error.py " + shlex.join(argv or sys.argv[1:])
    machine = f"{platform.machine()}, {os.cpu_count()} logical CPUs"
    shipped_generator = evaluation_settings(compose("campaign"))["generator"]
    for name in args.candidates:
        source, overrides, description = CANDIDATES[name]
        if source != "generator":  # a metric calibration is of the generator's own cubes (compare drops it)
            overrides = [*overrides, _UNCALIBRATED]
        cfg = compose("campaign", overrides)
        settings = evaluation_settings(cfg)
        former = keep_former_generator_row(table, all_rows, name, source, settings)
        if former:
            logging.info("%s: measured with another generator; its former row is kept as %s", name, former)
        # designs already evaluated with these settings and seeds are kept, not recomputed
        old = [e for e in table["entries"] if e["name"] == name]
        # the generator's labelling does not concern the line's structures (its checkpoint does: the line
        # is the one that built its training data, microdesign.generator.reference.training_line_reference)
        ignore = () if source.startswith("generator") else ("phase_fractions", "pore_neighbour_penalty")
        keep = (old and same_settings(old[0]["settings"], settings, ignore=ignore)
                and old[0]["seeds"] == list(args.seeds))
        rows = list(all_rows.get(name, [])) if keep else []
        have = {int(r["index"]) for r in rows}
        todo = [int(d["index"]) for d in reference["designs"] if int(d["index"]) not in have]
        rows += compare(reference, cfg, seeds=args.seeds, source=source, indices=todo) if todo else []
        # nothing re-measured: the entry keeps the command, machine and date of its measurement
        measured = old[0] if (keep and not todo) else {"command": command.strip(), "machine": machine, "date": now_utc(),
                                                       "versions": library_versions()}
        entry = {"name": name, "source": source, "overrides": overrides, "description": description,
                 "settings": settings, "seeds": list(args.seeds), "command": measured["command"],
                 "machine": measured["machine"], "date": measured["date"], "summary": summarise(rows),
                 **({"versions": measured["versions"]} if "versions" in measured else {})}
        table["entries"] = [e for e in table["entries"] if e["name"] != name] + [entry]
        all_rows[name] = rows
        table_path.write_text(json.dumps(table, indent=1) + "\n")
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        rows_path.write_text(json.dumps(all_rows, indent=1) + "\n")
        Path(args.markdown).write_text(markdown(reference, table["entries"], notes, current_generator=shipped_generator))
        logging.info("%s: %s", name, json.dumps({p: s["objective"] for p, s in entry["summary"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
