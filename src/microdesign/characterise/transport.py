"""Steady-state transport solves on voxel cubes: pore tortuosity factor and solid conductivity.

The driver of this module does the per-cube bookkeeping common to both back-ends -- the
percolation check (:mod:`microdesign.characterise.connectivity`), the grouping of cubes into solves
(all at once with ``batch``, else one by one), and the filtering of non-finite / non-positive
results -- and calls a back-end solve per group. Both back-ends solve the *same* finite-volume
problem (flux along axis 0, Dirichlet potentials -0.5 / +0.5 on the two faces normal to axis 0, no
flux on the four others):

* ``"taufactor"`` -- TauFactor's SOR solvers (Kench & Cooper, SoftwareX 2023 / JOSS 2023), in
  :mod:`microdesign.characterise.taufactor_backend`: :class:`taufactor.Solver` for a binary phase,
  :class:`taufactor.MultiPhaseSolver` for several conducting phases.
* ``"mgcg"`` -- our multigrid-preconditioned conjugate gradient (:mod:`microdesign.characterise.mgcg`),
  in torch, batched on a GPU and unchanged on a CPU. It reproduces TauFactor's discretisation
  exactly, face by face:

  - binary (``Solver``): unit conductance between two conducting voxels, conductance 2 between a
    boundary voxel and its Dirichlet face (half a voxel away); transport length ``Nx``;
    ``tau = eps / D_rel`` with ``D_rel = mean layer flux * Nx / (Ny * Nz)``.
  - multi-phase (``MultiPhaseSolver``): face conductance ``1 / (0.5/c_i + 0.5/c_j)`` (harmonic),
    a boundary voxel couples to a ghost of its own conductivity one voxel away; transport length
    ``Nx + 1``; ``D_eff = mean layer flux * (Nx + 1) / (Ny * Nz)``.

  Only the voxels of the cluster(s) spanning axis 0 (6-connectivity, as TauFactor's
  ``extract_through_feature``) carry flux; others are dropped before the solve, which does not
  change the flux and removes the singular floating clusters.

Inputs are numpy arrays (host path: scipy percolation check) or, for the MG-CG back-end, torch
tensors on the solve's device (GPU path: percolation check and set-up on the device, no host round
trip; identical results).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from microdesign.characterise import taufactor_backend
from microdesign.characterise.connectivity import face_connected_clusters, spanning_mask, spanning_masks
from microdesign.characterise.mgcg import mgcg_solve
from microdesign.characterise.taufactor_backend import quiet

__all__ = [
    "TransportResult",
    "fraction_per_cube",
    "mgcg_conductivity",
    "mgcg_solve",
    "mgcg_tortuosity",
    "quiet",
    "spanning_mask",
    "taufactor_conductivity",
    "taufactor_tortuosity",
    "torch_threads",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransportResult:
    """Per-cube result of one transport solve over ``n`` cubes.

    Attributes:
        tau: tortuosity factor per cube, shape ``n`` (binary: ``eps / D_rel``; multi-phase:
            ``D_mean / D_eff``); NaN where the phase does not percolate.
        d_eff: effective transport coefficient per cube, shape ``n``, in the units of the
            conductivities given (binary: relative diffusivity ``D_eff / D_0``).
        percolating: whether the conducting phase spans axis 0 and the solve gave a finite positive
            ``tau`` and ``d_eff``, shape ``n``.
        converged: whether the solver met its criterion within its iteration limit, shape ``n``.
        iterations: iterations used per cube, shape ``n``.
        spans: whether the conducting phase spans axis 0, whatever the solve gave, shape ``n``; None
            (a solver that does not report it): taken as ``percolating``. A cube that spans but is not
            ``percolating`` is a failed solve, not a blocked cube.
    """

    tau: np.ndarray
    d_eff: np.ndarray
    percolating: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    spans: np.ndarray | None = None


# --------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (None: unchanged), restoring the old value."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _finite_positive(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.isfinite(x) & (x > 0)


def _is_tensor(x) -> bool:
    import torch

    return torch.is_tensor(x)


def _to_host(x) -> np.ndarray:
    """numpy view of an array or tensor (the TauFactor back-end works on host arrays)."""
    return x.cpu().numpy() if _is_tensor(x) else np.asarray(x)


def fraction_per_cube(mask) -> np.ndarray:
    """Per-cube fraction of True voxels of ``n x X x Y x Z`` masks, float64 numpy shape ``n`` (numpy array or
    tensor on any device; identical values)."""
    import torch

    n = mask.shape[0]
    if _is_tensor(mask):
        return (mask.reshape(n, -1).sum(1, dtype=torch.float64) / mask[0].numel()).cpu().numpy()
    return mask.reshape(n, -1).mean(1)


def _take(a, g: np.ndarray):
    """Cubes ``g`` of an array or tensor."""
    if _is_tensor(a):
        import torch

        return a[torch.as_tensor(g, device=a.device)]
    return a[g]


# ---------------------------------------------------------------------------------------- driver
#: A back-end solve of one group: ``(cube indices, spanning masks of all cubes) -> (tau, d_eff,
#: converged, iterations)`` for those cubes (arrays of the group's length, or scalars for the group).
GroupSolve = Callable[[np.ndarray, object], tuple]


def _drive(conducting, solve_group: GroupSolve, batch: bool) -> TransportResult:
    """Percolation check, grouping and per-cube bookkeeping around a back-end solve.

    Args:
        conducting: conducting-phase masks ``n x X x Y x Z`` (numpy bool array, or bool tensor for the
            device path).
        solve_group: the back-end solve of one group of percolating cubes.
        batch: one group of all percolating cubes (pays on a GPU), else one cube per group.

    Returns:
        :class:`TransportResult`; a cube is ``percolating`` only when its phase spans axis 0 *and*
        the solve gave a finite positive ``tau`` and ``d_eff`` (else NaN ``tau`` and 0 ``d_eff``).
    """
    n = conducting.shape[0]
    span = spanning_masks(conducting)
    perc = span.reshape(n, -1).any(1)
    perc = perc.cpu().numpy() if _is_tensor(perc) else np.asarray(perc)
    tau = np.full(n, np.nan)
    d_eff = np.zeros(n)
    conv = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    spans = perc.copy()
    idx = np.flatnonzero(perc)
    groups = [idx] if batch and idx.size else [[i] for i in idx]
    for g in groups:
        g = np.asarray(g)
        t, d, ok_conv, it = solve_group(g, span)
        ok = _finite_positive(t) & _finite_positive(d)
        tau[g] = np.where(ok, t, np.nan)
        d_eff[g] = np.where(ok, d, 0.0)
        perc[g] &= ok
        conv[g], iters[g] = ok_conv, it
    return TransportResult(tau, d_eff, perc, conv, iters, spans)


def _ratio(num: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``num / d`` where ``d`` is finite positive (else ``num``; the driver discards those cubes)."""
    return num / np.where(_finite_positive(d), d, 1.0)


