"""Fidelity of a generator against its training source (docs/generator.md, "Fidelity").

At held-out parameter points, ``n_seeds`` generated cubes and ``n_seeds`` reference cubes (the
synthetic line at the same point, or random sub-cubes of a real volume) are characterised the same
way (:class:`microdesign.characterise.Characteriser`: voxel-counted phase fractions, face-counted
AM-pore specific surface area, through-plane pore tortuosity factor; optionally the through-plane
effective electronic conductivity of the solid, ``solid_conductivity``). The report gives mean and
standard deviation over seeds for both, the difference with its standard error, against the targets:
phase fractions within 0.02 absolute, SSA, tortuosity factor and solid conductivity within 10 % relative.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from microdesign.characterise.metrics import (
    AM_VOLUME_FRACTION,
    CBD_VOLUME_FRACTION,
    CONDUCTIVITY_SOLID,
    POROSITY,
    SSA_AM_PORE,
    TORTUOSITY_THROUGH_PLANE,
)

logger = logging.getLogger(__name__)

#: metric key -> (kind, tolerance): "abs" absolute difference of means, "rel" relative to the reference mean.
TARGETS: dict[str, tuple[str, float]] = {
    POROSITY: ("abs", 0.02),
    AM_VOLUME_FRACTION: ("abs", 0.02),
    CBD_VOLUME_FRACTION: ("abs", 0.02),
    SSA_AM_PORE: ("rel", 0.10),
    TORTUOSITY_THROUGH_PLANE: ("rel", 0.10),
}
#: Targets of the metrics measured on request (``solid_conductivity=True``): the through-plane effective
#: electronic conductivity of the solid (AM + CBD at the characteriser's bulk conductivities), the
#: campaign's :data:`~microdesign.characterise.metrics.CONDUCTIVITY_SOLID`, within 10 % relative.
OPTIONAL_TARGETS: dict[str, tuple[str, float]] = {
    CONDUCTIVITY_SOLID: ("rel", 0.10),
}


def targets(solid_conductivity: bool = False) -> dict[str, tuple[str, float]]:
    """The metrics compared and their targets: :data:`TARGETS`, plus the solid conductivity on request.

    Raises:
        ConfigError: ``solid_conductivity`` is not a bool.
    """
    from microdesign.errors import require

    require(isinstance(solid_conductivity, (bool, np.bool_)), "solid_conductivity", solid_conductivity,
            "true or false (also measure the effective electronic conductivity of the solid)")
    return {**TARGETS, **OPTIONAL_TARGETS} if solid_conductivity else dict(TARGETS)


@dataclass(frozen=True)
class MetricComparison:
    """One metric at one parameter point.

    Attributes:
        metric: metric key (units in the key).
        generated: per-seed values of generated cubes (non-finite entries dropped: failed solves).
        reference: per-seed values of reference cubes.
        kind, tolerance: target (``"abs"`` or ``"rel"``).
    """

    metric: str
    generated: np.ndarray
    reference: np.ndarray
    kind: str
    tolerance: float

    @property
    def difference(self) -> float:
        """Generated minus reference mean (absolute), or relative to the reference mean (``rel``)."""
        if self.generated.size == 0 or self.reference.size == 0:
            return float("nan")
        d = float(self.generated.mean() - self.reference.mean())
        return d / abs(float(self.reference.mean())) if self.kind == "rel" else d

    @property
    def standard_error(self) -> float:
        """Standard error of :attr:`difference` over the seeds, ``sqrt(s_g^2/n_g + s_r^2/n_r)`` with the
        sample variances (Welch's, the seeds of the two sources being independent), relative to the
        reference mean for ``rel``; NaN with fewer than 2 values on a side. A difference within about two
        standard errors of 0 is not resolved by this many seeds."""
        g, r = self.generated, self.reference
        if g.size < 2 or r.size < 2:
            return float("nan")
        se = float(np.sqrt(g.var(ddof=1) / g.size + r.var(ddof=1) / r.size))
        return se / abs(float(r.mean())) if self.kind == "rel" else se

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.difference) and abs(self.difference) <= self.tolerance)


@dataclass(frozen=True)
class PointReport:
    """All metrics at one parameter point (``params`` in physical units); ``failures``: failed solves
    (tortuosity and conductivity together) of the ``"generated"`` and ``"reference"`` cubes."""

    params: dict[str, float]
    comparisons: list[MetricComparison]
    failures: dict[str, int] = field(default_factory=dict)


def _stats(v: np.ndarray) -> str:
    if v.size == 0:
        return "n/a"
    return f"{v.mean():.4g} ± {v.std(ddof=1) if v.size > 1 else 0.0:.2g}"


def report_markdown(points: Sequence[PointReport], title: str = "") -> str:
    """A markdown table: one row per point and metric (mean ± std over seeds; the difference ± its
    standard error, :attr:`MetricComparison.standard_error`)."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| point | metric | generated | reference | difference (± standard error) | target | pass |",
              "|---|---|---|---|---|---|---|"]
    for p in points:
        label = ", ".join(f"{k}={v:.3g}" for k, v in p.params.items()) or "(unconditioned)"
        for c in p.comparisons:
            se = c.standard_error
            if c.kind == "abs":
                diff = f"{c.difference:+.3f}" + (f" ± {se:.3f}" if np.isfinite(se) else "")
            else:
                diff = f"{100 * c.difference:+.1f}%" + (f" ± {100 * se:.1f}%" if np.isfinite(se) else "")
            tgt = f"±{c.tolerance}" if c.kind == "abs" else f"±{100 * c.tolerance:.0f}%"
            lines.append(f"| {label} | {c.metric} | {_stats(c.generated)} | {_stats(c.reference)} | {diff} | {tgt} | "
                         f"{'yes' if c.passed else 'no'} |")
        if any(p.failures.values()):
            lines.append(f"| {label} | failed solves | {p.failures.get('generated', 0)} | "
                         f"{p.failures.get('reference', 0)} | | | |")
    n = sum(len(p.comparisons) for p in points)
    ok = sum(c.passed for p in points for c in p.comparisons)
    lines += ["", f"{ok} of {n} comparisons within target."]
    return "\n".join(lines)


