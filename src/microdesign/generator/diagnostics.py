"""Structure diagnostics of generated volumes: why a metric misses (pore connectivity, speckle, anisotropy).

The fidelity report (:mod:`microdesign.generator.fidelity`) says *whether* a generator's volumes
match its training source; these statistics help say *why* a transport metric misses when phase
fractions match. For one segmented cube they give:

* the share of the pore phase in the cluster that spans the cube through-plane (axis 0) - pore
  outside it adds porosity but no transport, so the tortuosity factor ``tau = eps D / D_eff`` rises;
* the number of pore clusters (6-connectivity, :func:`scipy.ndimage.label`) and the pore share in
  clusters that touch no face of the cube (isolated pores);
* isolated voxels of each phase (no face neighbour of the same phase: "speckle" of a voxel-wise
  argmax);
* one-voxel-thin CBD "films" across the pore: CBD voxels with pore on both faces along axis 0
  (a film across the through-plane path);
* mean chord length of the pore phase along axis 0 and along axes 1-2 (voxels; the chord length of a
  phase along a line is the length of its runs, Torquato, *Random Heterogeneous Materials*, 2002, ch. 2);
* the size of the active-material bodies: the mean Euclidean distance of an AM voxel to the nearest
  non-AM voxel (voxels; :func:`scipy.ndimage.distance_transform_edt`) and the number of AM clusters.

Findings for the shipped model: docs/generator.md, "Why the pore tortuosity factor is high".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE

_FACES = ndimage.generate_binary_structure(3, 1)


def mean_chord_length(mask: np.ndarray, axis: int) -> float:
    """Mean length [voxels] of the runs of ``True`` along ``axis`` (runs cut by the cube faces included).

    Args:
        mask: 3D boolean array.
        axis: 0, 1 or 2.

    Returns:
        Mean run length, or 0.0 when ``mask`` is empty.
    """
    m = np.moveaxis(np.asarray(mask, dtype=bool), axis, -1).reshape(-1, mask.shape[axis])
    n_true = int(m.sum())
    if n_true == 0:
        return 0.0
    starts = int(m[:, 0].sum()) + int((m[:, 1:] & ~m[:, :-1]).sum())  # number of runs
    return n_true / starts


def structure_statistics(cube: np.ndarray) -> dict[str, float]:
    """Connectivity and texture statistics of one ``L0 x L1 x L2`` label cube (axis 0 through-plane).

    Returns:
        ``spanning_pore_share`` (pore voxels connected to both axis-0 faces / pore voxels),
        ``pore_clusters`` (count), ``enclosed_pore_share`` (pore in clusters touching no face / pore),
        ``isolated_voxels_<phase>_per_1e3`` (voxels without a same-phase face neighbour per 1000 voxels
        of that phase) for pore, AM and CBD, ``cbd_film_across_pore_per_1e3_pore`` (CBD voxels with pore
        on both axis-0 faces per 1000 pore voxels), ``pore_chord_axis0_vox`` and
        ``pore_chord_axes12_vox`` (mean chord lengths), ``am_thickness_mean_vox`` (mean distance of AM
        voxels to the AM surface), ``am_clusters`` (count, 6-connectivity) and ``porosity``.
    """
    from microdesign.characterise.connectivity import spanning_mask

    cube = np.asarray(cube)
    pore = cube == PORE
    n_pore = max(int(pore.sum()), 1)
    out: dict[str, float] = {"porosity": float(pore.mean())}
    out["spanning_pore_share"] = float(spanning_mask(pore, axis=0).sum() / n_pore)
    labels, n = ndimage.label(pore, structure=_FACES)
    out["pore_clusters"] = float(n)
    faces = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(),
                                      labels[:, :, [0, -1]].ravel()]))
    enclosed = ~np.isin(labels, faces) & pore
    out["enclosed_pore_share"] = float(enclosed.sum() / n_pore)
    for name, phase in (("pore", PORE), ("am", ACTIVE_MATERIAL), ("cbd", CBD)):
        m = cube == phase
        # outside the cube counts as another phase (mode "nearest" would make a face voxel its own neighbour)
        same = ndimage.convolve(m.astype(np.uint8), _FACES.astype(np.uint8), mode="constant", cval=0) - m
        isolated = m & (same == 0)
        out[f"isolated_voxels_{name}_per_1e3"] = float(1e3 * isolated.sum() / max(int(m.sum()), 1))
    cbd = cube == CBD
    film = cbd[1:-1] & pore[:-2] & pore[2:]
    out["cbd_film_across_pore_per_1e3_pore"] = float(1e3 * film.sum() / n_pore)
    out["pore_chord_axis0_vox"] = mean_chord_length(pore, 0)
    out["pore_chord_axes12_vox"] = 0.5 * (mean_chord_length(pore, 1) + mean_chord_length(pore, 2))
    am = cube == ACTIVE_MATERIAL
    out["am_thickness_mean_vox"] = float(ndimage.distance_transform_edt(am)[am].mean()) if am.any() else 0.0
    out["am_clusters"] = float(ndimage.label(am, structure=_FACES)[1])
    return out


def summarise(cubes: np.ndarray) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of :func:`structure_statistics` over ``n x L x L x L`` cubes."""
    rows = [structure_statistics(c) for c in cubes]
    return {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows], ddof=1) if len(rows) > 1
                                                             else 0.0)) for k in rows[0]}


def compare_table(generated: Mapping[str, tuple[float, float]], reference: Mapping[str, tuple[float, float]]) -> str:
    """Markdown rows ``| statistic | generated | reference |`` (mean ± std)."""
    lines = ["| statistic | generated | reference |", "|---|---|---|"]
    for k in generated:
        g, r = generated[k], reference[k]
        lines.append(f"| {k} | {g[0]:.3g} ± {g[1]:.2g} | {r[0]:.3g} ± {r[1]:.2g} |")
    return "\n".join(lines)