# --------------------------------------------------------------------------------- TauFactor back-end
def taufactor_tortuosity(masks: np.ndarray, device: str = "cpu", conv_crit: float = 1e-2,
                         iter_limit: int = 20000, batch: bool = False) -> TransportResult:
    """Pore tortuosity factor along axis 0 with :class:`taufactor.Solver`.

    Args:
        masks: conducting-phase masks ``n x X x Y x Z`` (bool / 0-1; a tensor is copied to the host).
        device: ``"cpu"`` or ``"cuda[:i]"``.
        conv_crit: TauFactor's convergence criterion (relative spread of layer fluxes).
        iter_limit: TauFactor iteration limit.
        batch: solve all cubes in one batched call (pays on a GPU, not on a CPU).

    Returns:
        :class:`TransportResult`; non-percolating cubes have ``percolating=False`` and NaN tau.
    """
    masks = _to_host(masks).astype(np.uint8)

    def solve(g, span):
        return taufactor_backend.solve_binary(masks[g], device, conv_crit, iter_limit)

    return _drive(masks.astype(bool), solve, batch)


def taufactor_conductivity(labels: np.ndarray, conductivity: dict[int, float], device: str = "cpu",
                           conv_crit: float = 1e-2, iter_limit: int = 20000) -> TransportResult:
    """Effective conductivity along axis 0 with :class:`taufactor.MultiPhaseSolver` (one cube at a time).

    Args:
        labels: label volumes ``n x X x Y x Z``; labels absent from ``conductivity`` insulate (a
            tensor is copied to the host).
        conductivity: label -> bulk conductivity [S.m-1] (label 0 not allowed, TauFactor's rule).
        device, conv_crit, iter_limit: as :func:`taufactor_tortuosity`.

    Returns:
        :class:`TransportResult` with ``d_eff`` in [S.m-1].
    """
    labels = _to_host(labels)
    conducting = np.isin(labels, list(conductivity))

    def solve(g, span):
        img = np.where(conducting[g[0]], labels[g[0]], 0).astype(np.uint8)
        return taufactor_backend.solve_multiphase(img, conductivity, device, conv_crit, iter_limit)

    return _drive(conducting, solve, batch=False)