def measure_cubes(characteriser, cubes: np.ndarray, voxel_size_m: float,
                  solid_conductivity: bool = False) -> tuple[dict[str, np.ndarray], int]:
    """Per-cube fidelity metrics, one cube at a time (a failed solve loses only that cube's value).

    Uses the characterisation stage's own pieces with the ``characteriser``'s settings: voxel-counted
    phase fractions, :func:`microdesign.characterise.surface.interface_ssa` (AM-pore SSA) and the
    through-plane pore tortuosity factor of the characteriser's transport solver
    (:mod:`microdesign.characterise.solvers`; a stand-in without one: MG-CG defaults). With
    ``solid_conductivity`` also the through-plane effective electronic conductivity of the solid, the
    solve of :meth:`Characteriser.measure <microdesign.characterise.Characteriser.measure>`: the same
    solver on the labels with the characteriser's ``bulk_conductivity_S_m`` (AM and CBD; a stand-in
    without them: :data:`~microdesign.characterise.characteriser.DEFAULT_BULK_CONDUCTIVITY_S_M`, AM 0.18
    and CBD 760 S/m), pore insulating. Off by default: it is the costliest solve (a 4000x contrast).

    Args:
        characteriser: a :class:`~microdesign.characterise.Characteriser` (or an object with ``solver``,
            ``surface_area`` and ``bulk_conductivity_S_m``).
        cubes: ``n x L x L x L`` uint8 labels (0 pore, 1 AM, 2 CBD), axis 0 through-plane.
        voxel_size_m: voxel edge [m].
        solid_conductivity: also measure :data:`~microdesign.characterise.metrics.CONDUCTIVITY_SOLID` [S.m-1].

    Returns:
        ``(values, n_failed)``: metric -> values, shape ``n`` (NaN where a solve failed: a pore that does
        not span axis 0, a solve that hit its iteration limit, or a non-finite or non-positive value; a
        solid that does not span has 0 S/m, as in :meth:`Characteriser.measure
        <microdesign.characterise.Characteriser.measure>`, and is no failure), and
        the number of failed solves (tortuosity and conductivity together; each is logged).

    Raises:
        ConfigError: ``solid_conductivity`` is not a bool.
    """
    from microdesign.characterise.characteriser import label_conductivities
    from microdesign.characterise.solvers import MgcgSolver
    from microdesign.characterise.surface import interface_ssa
    from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE

    keys = targets(solid_conductivity)
    sa = getattr(characteriser, "surface_area", {"method": "face_counting", "isotropic_correction": True,
                                                  "smoothing": True})
    solver = getattr(characteriser, "solver", None) or MgcgSolver()
    label_conductivity = label_conductivities(getattr(characteriser, "bulk_conductivity_S_m", None))
    out: dict[str, list[float]] = {k: [] for k in keys}
    failed = 0

    def solved(r, what: str) -> float:
        nonlocal failed
        spans = r.percolating if r.spans is None else r.spans  # as the characteriser reads a solver without spans
        if what == "conductivity" and not bool(spans[0]):
            return 0.0  # a solid that does not span conducts nothing through-plane, as the characteriser counts it
        value = float(r.d_eff[0] if what == "conductivity" else r.tau[0])
        ok = bool(r.percolating[0] and r.converged[0] and np.isfinite(value) and value > 0)
        if not ok:
            failed += 1
            logger.info("fidelity: %s failed on one cube (percolating %s, converged %s, value %s)", what,
                        bool(r.percolating[0]), bool(r.converged[0]), value)
        return value if ok else float("nan")

    for cube in cubes:
        flat = cube.reshape(-1)
        out[POROSITY].append(float((flat == PORE).mean()))
        out[AM_VOLUME_FRACTION].append(float((flat == ACTIVE_MATERIAL).mean()))
        out[CBD_VOLUME_FRACTION].append(float((flat == CBD).mean()))
        out[SSA_AM_PORE].append(float(interface_ssa(cube, voxel_size_m, method=sa["method"],
                                                    isotropic_correction=bool(sa["isotropic_correction"]),
                                                    smoothing=bool(sa["smoothing"]))["am_pore"]))
        out[TORTUOSITY_THROUGH_PLANE].append(solved(solver.tortuosity((cube == PORE)[None]), "tortuosity"))
        if solid_conductivity:
            out[CONDUCTIVITY_SOLID].append(solved(solver.conductivity(np.ascontiguousarray(cube)[None],
                                                                      label_conductivity), "conductivity"))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}, failed


