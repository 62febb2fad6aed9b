"""Fidelity of a generator trained on one 2D micrograph, in 2D terms (docs/generator.md).

A generator trained on a single segmented micrograph (one critic sees slices along all three axes,
isotropy assumed) can only be checked against that micrograph: there is no 3D ground truth. This
module compares 2D slices of generated volumes, taken along all three axes, with the image, using
the same estimator on both sides:

* **phase fractions** (pixel counting);
* **interface length per area** ``L_A`` of each phase pair [m-1]: the number of pixel edges shared
  by the two phases, times the pixel edge, divided by the image area. For an interface of random
  orientation this count overestimates the true length by ``4/pi`` on average (Cauchy-Crofton formula
  with the two grid directions: a curve crossed by lines of both grid directions has
  ``E|cos t| + E|sin t| = 4/pi``; Serra, *Image Analysis and Mathematical Morphology*, 1982, ch. 5;
  Ohser & Mücklich, *Statistical Analysis of Microstructures in Materials Science*, 2000, sec. 4.2),
  so with ``isotropic_correction`` (default) the count is multiplied by ``pi/4``: unbiased for
  isotropic interfaces (a disc's perimeter ``2 pi R`` is recovered to within pixelation), low by
  ``1 - pi/4`` (21.5 %) for a grid-aligned straight interface and high by ``pi/(2 sqrt 2) - 1``
  (11 %) for one at 45 degrees. The 2D analogue of the face-counted specific surface area with its
  2/3 correction (:mod:`microdesign.characterise.surface`). Only interfaces inside an image count
  (its border is not an interface). For isotropic structures the 3D specific surface area is
  ``S_V = (4/pi) L_A`` (stereology, Underwood, *Quantitative Stereology*, 1970).
* **two-point correlation** ``S2(r)`` of each phase, the probability that two points a distance
  ``r`` apart both lie in the phase (Torquato, *Random Heterogeneous Materials*, Springer 2002,
  ch. 2): ``S2(0)`` is the phase fraction ``phi`` and ``S2(r) -> phi^2`` for large ``r``. Computed for
  every displacement with zero-padded FFTs (no periodic wrap-around: images are not periodic) and
  divided by the number of pixel pairs at that displacement (the overlap of the image with its
  shifted copy), then pooled over displacements of the same rounded length ``|d|`` and over all
  images of a stack. This estimator is unbiased for a statistically homogeneous structure; its
  variance grows with ``r`` (fewer pairs), so ``r`` is limited to half the smallest image side.
  Scalar summaries: ``max_r |S2_gen(r) - S2_ref(r)|`` and the correlation length, the ``r`` at which
  ``(S2(r) - phi^2) / (phi - phi^2)`` first falls to ``1/e`` (linear interpolation between bins).

Targets (the same as the 3D fidelity report's for fractions and surfaces; ours for the ``S2``
summaries): phase fractions within 0.02 absolute, interface lengths and correlation lengths within
10 %, ``max |dS2|`` within 0.02 (a 0.02 fraction error alone shifts the tail ``phi^2`` by about
``2 phi 0.02``).

Reference spread: the image's own values over random windows of the generated cubes' side show how
much a field of view of that size varies, to judge a difference against.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from microdesign.errors import ConfigError, check_voxel_size
from microdesign.phases import ACTIVE_MATERIAL, CBD, N_PHASES, PHASE_NAMES, PORE

logger = logging.getLogger(__name__)

#: phase pairs of the interface lengths, by name
PHASE_PAIRS: dict[str, tuple[int, int]] = {
    "am_pore": (ACTIVE_MATERIAL, PORE),
    "am_cbd": (ACTIVE_MATERIAL, CBD),
    "pore_cbd": (PORE, CBD),
}

#: metric kind -> (difference kind, tolerance): "abs" difference or "rel" to the reference value
TARGETS_2D: dict[str, tuple[str, float]] = {
    "fraction": ("abs", 0.02),
    "interface_length": ("rel", 0.10),
    "s2_max_abs_difference": ("abs", 0.02),
    "correlation_length": ("rel", 0.10),
}


# ------------------------------------------------------------------------------------------- checks
def _as_stack(images: np.ndarray, name: str = "images") -> np.ndarray:
    """``H x W`` or ``n x H x W`` integer labels -> ``n x H x W`` uint8; ConfigError otherwise."""
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] < 1 or min(a.shape[1:]) < 2:
        raise ConfigError(name, f"shape {np.shape(images)}", "a 2D label image H x W or a stack n x H x W (H, W >= 2)")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise ConfigError(name, f"dtype {a.dtype}", "integer phase labels 0 pore, 1 AM, 2 CBD")
    if a.size and (int(a.min()) < 0 or int(a.max()) >= N_PHASES):
        raise ConfigError(name, f"labels {int(a.min())}..{int(a.max())}", f"phase labels 0..{N_PHASES - 1}")
    return a.astype(np.uint8, copy=False)


def _is_int(x: object) -> bool:
    """An integer count (an int, or a float with an integer value; not a bool)."""
    try:
        return not isinstance(x, bool) and float(x).is_integer()
    except (TypeError, ValueError):
        return False


def _check_voxel(voxel_size_m: float) -> float:
    return check_voxel_size("voxel_size_m", voxel_size_m, hint="the pixel edge of the image")


# ------------------------------------------------------------------------------------------ metrics
def phase_fractions(images: np.ndarray) -> np.ndarray:
    """Pixel fractions of the three phases over an image or a stack.

    Args:
        images: ``H x W`` or ``n x H x W`` labels 0/1/2.

    Returns:
        ``(3,)`` fractions of pore, AM, CBD (sum 1).

    Raises:
        ConfigError: not a 2D label image or stack.
    """
    a = _as_stack(images)
    return np.bincount(a.reshape(-1), minlength=N_PHASES)[:N_PHASES] / a.size


def interface_edge_counts(images: np.ndarray) -> dict[str, int]:
    """Pixel edges shared by each phase pair (:data:`PHASE_PAIRS`), summed over a stack.

    Args:
        images: ``H x W`` or ``n x H x W`` labels 0/1/2. Edges along both image axes count; the image
            border does not.

    Returns:
        pair name -> edge count.

    Raises:
        ConfigError: not a 2D label image or stack.
    """
    a = _as_stack(images)
    out = {k: 0 for k in PHASE_PAIRS}
    for axis in (1, 2):
        m = a.shape[axis] - 1
        lo, hi = np.take(a, np.arange(m), axis=axis), np.take(a, np.arange(1, m + 1), axis=axis)
        # code of the unordered pair: lo + hi is 1 (pore-AM), 2 (pore-CBD, with lo != hi), 3 (AM-CBD)
        diff = lo != hi
        s = (lo.astype(np.int16) + hi)[diff]
        counts = np.bincount(s, minlength=4)
        out["am_pore"] += int(counts[1])
        out["pore_cbd"] += int(counts[2])
        out["am_cbd"] += int(counts[3])
    return out


def interface_length_per_area(images: np.ndarray, voxel_size_m: float, isotropic_correction: bool = True
                              ) -> dict[str, float]:
    """Interface length per image area ``L_A`` of each phase pair [m-1] (edge counting, module docstring).

    Args:
        images: ``H x W`` or ``n x H x W`` labels 0/1/2 (a stack: total length over total area).
        voxel_size_m: pixel edge [m].
        isotropic_correction: multiply the edge count by ``pi/4`` (Cauchy-Crofton; unbiased for randomly
            oriented interfaces, -21.5 % on a grid-aligned line). False: the raw edge length.

    Returns:
        pair name (:data:`PHASE_PAIRS`) -> ``L_A`` [m-1].

    Raises:
        ConfigError: not a 2D label image or stack, or a bad pixel size.
    """
    a = _as_stack(images)
    dx = _check_voxel(voxel_size_m)
    factor = math.pi / 4 if isotropic_correction else 1.0
    area = a.size * dx * dx
    return {k: factor * n * dx / area for k, n in interface_edge_counts(a).items()}


def _s2_sums(images: np.ndarray, phase: int, r_max: int, chunk: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Pair counts ``C`` (``r_max + 1``) and pair numbers ``N`` pooled into radial bins ``0..r_max``
    (:func:`two_point_correlation`)."""
    from scipy import fft as sfft

    n, H, W = images.shape
    sh = (sfft.next_fast_len(H + r_max), sfft.next_fast_len(W + r_max))
    dy = np.r_[0:r_max + 1, -r_max:0]
    iy, ix = np.ix_(dy % sh[0], dy % sh[1])
    rad = np.rint(np.hypot(*np.meshgrid(dy, dy, indexing="ij"))).astype(int)
    keep = rad <= r_max

    def autocorr(x: np.ndarray) -> np.ndarray:
        f = sfft.rfft2(x, s=sh, axes=(-2, -1))
        return sfft.irfft2(f * np.conj(f), s=sh, axes=(-2, -1))

    c = np.zeros((2 * r_max + 1, 2 * r_max + 1))
    for i in range(0, n, chunk):
        ind = (images[i:i + chunk] == phase).astype(np.float64)
        c += autocorr(ind).sum(0)[iy, ix]
    npairs = n * autocorr(np.ones((H, W)))[iy, ix]
    c, npairs = np.rint(c), np.rint(npairs)  # integer pair counts (FFT round-off removed)
    C = np.bincount(rad[keep], weights=c[keep], minlength=r_max + 1)
    N = np.bincount(rad[keep], weights=npairs[keep], minlength=r_max + 1)
    return C, N