# ------------------------------------------------------------------------------- MG-CG back-end
def mgcg_tortuosity(masks, device: str = "cpu", rtol: float = 1e-4, conv_crit: float = 1e-2,
                    iter_limit: int = 500, batch: bool = False, dtype: str = "float32",
                    **mg_options) -> TransportResult:
    """Pore tortuosity factor along axis 0 with the MG-CG solver, TauFactor ``Solver`` discretisation.

    Args and returns as :func:`taufactor_tortuosity` (``masks`` may also be a bool tensor on
    ``device``: the device path); ``rtol`` and ``mg_options`` as :func:`mgcg_solve`.
    """
    import torch

    masks = masks.bool() if _is_tensor(masks) else np.asarray(masks).astype(bool)
    n, X, Y, Z = masks.shape
    eps = fraction_per_cube(masks)

    def solve(g, span):
        s = _take(span, g)
        s = s.to(torch.float32) if _is_tensor(s) else s.astype(np.float32)
        flux, ok, it = mgcg_solve(s, boundary_factor=2.0, harmonic=False, device=device, rtol=rtol,
                                  conv_crit=conv_crit, iter_limit=iter_limit, dtype=dtype, **mg_options)
        d = flux * X / (Y * Z)
        return _ratio(eps[g], d), d, ok, it

    return _drive(masks, solve, batch)


def mgcg_conductivity(labels, conductivity: dict[int, float], device: str = "cpu",
                      rtol: float = 1e-4, conv_crit: float = 1e-2, iter_limit: int = 500,
                      batch: bool = False, dtype: str = "float32", deflation: bool = True,
                      **mg_options) -> TransportResult:
    """Effective conductivity along axis 0 with the MG-CG solver, TauFactor ``MultiPhaseSolver`` discretisation.

    The problem is scaled by the largest bulk conductivity before the solve (float32 range) and
    the flux scaled back. Args and returns as :func:`taufactor_conductivity` (``labels`` may also be
    a tensor on ``device``: the device path). ``deflation`` (default True; float64 solves only, float32
    ones are not deflated): where two or more phases conduct, CG is deflated by the face-connected
    clusters of the most conducting phase inside the spanning network
    (:func:`connectivity.face_connected_clusters`: scipy on the host, torch on the tensor's device for
    the device path; ``deflation_clusters`` of
    :func:`mgcg.mgcg_solve`).
    """
    import torch

    n, X, Y, Z = labels.shape
    scale = max(conductivity.values())
    cmap = np.zeros(256, dtype=np.float64)
    for lab, c in conductivity.items():
        cmap[int(lab)] = c / scale
    if _is_tensor(labels):
        cond = torch.as_tensor(cmap, device=labels.device)[labels.long()]
    else:
        labels = np.asarray(labels)
        cond = cmap[labels]
    vf = {lab: fraction_per_cube(labels == lab) for lab in conductivity}
    d_mean = sum(vf[lab] * conductivity[lab] for lab in conductivity)
    conducting = [lab for lab, c in conductivity.items() if c > 0]
    deflate = deflation and dtype == "float64" and len(conducting) > 1
    best = max(conducting, key=lambda lab: conductivity[lab]) if deflate else None

    def solve(g, span):
        s = _take(span, g)
        c = _take(cond, g)
        c = torch.where(s, c, torch.zeros_like(c)) if _is_tensor(c) else np.where(s, c, 0.0)
        clusters = None if best is None else face_connected_clusters((_take(labels, g) == best) & s)
        flux, ok, it = mgcg_solve(c, boundary_factor=1.0, harmonic=True, device=device, rtol=rtol,
                                  conv_crit=conv_crit, iter_limit=iter_limit, dtype=dtype,
                                  deflation_clusters=clusters, **mg_options)
        d = flux * (X + 1) / (Y * Z) * scale
        return _ratio(d_mean[g], d), d, ok, it

    return _drive(cond > 0, solve, batch)