def compare_point(characteriser, generated: np.ndarray, reference: np.ndarray, voxel_size_m: float,
                  params: Mapping[str, float], solid_conductivity: bool = False) -> PointReport:
    """Characterise ``n x L x L x L`` generated and reference cubes and compare them (:func:`measure_cubes`;
    the metrics of :func:`targets`). Values of failed solves are left out of the comparison and counted in
    :attr:`PointReport.failures`.

    Raises:
        ConfigError: ``solid_conductivity`` is not a bool.
    """
    keys = targets(solid_conductivity)
    g, g_fail = measure_cubes(characteriser, generated, voxel_size_m, solid_conductivity)
    r, r_fail = measure_cubes(characteriser, reference, voxel_size_m, solid_conductivity)
    comps = [MetricComparison(k, g[k][np.isfinite(g[k])], r[k][np.isfinite(r[k])], *t) for k, t in keys.items()]
    return PointReport(dict(params), comps, {"generated": g_fail, "reference": r_fail})


def held_out_points(bounds: Mapping[str, tuple[float, float]], n_points: int, seed: int) -> list[dict[str, float]]:
    """``n_points`` scrambled-Sobol points inside ``bounds`` (a different sequence from the training DOE
    when ``seed`` differs from the dataset's), rounded to 4 significant digits."""
    from scipy.stats import qmc

    names = list(bounds)
    if not names:
        return [{} for _ in range(n_points)]
    u = qmc.Sobol(len(names), scramble=True, seed=seed).random(n_points)
    lo = np.array([bounds[k][0] for k in names])
    hi = np.array([bounds[k][1] for k in names])
    x = lo + u * (hi - lo)
    return [{k: float(f"{v:.4g}") for k, v in zip(names, row)} for row in x]


def evaluate(generator, reference: Callable[[dict[str, float], int, int], np.ndarray], characteriser,
             points: Sequence[Mapping[str, float]], n_seeds: int, size_voxels: int, seed: int = 0,
             solid_conductivity: bool = False) -> list[PointReport]:
    """Fidelity at each point.

    Args:
        generator: a :class:`microdesign.generator.Generator`.
        reference: ``(params, n, seed) -> n x L x L x L`` reference cubes at ``size_voxels``.
        characteriser: a :class:`microdesign.characterise.Characteriser`.
        points: parameter points (physical units).
        n_seeds: cubes per point and source.
        size_voxels: cube side ``L``.
        seed: base seed (point ``i`` uses seeds ``seed + 1000 i`` ...).
        solid_conductivity: also compare the effective electronic conductivity of the solid (:func:`targets`).

    Raises:
        ConfigError: ``solid_conductivity`` is not a bool (before any cube is drawn).
    """
    targets(solid_conductivity)
    reports = []
    for i, p in enumerate(points):
        gen = generator.sample(p, n=n_seeds, size_voxels=size_voxels, seed=seed + 1000 * i)
        ref = reference(dict(p), n_seeds, seed + 1000 * i)
        reports.append(compare_point(characteriser, gen, ref, generator.voxel_size_m, p, solid_conductivity))
        logger.info("fidelity point %d/%d done: %s", i + 1, len(points), p)
    return reports
