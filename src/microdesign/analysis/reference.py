"""Reference evaluation of designs: the numbers a campaign's default evaluation is judged against.

A design's *reference* evaluation (docs/reference_error.md) replaces the two approximations of the
default campaign evaluation (:class:`microdesign.campaign.evaluate.TrialEvaluator` with the shipped
generator and small cubes) by their sources:

- structures from the generator's training source: the synthetic line that built the shipped
  model's training dataset (:func:`microdesign.generator.reference.training_line_reference`; the
  ``conf/synth`` settings where the dataset is absent), one independent line volume per cube;
- representative characterisation: a fixed number of cubes (default 16) of 128³ voxels (51 µm at
  0.398 µm, ~7 particle diameters), the campaign's characteriser, the Student-t 95 % CI of every
  metric stated;
- the same cell model and objective as the campaign, at several constant powers (default 10 W and
  200 W); the volumes are generated and characterised once per design and shared by the powers.

Held-out designs are a scrambled Sobol sequence over the campaign's design space with a fixed seed,
chosen (the first seed from ``seed`` upwards) so that the set holds porosities at both ends of the
range (:func:`held_out_designs`).

:func:`run_reference` appends each finished design to a JSON data file (rewritten atomically), so
an interrupted run resumes where it stopped and every intermediate file is valid data.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError, check_voxel_size, require

log = logging.getLogger(__name__)

#: Format of the reference data file (a version bump marks an incompatible change).
FORMAT_VERSION = 1
#: the libraries whose releases can move a stored evaluation's numbers (networks, solvers, cell model)
EVALUATION_LIBRARIES = ("microdesign", "torch", "taufactor", "pybamm", "pybammsolvers", "casadi", "numpy", "scipy")


def library_versions(names: Sequence[str] = EVALUATION_LIBRARIES) -> dict[str, str]:
    """The installed version of each library in ``names`` (``"not installed"`` where absent), recorded
    with a stored evaluation so that a later difference can be traced to a release."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def held_out_designs(space: Any, n: int, seed: int, low_porosity: float = 0.28, high_porosity: float = 0.45,
                     max_tries: int = 100) -> tuple[list[dict[str, float]], int]:
    """``n`` scrambled-Sobol designs over ``space`` holding porosities ``<= low_porosity`` and ``>= high_porosity``.

    The Sobol sequence of ``scipy.stats.qmc.Sobol`` (scrambled, seed ``seed``, then ``seed + 1``, ...)
    is mapped to the free parameters' bounds; the first seed whose ``n`` points include both porosity
    extremes is used (a design space without a ``porosity`` parameter takes ``seed``).

    Args:
        space: :class:`microdesign.design.DesignSpace`.
        n: number of designs (a power of two keeps the Sobol balance).
        seed: first scrambling seed tried.
        low_porosity, high_porosity: porosity ends that must appear.
        max_tries: seeds tried before giving up.

    Returns:
        ``(designs, seed_used)``: complete physical designs (fixed parameters included) and the seed.

    Raises:
        ConfigError: ``n < 1``, or no seed within ``max_tries`` gives both porosity ends.
    """
    from scipy.stats import qmc

    require(int(n) >= 1, "n_designs", n, "an integer >= 1")
    free = list(space.free_names)
    for s in range(int(seed), int(seed) + int(max_tries)):
        unit = qmc.Sobol(d=len(free), scramble=True, seed=s).random(int(n))
        designs = [dict(zip(space.names, map(float, row))) for row in space.from_free_unit(unit)]
        if "porosity" not in space.names:
            return designs, s
        eps = [d["porosity"] for d in designs]
        if min(eps) <= low_porosity and max(eps) >= high_porosity:
            return designs, s
    raise ConfigError("seed", seed, f"a Sobol seed whose {n} points hold porosity <= {low_porosity} and "
                                    f">= {high_porosity} (none in {max_tries} seeds)")