def two_point_correlation(images: np.ndarray, phase: int, r_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged two-point correlation ``S2(r)`` of one phase (Torquato 2002, ch. 2).

    Non-periodic estimator: for each displacement ``d`` the number of pixel pairs ``(x, x + d)`` both
    in ``phase`` over the number of pixel pairs inside the image (zero-padded FFTs), pooled over all
    ``d`` with ``round(|d|) = r`` and over all images of a stack.

    Args:
        images: ``H x W`` or ``n x H x W`` labels 0/1/2 (all of one size).
        phase: label 0, 1 or 2.
        r_max: largest distance [pixels], at most half the smaller image side.

    Returns:
        ``(r, s2)``: ``r = 0..r_max`` [pixels] and ``S2(r)`` (``S2(0)`` = the phase fraction).

    Raises:
        ConfigError: not a 2D label image or stack, an unknown phase, ``r_max`` < 1 or above half the
            smaller image side.
    """
    a = _as_stack(images)
    if phase not in range(N_PHASES):
        raise ConfigError("phase", phase, f"a phase label 0..{N_PHASES - 1}")
    r_max = _check_r_max(r_max, a.shape[1:])
    C, N = _s2_sums(a, phase, r_max)
    return np.arange(r_max + 1, dtype=float), C / N


def _check_r_max(r_max: int, shape: Sequence[int]) -> int:
    if isinstance(r_max, bool) or not float(r_max).is_integer() or int(r_max) < 1 or int(r_max) > min(shape) // 2:
        raise ConfigError("r_max", r_max, f"an integer distance in pixels, 1 <= r_max <= {min(shape) // 2} "
                          f"(half the smaller side of {tuple(shape)})")
    return int(r_max)


def correlation_length(r: np.ndarray, s2: np.ndarray) -> float:
    """Distance where the normalised correlation ``(S2(r) - phi^2) / (phi - phi^2)`` first reaches ``1/e``.

    ``phi = S2(0)``. Linear interpolation between bins; in the units of ``r``.

    Args:
        r: increasing distances, ``r[0] = 0``.
        s2: ``S2`` at ``r``.

    Returns:
        The correlation length, or ``nan`` when the phase is absent or fills everything (``phi`` 0
        or 1) or the curve does not fall to ``1/e`` within ``r``.

    Raises:
        ConfigError: ``r`` and ``s2`` of different lengths, fewer than two points, or ``r[0] != 0``.
    """
    r, s2 = np.asarray(r, dtype=float), np.asarray(s2, dtype=float)
    if r.shape != s2.shape or r.ndim != 1 or r.size < 2 or r[0] != 0:
        raise ConfigError("r, s2", f"shapes {r.shape}, {s2.shape}", "two 1D arrays of one length >= 2, r[0] = 0")
    phi = s2[0]
    var = phi - phi * phi
    if not var > 0:
        return float("nan")
    f = (s2 - phi * phi) / var
    below = np.flatnonzero(f <= 1 / math.e)
    if below.size == 0:
        return float("nan")
    k = int(below[0])
    return float(r[k] - (r[k] - r[k - 1]) * (1 / math.e - f[k]) / (f[k - 1] - f[k]))


# -------------------------------------------------------------------------------- slices of volumes
def volume_slices(volume: np.ndarray, axis: int, stride: int = 1) -> np.ndarray:
    """Slices of an ``L0 x L1 x L2`` volume normal to ``axis`` (every ``stride``-th), as a 2D stack.

    Raises:
        ConfigError: not a 3D volume, a bad axis or stride.
    """
    v = np.asarray(volume)
    if v.ndim != 3:
        raise ConfigError("volume", f"shape {v.shape}", "a 3D label volume")
    if axis not in (0, 1, 2):
        raise ConfigError("axis", axis, "0, 1 or 2")
    if not _is_int(stride) or int(stride) < 1:
        raise ConfigError("slice_stride", stride, "a positive integer")
    return np.moveaxis(v, axis, 0)[::int(stride)]


@dataclass(frozen=True)
class ImageStatistics:
    """2D statistics of one image or a stack of slices.

    Attributes:
        fractions: ``(3,)`` phase fractions (pore, AM, CBD).
        interface_length_per_area: pair name -> interface length per area ``L_A`` [m-1].
        r_px: ``0..r_max`` [pixels].
        s2: ``3 x (r_max + 1)`` two-point correlation of each phase.
        correlation_length_px: ``(3,)`` correlation lengths [pixels] (nan: not reached within ``r_max``).
    """

    fractions: np.ndarray
    interface_length_per_area: dict[str, float]
    r_px: np.ndarray
    s2: np.ndarray
    correlation_length_px: np.ndarray


@dataclass(frozen=True)
class _Sums:
    """Additive raw counts of a stack of equal-size images (pooling = adding)."""

    counts: np.ndarray          # (3,) pixels per phase
    edges: dict[str, int]       # pair -> edge count
    s2_pairs: np.ndarray        # 3 x (r_max + 1) pixel pairs both in the phase, per radial bin
    s2_total: np.ndarray        # (r_max + 1,) pixel pairs per radial bin

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(self.counts + other.counts, {k: self.edges[k] + other.edges[k] for k in self.edges},
                     self.s2_pairs + other.s2_pairs, self.s2_total + other.s2_total)

    def statistics(self, voxel_size_m: float, isotropic_correction: bool) -> ImageStatistics:
        n = float(self.counts.sum())
        dx = voxel_size_m
        factor = math.pi / 4 if isotropic_correction else 1.0
        s2 = self.s2_pairs / self.s2_total
        r = np.arange(s2.shape[1], dtype=float)
        return ImageStatistics(self.counts / n, {k: factor * e * dx / (n * dx * dx) for k, e in self.edges.items()},
                               r, s2, np.array([correlation_length(r, c) for c in s2]))


def _sums(stack: np.ndarray, r_max: int) -> _Sums:
    parts = [_s2_sums(stack, p, r_max) for p in range(N_PHASES)]
    return _Sums(np.bincount(stack.reshape(-1), minlength=N_PHASES)[:N_PHASES].astype(float),
                 interface_edge_counts(stack), np.stack([c for c, _ in parts]), parts[0][1])


def image_statistics(images: np.ndarray, voxel_size_m: float, r_max: int,
                     isotropic_correction: bool = True) -> ImageStatistics:
    """Phase fractions, interface lengths per area and ``S2`` of an image or a stack (pooled).

    Args:
        images: ``H x W`` or ``n x H x W`` labels 0/1/2.
        voxel_size_m: pixel edge [m].
        r_max: largest ``S2`` distance [pixels] (at most half the smaller side).
        isotropic_correction: see :func:`interface_length_per_area`.

    Raises:
        ConfigError: bad images, pixel size or ``r_max``.
    """
    a = _as_stack(images)
    dx = _check_voxel(voxel_size_m)
    r_max = _check_r_max(r_max, a.shape[1:])
    return _sums(a, r_max).statistics(dx, isotropic_correction)


def volume_statistics(volume: np.ndarray, voxel_size_m: float, r_max: int, axes: Sequence[int] = (0, 1, 2),
                      stride: int = 1, isotropic_correction: bool = True) -> ImageStatistics:
    """:func:`image_statistics` of the slices of one cubic volume along ``axes`` (pooled over axes and slices).

    Raises:
        ConfigError: not a cubic label volume, bad axes, stride, pixel size or ``r_max``.
    """
    v = np.asarray(volume)
    if v.ndim != 3 or len({*v.shape}) != 1:
        raise ConfigError("volume", f"shape {v.shape}", "a cubic 3D label volume L x L x L")
    stack = np.concatenate([volume_slices(v, a, stride) for a in axes])
    return image_statistics(stack, voxel_size_m, r_max, isotropic_correction)


# ------------------------------------------------------------------------------------------ report
@dataclass(frozen=True)
class Comparison2D:
    """One 2D metric: generated (per cube) against the image.

    Attributes:
        metric: name with unit.
        kind: target kind, ``"fraction"``, ``"interface_length"``, ``"s2_max_abs_difference"`` or
            ``"correlation_length"`` (:data:`TARGETS_2D`).
        generated: per-cube values (slices of each cube along all three axes).
        reference: the value over the whole image.
        reference_windows: values over random image windows of the cubes' side (the spread of a field
            of view of that size); empty where not applicable.
        pooled: the generated value over all cubes' slices together (nan where the per-cube mean is used).
    """

    metric: str
    kind: str
    generated: np.ndarray
    reference: float
    reference_windows: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pooled: float = float("nan")

    @property
    def generated_value(self) -> float:
        """The pooled value where given, else the mean over cubes."""
        g = self.generated[np.isfinite(self.generated)]
        return float(self.pooled) if np.isfinite(self.pooled) else (float(g.mean()) if g.size else float("nan"))

    @property
    def difference(self) -> float:
        """Generated minus reference (absolute), relative to the reference for ``rel`` targets; for
        ``s2_max_abs_difference`` the generated value itself (it is already a difference)."""
        mode, _ = TARGETS_2D[self.kind]
        if self.kind == "s2_max_abs_difference":
            return self.generated_value
        d = self.generated_value - self.reference
        return d / abs(self.reference) if mode == "rel" and self.reference else d

    @property
    def tolerance(self) -> float:
        """The target on :attr:`difference` (:data:`TARGETS_2D`): absolute, or relative (0.1 = 10 %)."""
        return TARGETS_2D[self.kind][1]

    @property
    def passed(self) -> bool:
        """``|difference| <= tolerance`` (False for a non-finite difference)."""
        return bool(np.isfinite(self.difference) and abs(self.difference) <= self.tolerance)


@dataclass(frozen=True)
class Fidelity2DReport:
    """Result of :func:`compare_to_micrograph`.

    Attributes:
        comparisons: one row per metric.
        r_px: ``S2`` distances [pixels]; voxel_size_m: pixel edge [m].
        s2_generated, s2_reference: ``3 x len(r_px)`` curves (generated: pooled over cubes and axes).
        s2_generated_axes: ``3 (axes) x 3 (phases) x len(r_px)`` generated curves per slicing axis.
        per_axis: axis -> metric name -> generated value pooled over that axis's slices (isotropy check).
        n_cubes, size_voxels, slice_stride, n_windows: what was measured.
    """

    comparisons: list[Comparison2D]
    r_px: np.ndarray
    voxel_size_m: float
    s2_generated: np.ndarray
    s2_reference: np.ndarray
    s2_generated_axes: np.ndarray
    per_axis: dict[int, dict[str, float]]
    n_cubes: int
    size_voxels: int
    slice_stride: int
    n_windows: int

    def to_dict(self) -> dict:
        """JSON-ready content (curves as lists; non-finite numbers as None)."""

        def num(x):
            x = float(x)
            return x if math.isfinite(x) else None

        return {
            "voxel_size_m": self.voxel_size_m, "n_cubes": self.n_cubes, "size_voxels": self.size_voxels,
            "slice_stride": self.slice_stride, "n_windows": self.n_windows,
            "metrics": {c.metric: {"kind": c.kind, "generated": [num(v) for v in c.generated],
                                   "generated_value": num(c.generated_value), "reference": num(c.reference),
                                   "reference_windows": [num(v) for v in c.reference_windows],
                                   "difference": num(c.difference), "tolerance": c.tolerance, "passed": c.passed}
                        for c in self.comparisons},
            "per_axis": {str(a): {k: num(v) for k, v in d.items()} for a, d in self.per_axis.items()},
            "s2": {"r_px": self.r_px.tolist(),
                   "generated": {PHASE_NAMES[p]: [num(v) for v in self.s2_generated[p]] for p in range(N_PHASES)},
                   "reference": {PHASE_NAMES[p]: [num(v) for v in self.s2_reference[p]] for p in range(N_PHASES)},
                   "generated_by_axis": {str(a): {PHASE_NAMES[p]: [num(v) for v in self.s2_generated_axes[a, p]]
                                                  for p in range(N_PHASES)} for a in range(3)}},
        }


def _stats(v: np.ndarray) -> str:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "n/a"
    return f"{v.mean():.4g} ± {v.std(ddof=1) if v.size > 1 else 0.0:.2g}"


def report_markdown(report: Fidelity2DReport, title: str = "") -> str:
    """Markdown: the comparison table, then the per-axis values of the generated slices."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| metric | generated (mean ± std over cubes) | generated, all slices | image | image windows "
              f"{report.size_voxels}² (mean ± std) | difference | target | pass |",
              "|---|---|---|---|---|---|---|---|"]
    for c in report.comparisons:
        mode, tol = TARGETS_2D[c.kind]
        diff = f"{c.difference:+.3f}" if mode == "abs" else f"{100 * c.difference:+.1f}%"
        if c.kind == "s2_max_abs_difference":
            diff = f"{c.difference:.3f}"
        tgt = f"±{tol}" if mode == "abs" else f"±{100 * tol:.0f}%"
        pooled = f"{c.pooled:.4g}" if np.isfinite(c.pooled) else ""
        ref = f"{c.reference:.4g}" if np.isfinite(c.reference) else "n/a"
        lines.append(f"| {c.metric} | {_stats(c.generated)} | {pooled} | {ref} | {_stats(c.reference_windows)} | "
                     f"{diff} | {tgt} | {'yes' if c.passed else 'no'} |")
    ok = sum(c.passed for c in report.comparisons)
    lines += ["", f"{ok} of {len(report.comparisons)} comparisons within target.", ""]
    keys = list(next(iter(report.per_axis.values())))
    lines += ["| generated slices normal to | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for a, d in report.per_axis.items():
        lines.append(f"| axis {a} | " + " | ".join(f"{d[k]:.4g}" for k in keys) + " |")
    return "\n".join(lines)


def _interface_name(pair: str) -> str:
    return {"am_pore": "AM-pore", "am_cbd": "AM-CBD", "pore_cbd": "pore-CBD"}[pair]


def _metric_names(dx: float) -> dict[str, str]:
    names = {f"fraction_{p}": f"{PHASE_NAMES[p]} fraction" for p in range(N_PHASES)}
    names.update({f"il_{k}": f"interface length per area {_interface_name(k)} [m-1]" for k in PHASE_PAIRS})
    names.update({f"cl_{p}": f"S2 correlation length {PHASE_NAMES[p]} [µm]" for p in range(N_PHASES)})
    names.update({f"s2_{p}": f"S2 max abs difference {PHASE_NAMES[p]}" for p in range(N_PHASES)})
    return names


def _flat(stats: ImageStatistics, dx: float) -> dict[str, float]:
    out = {f"fraction_{p}": float(stats.fractions[p]) for p in range(N_PHASES)}
    out.update({f"il_{k}": float(v) for k, v in stats.interface_length_per_area.items()})
    out.update({f"cl_{p}": float(stats.correlation_length_px[p]) * dx * 1e6 for p in range(N_PHASES)})
    return out


def compare_to_micrograph(volumes: np.ndarray, image: np.ndarray, voxel_size_m: float, r_max: int | None = None,
                          slice_stride: int = 1, n_windows: int = 16, seed: int = 0,
                          isotropic_correction: bool = True) -> Fidelity2DReport:
    """Compare slices of generated volumes (along all three axes) with a 2D micrograph.

    Args:
        volumes: ``n x L x L x L`` generated labels 0/1/2 (or one ``L x L x L`` volume).
        image: ``H x W`` labels 0/1/2, the micrograph (both sides ``>= L``).
        voxel_size_m: voxel edge of the volumes = pixel edge of the image [m].
        r_max: largest ``S2`` distance [pixels] (default and maximum ``L // 2``).
        slice_stride: use every ``slice_stride``-th slice along each axis (1: all).
        n_windows: random ``L x L`` windows of the image for the reference spread (0: none).
        seed: seed of the window positions.
        isotropic_correction: see :func:`interface_length_per_area` (the same on both sides).

    Returns:
        :class:`Fidelity2DReport`: phase fractions, interface length per area of each pair,
        ``S2`` correlation length and ``max |dS2|`` of each phase, the ``S2`` curves and per-axis values.

    Raises:
        ConfigError: volumes not ``n x L x L x L`` labels, an image that is not 2D labels or smaller
            than ``L``, a bad pixel size, ``r_max``, stride or window count.
    """
    vols = np.asarray(volumes)
    if vols.ndim == 3:
        vols = vols[None]
    if vols.ndim != 4 or vols.shape[0] < 1 or len(set(vols.shape[1:])) != 1 or vols.shape[1] < 4:
        raise ConfigError("volumes", f"shape {np.shape(volumes)}", "n x L x L x L generated label cubes (L >= 4)")
    L = int(vols.shape[1])
    img = _as_stack(image, "image")
    if img.shape[0] != 1:
        raise ConfigError("image", f"shape {np.shape(image)}", "one 2D micrograph H x W")
    img = img[0]
    if min(img.shape) < L:
        raise ConfigError("image", f"shape {img.shape}", f"a micrograph with both sides >= the cube side {L}")
    dx = _check_voxel(voxel_size_m)
    r_max = _check_r_max(L // 2 if r_max is None else r_max, (L, L))
    if not _is_int(slice_stride) or int(slice_stride) < 1:
        raise ConfigError("slice_stride", slice_stride, "a positive integer")
    if not _is_int(n_windows) or int(n_windows) < 0:
        raise ConfigError("n_windows", n_windows, "a number of image windows >= 0")
    _as_stack(vols[0, 0], "volumes")
    if int(vols.min()) < 0 or int(vols.max()) >= N_PHASES:
        raise ConfigError("volumes", f"labels {int(vols.min())}..{int(vols.max())}", f"phase labels 0..{N_PHASES - 1}")
    # raw counts per cube and slicing axis, pooled by adding
    sums = [[_sums(volume_slices(v, a, slice_stride).astype(np.uint8), r_max) for a in range(3)] for v in vols]
    per_cube = [(s[0] + s[1] + s[2]).statistics(dx, isotropic_correction) for s in sums]
    axis_sums = [sum((s[a] for s in sums[1:]), sums[0][a]) for a in range(3)]
    axis_stats = {a: axis_sums[a].statistics(dx, isotropic_correction) for a in range(3)}
    pooled = (axis_sums[0] + axis_sums[1] + axis_sums[2]).statistics(dx, isotropic_correction)
    ref = image_statistics(img, dx, r_max, isotropic_correction)
    rng = np.random.default_rng(seed)
    windows = []
    for _ in range(int(n_windows)):
        i0, j0 = int(rng.integers(img.shape[0] - L + 1)), int(rng.integers(img.shape[1] - L + 1))
        windows.append(image_statistics(img[i0:i0 + L, j0:j0 + L], dx, r_max, isotropic_correction))

    names = _metric_names(dx)
    g = [_flat(s, dx) for s in per_cube]
    g_pool, r_flat = _flat(pooled, dx), _flat(ref, dx)
    w = [_flat(s, dx) for s in windows]
    comps: list[Comparison2D] = []
    for key, name in names.items():
        if key.startswith("s2_"):
            p = int(key[3:])
            per = np.array([np.abs(s.s2[p] - ref.s2[p]).max() for s in per_cube])
            comps.append(Comparison2D(name, "s2_max_abs_difference", per, 0.0,
                                      np.array([np.abs(s.s2[p] - ref.s2[p]).max() for s in windows]),
                                      float(np.abs(pooled.s2[p] - ref.s2[p]).max())))
            continue
        kind = {"fraction": "fraction", "il": "interface_length", "cl": "correlation_length"}[key.split("_")[0]]
        comps.append(Comparison2D(name, kind, np.array([d[key] for d in g]), r_flat[key],
                                  np.array([d[key] for d in w]), g_pool[key]))
    per_axis = {a: {names[k]: v for k, v in _flat(s, dx).items()} for a, s in axis_stats.items()}
    return Fidelity2DReport(comps, pooled.r_px, dx, pooled.s2, ref.s2, np.stack([axis_stats[a].s2 for a in range(3)]),
                            per_axis, int(vols.shape[0]), L, int(slice_stride), int(n_windows))


def evaluate_generator(generator, image: np.ndarray, n_cubes: int, size_voxels: int, seed: int = 0,
                       params: Mapping[str, float] | None = None, **kwargs) -> Fidelity2DReport:
    """Sample ``n_cubes`` cubes of ``size_voxels`` from ``generator`` and :func:`compare_to_micrograph`.

    Args:
        generator: a :class:`microdesign.generator.Generator` (its voxel size is the image's pixel size).
        image: ``H x W`` micrograph labels.
        n_cubes: generated cubes (>= 1).
        size_voxels: cube side.
        seed: sampling seed (also the window seed).
        params: conditioning parameters (``{}`` for a single-class model).
        **kwargs: passed to :func:`compare_to_micrograph`.

    Raises:
        ConfigError: ``n_cubes`` < 1, and as :func:`compare_to_micrograph`.
    """
    if not _is_int(n_cubes) or int(n_cubes) < 1:
        raise ConfigError("n_cubes", n_cubes, "a positive number of generated cubes")
    if not _is_int(size_voxels) or int(size_voxels) < 4:
        raise ConfigError("size_voxels", size_voxels, "an integer cube side >= 4")
    if min(np.shape(image)[-2:]) < int(size_voxels):
        raise ConfigError("size_voxels", size_voxels, f"<= both sides of the micrograph {np.shape(image)}")
    if kwargs.get("r_max") is not None:
        _check_r_max(kwargs["r_max"], (int(size_voxels),) * 2)
    vols = generator.sample(dict(params or {}), n=int(n_cubes), size_voxels=int(size_voxels), seed=int(seed))
    kwargs.setdefault("seed", int(seed))
    return compare_to_micrograph(vols, image, generator.voxel_size_m, **kwargs)