class LineVolumes:
    """The synthetic line as a campaign volume source (``sample(params, n, size_voxels, seed)``).

    Each cube is an independent line volume of ``size_voxels³`` (seed ``seed + k`` for cube ``k``),
    so the cubes sample the line's structure, not one volume's neighbourhoods.

    Args:
        line: a :class:`microdesign.synth.SyntheticLine`.
        voxel_size_m: voxel edge [m].

    Raises:
        ConfigError: ``voxel_size_m`` not a voxel edge in metres.
    """

    def __init__(self, line: Any, voxel_size_m: float):
        self.line, self.voxel_size_m = line, check_voxel_size("voxel_size_m", voxel_size_m)

    def sample(self, params: Mapping[str, float], n: int, size_voxels: int, seed: int) -> np.ndarray:
        """``n x L x L x L`` uint8 labels (0 pore, 1 AM, 2 CBD)."""
        return np.stack([self.line.generate(params, int(size_voxels), voxel_size_m=self.voxel_size_m,
                                            seed=int(seed) + k) for k in range(int(n))])


class SharedStructure:
    """A generator and a characteriser wrapped so that several evaluators of one design (one
    :class:`~microdesign.campaign.evaluate.TrialEvaluator` per power) generate and characterise once:
    the first call computes, later calls with the same design and seed return the stored result.

    Pass it as both the generator and the characteriser of each evaluator. ``cpu_s`` accumulates the
    process CPU seconds of generation and characterisation (with the CI target judged on the objective,
    the cell and noise runs that judge each batch are inside the characterisation and count with it);
    ``characterise_cpu_s`` is that of the characterisation last returned. A characterisation whose stop
    depends on the evaluator (an adaptive one judged on the objective, ``relative_ci``, a new callable
    per evaluation) is not shared: each evaluator characterises afresh, from the same cubes.
    """

    def __init__(self, generator: Any, characteriser: Any):
        self.generator, self.characteriser = generator, characteriser
        self.voxel_size_m = generator.voxel_size_m
        self._volumes: dict[tuple, np.ndarray] = {}
        self._metrics: dict[tuple, Any] = {}
        self.metrics: Any = None
        self.cpu_s = {"generator": 0.0, "characterise": 0.0}
        self._characterise_cpu_s: dict[tuple, float] = {}
        self.characterise_cpu_s = 0.0

    def sample(self, params: Mapping[str, float], n: int, size_voxels: int, seed: int) -> np.ndarray:
        key = (tuple(sorted(params.items())), int(n), int(size_voxels), int(seed))
        if key not in self._volumes:
            c0 = time.process_time()
            self._volumes[key] = self.generator.sample(params, n, size_voxels, seed)
            self.cpu_s["generator"] += time.process_time() - c0
        return self._volumes[key]

    def _once(self, key: tuple, run: Any) -> Any:
        if key not in self._metrics:
            self.characterise_cpu_s = 0.0  # until it returns
            c0, g0 = time.process_time(), self.cpu_s["generator"]
            self._metrics[key] = run()
            self._characterise_cpu_s[key] = time.process_time() - c0 - (self.cpu_s["generator"] - g0)
            self.cpu_s["characterise"] += self._characterise_cpu_s[key]
        self.metrics, self.characterise_cpu_s = self._metrics[key], self._characterise_cpu_s[key]
        return self.metrics

    def characterise(self, volumes: np.ndarray, voxel_size_m: float, seed: int | None = None) -> Any:
        return self._once(("fixed", volumes.shape, seed),
                          lambda: self.characteriser.characterise(volumes, voxel_size_m, seed=seed))

    def characterise_adaptive(self, sample_cubes: Any, voxel_size_m: float, seed: int = 0, **kw: Any) -> Any:
        return self._once(("adaptive", int(seed), tuple(sorted(kw.items()))),
                          lambda: self.characteriser.characterise_adaptive(sample_cubes, voxel_size_m, seed=seed, **kw))


def generator_record(generator: Any) -> dict[str, Any]:
    """``{"generator", "weights_sha256", "labelling"}`` of a :class:`microdesign.generator.Generator`: what
    identifies the structures it samples (the weights and how their probabilities become labels)."""
    return {"generator": generator.name, "weights_sha256": generator.metadata.weights_sha256,
            "labelling": dict(generator.labelling)}


def metrics_record(metrics: Any) -> dict[str, Any]:
    """Plain-JSON record of :class:`~microdesign.characterise.metrics.MicrostructureMetrics`: status, reason,
    cube size and count, and per metric mean, std, 95 % CI half-width and the per-cube values."""
    if metrics is None:
        return {}
    out: dict[str, Any] = {"status": metrics.status, "reason": metrics.reason,
                           "cube_size_voxels": int(metrics.cube_size_voxels), "n_cubes": int(metrics.n_cubes),
                           "voxel_size_m": float(metrics.voxel_size_m), "estimates": {}}
    for key, e in metrics.estimates.items():
        out["estimates"][key] = {"mean": e.mean, "std": e.std, "ci95_half_width": e.ci95_half_width,
                                 "values": [float(v) for v in np.asarray(e.values, float)]}
        if getattr(e, "estimator", "mean") != "mean":  # transport-averaged τ: its estimator and porosities
            out["estimates"][key].update(estimator=e.estimator,
                                         weights=[float(w) for w in np.asarray(e.weights, float)])
    return out


def evaluation_record(ev: Any) -> dict[str, Any]:
    """Plain-JSON record of one :class:`~microdesign.campaign.evaluate.Evaluation` at one power (cell outputs
    under their PyBaMM-style keys, objective raw value and its 95 % CI half-width ``1.96 sqrt(variance)``)."""
    out: dict[str, Any] = {"status": ev.status, "reason": ev.reason,
                           "cathode_thickness_m": float(ev.cathode_thickness_m), "timings_s": dict(ev.timings)}
    if ev.cell is not None:
        out["cell"] = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                       for k, v in ev.cell.to_dict().items()
                       if isinstance(v, (int, float, str)) and (not isinstance(v, float) or math.isfinite(v))}
    if ev.objective is not None and ev.objective.ok:
        out["objective"] = {"raw_value": float(ev.objective.raw_value), "variance": float(ev.objective.variance),
                            "ci95_half_width": 1.96 * math.sqrt(max(float(ev.objective.variance), 0.0))}
    return out


def load_reference(path: str | Path) -> dict[str, Any]:
    """The reference data file (see :func:`run_reference`), or an empty skeleton where it does not exist.

    Raises:
        ConfigError: the file exists but is not a reference data file of this format.
    """
    p = Path(path)
    if not p.exists():
        return {"format_version": FORMAT_VERSION, "designs": []}
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError("output", str(p), f"a reference data file (JSON): {exc}") from exc
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise ConfigError("output", str(p), f"a reference data file of format_version {FORMAT_VERSION}")
    return data


def _write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    from microdesign.data.files import json_safe

    tmp.write_text(json.dumps(json_safe(data), indent=1, sort_keys=False, allow_nan=False) + "\n")  # inf/nan -> null
    os.replace(tmp, path)


def run_reference(cfg: Any, output: str | Path, n_designs: int = 8, designs_seed: int = 14, n_cubes: int = 16,
                  size_voxels: int = 128, powers_W: Sequence[float] = (10.0, 200.0), command: str = "",
                  only: Sequence[int] | None = None, structures: str = "line") -> dict[str, Any]:
    """Reference-evaluate the held-out designs of a campaign config; resume from ``output``.

    For each design (index ``i``, seed ``designs_seed * 1000 + i`` of the volumes): ``n_cubes``
    independent synthetic-line cubes of ``size_voxels³`` are characterised by the campaign's
    characteriser (fixed count), then the campaign's cell model (``cell.protocol`` constant power
    ``P``) and objective run for each ``P`` of ``powers_W`` (none: the metrics alone). Each finished design is appended to
    ``output`` at once, with its CPU and wall seconds, the machine and the library versions
    (:func:`library_versions`); designs already there (same index and inputs) are skipped.

    Args:
        cfg: a composed campaign config (``microdesign.config.compose("campaign", overrides)``).
        output: the JSON data file.
        n_designs, designs_seed: :func:`held_out_designs`.
        n_cubes, size_voxels: reference characterisation.
        powers_W: constant discharge powers [W]; empty for the metrics alone.
        command: the command line that made the file (recorded in it).
        only: design indices to evaluate (None: all).
        structures: ``"line"`` (the generator's training line, the reference) or ``"generator"`` (the
            campaign's generator, the same designs and characterisation: the other side of a metric
            calibration, :mod:`microdesign.characterise.calibration`).

    Returns:
        The data written.

    Raises:
        ConfigError: a bad setting, or ``output`` holds a reference of other settings.
    """
    from omegaconf import OmegaConf

    from microdesign.campaign.build import instantiate
    from microdesign.campaign.evaluate import TrialEvaluator
    from microdesign.config import conf_dir
    from microdesign.design import DesignSpace
    from microdesign.generator.reference import training_line_reference

    require(int(n_cubes) >= 2, "n_cubes", n_cubes, "an integer >= 2 (a CI needs two cubes)")
    require(int(size_voxels) >= 16, "size_voxels", size_voxels, "an integer >= 16 [voxels]")
    require(all(float(p) > 0 for p in powers_W), "powers_W", list(powers_W), "positive powers [W] (or none)")
    require(structures in ("line", "generator"), "structures", structures, "'line' or 'generator'")
    space = DesignSpace.from_config(cfg.design_space)
    designs, used_seed = held_out_designs(space, int(n_designs), int(designs_seed))
    generator = instantiate(cfg.generator, "generator")
    if structures == "line":  # the generator's training line (found from the generator's dataset)
        synth_fallback = OmegaConf.to_container(OmegaConf.load(conf_dir() / "synth" / "default.yaml"), resolve=True)
        ref = training_line_reference(generator, "auto", candidates=["data/synth_default.h5"],
                                      fallback=synth_fallback, size_voxels=None)
        source, described = LineVolumes(ref.line(), ref.voxel_size_m), ref.describe()
    else:
        source, described = generator, generator_record(generator)
    characteriser = instantiate(cfg.characterise, "characterise")
    objective = instantiate(cfg.objective, "objective")
    settings = {"n_designs": int(n_designs), "designs_seed": used_seed, "n_cubes": int(n_cubes),
                "size_voxels": int(size_voxels), "powers_W": [float(p) for p in powers_W],
                "structures": described, "characteriser": characteriser.settings(),
                # the τ estimator summarises the cubes (not in settings()); recorded when it is not the mean
                **({"tau_estimator": characteriser.tau_estimator}
                   if getattr(characteriser, "tau_estimator", "mean") != "mean" else {}),
                "cell": OmegaConf.to_container(cfg.cell, resolve=True),
                "objective": OmegaConf.to_container(cfg.objective, resolve=True),
                "design_space": OmegaConf.to_container(cfg.design_space, resolve=True)}
    path = Path(output)
    data = load_reference(path)
    old = data.get("settings")
    if old is not None and json.loads(json.dumps(old)) != json.loads(json.dumps(settings)):
        raise ConfigError("output", str(path), "a reference file of the same settings (or a new file)")
    data.update({"format_version": FORMAT_VERSION, "command": command or data.get("command", ""),
                 "settings": settings})
    done = {int(d["index"]) for d in data["designs"]}
    cells = {}
    for p in powers_W:
        node = OmegaConf.create(OmegaConf.to_container(cfg.cell, resolve=True))
        node.protocol.kind, node.protocol.power_W = "constant_power", float(p)
        cells[float(p)] = instantiate(node, "cell")
    for i, inputs in enumerate(designs):
        if i in done or (only is not None and i not in set(only)):
            continue
        seed = int(used_seed) * 1000 + i
        once = SharedStructure(source, characteriser)
        c0, t0 = time.process_time(), time.perf_counter()
        by_power = {}
        for p, cell in cells.items():
            ev = TrialEvaluator(once, once, cell, objective, space.microstructure_names,
                                cube_size_voxels=int(size_voxels), n_cubes=int(n_cubes),
                                adaptive=False).evaluate(inputs, seed)
            by_power[f"{p:g}"] = evaluation_record(ev)
            log.info("reference design %d at %g W: %s %s", i, p, ev.status,
                     by_power[f"{p:g}"].get("objective", ev.reason))
        if not cells:  # the metrics alone: the cubes an evaluator would draw, characterised as it would
            micro = {k: float(inputs[k]) for k in space.microstructure_names}
            once.characterise(once.sample(micro, int(n_cubes), int(size_voxels), seed), once.voxel_size_m, seed=seed)
        record = {"index": i, "inputs": inputs, "seed": seed, "metrics": metrics_record(once.metrics),
                  "powers": by_power, "cpu_s": {**once.cpu_s, "total": time.process_time() - c0},
                  "wall_s": time.perf_counter() - t0,
                  "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs, "
                             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
                  "versions": library_versions()}
        data["designs"] = sorted([*data["designs"], record], key=lambda d: int(d["index"]))
        _write_atomic(path, data)
        log.info("reference design %d done in %.0f s wall, %.0f s CPU -> %s", i, record["wall_s"],
                 record["cpu_s"]["total"], path)
    return data
