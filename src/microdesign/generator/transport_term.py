"""Transport term of generator training: through-plane conductance of the pore and of the solid.

A slice critic judges 2D sections, and the phase-fraction and interface terms first- and second-order
statistics; none of them sees how the pore and the solid connect in 3D, which sets the pore tortuosity
factor and the solid conductivity the cell model reads. This term compares the through-plane effective
conductance of a generated cube's pore and solid with those of the training volumes at the same
conditioning labels.

**Differentiable conductance.** The potential problem is solved without gradients by the characterisation's
multigrid-preconditioned CG (:func:`microdesign.characterise.mgcg.mgcg_solve`); the Joule power of that
potential with the conductances carrying gradients (:func:`microdesign.characterise.mgcg.joule_power`) is
the effective conductance, and by the Dirichlet principle its derivative with respect to each face
conductance is that face's squared potential drop: the gradient is exact at the solution (an adjoint
solve is not needed). It is largest at the throats, so the term widens the narrowest pore throats (or
contacts of the solid) first.

**Phases.** Each voxel of phase ``k`` conducts 1 and every other voxel ``floor`` (1e-3: a finite
conductance everywhere keeps the potential, and so the gradient, defined in every voxel, and changes a
pore conductance of ~0.1–0.4 by under 1 %; targets and generated cubes are measured the same way).
The generated labels are those the campaign samples (the design's phase fractions, ranked by the
network's pore margins: :func:`microdesign.generator.sampler.label_with_counts`), with the gradient of
a soft pore indicator centred on the labelling's own threshold (:func:`soft_pore`; straight-through
estimator, Bengio et al., arXiv:1308.3432). The network's softmax would not do: it is centred on a
margin of 0, not on the threshold the design's porosity sets, and a trained network's margins are
tens of logits, so its float32 softmax is exactly 0 or 1 in about half of the voxels.

**Targets.** The training volumes' log conductances scatter from volume to volume (a 64³ volume holds a
few particles), so each generated cube is compared with a least-squares polynomial in the normalised
conditioning labels fitted over all training volumes (:class:`TransportTargets`), not with the one
volume it was conditioned on: the term corrects a bias of the generator at a design without asking each
cube to match one noisy sample.
"""

from __future__ import annotations

import logging
from itertools import combinations_with_replacement

import numpy as np

logger = logging.getLogger(__name__)

#: Conductance of the voxels of the other phases, relative to the conducting phase.
FLOOR = 1e-3
#: Width [logits] of the soft pore indicator that carries the straight-through gradient (the shipped
#: network's pore margins: median magnitude 18 logits, so about a third of the voxels lie within 4 widths
#: of the threshold).
SOFT_WIDTH = 5.0
#: Names of the two conductances, in column order.
COLUMNS = ("pore", "solid")


def phase_conductances(hard_pore, soft_pore=None, floor: float = FLOOR):
    """Voxel conductances of the pore and of the solid (AM + CBD) for ``B`` cubes: ``2B x X x Y x Z``.

    Args:
        hard_pore: ``B x X x Y x Z`` pore indicator (1 pore, 0 solid), torch tensor.
        soft_pore: optional ``B x X x Y x Z`` pore probability carrying gradients; its gradient replaces
            that of ``hard_pore`` (straight-through), the values stay ``hard_pore``'s.
        floor: conductance of the non-conducting voxels (relative).

    Returns:
        The first ``B`` cubes conduct through the pore, the last ``B`` through the solid.
    """
    import torch

    pore = hard_pore if soft_pore is None else hard_pore + soft_pore - soft_pore.detach()
    return floor + (1.0 - floor) * torch.cat([pore, 1.0 - pore])


def soft_pore(logits, hard_pore, width: float = SOFT_WIDTH):
    """Soft pore indicator ``sigmoid((margin - threshold) / width)`` of ``b`` generated cubes.

    Args:
        logits: ``b x 3 x X x Y x Z`` network scores (pore first), carrying gradients.
        hard_pore: ``b x X x Y x Z`` the pore labels (1 pore), the voxels of largest pore margin
            ``logits[pore] - max(logits[solid phases])`` (:func:`~microdesign.generator.sampler.label_with_counts`).
        width: logit scale of the rise: the indicator is 0.27 and 0.73 one ``width`` below and above the
            threshold.

    Returns:
        ``b x X x Y x Z``; the threshold is midway between the smallest pore margin and the largest
        solid margin of each cube, so the indicator is 0.5 on the labelling's boundary.
    """
    import torch

    margin = logits[:, 0] - logits[:, 1:].max(1).values
    m = margin.detach().flatten(1)
    h = hard_pore.flatten(1) > 0.5
    inf = torch.tensor(float("inf"), dtype=m.dtype, device=m.device)
    lowest_pore = torch.where(h, m, inf).min(1).values
    highest_solid = torch.where(h, -inf, m).max(1).values
    mid = (lowest_pore + highest_solid) / 2  # not finite when a cube is all pore or all solid
    thr = torch.where(torch.isfinite(mid), mid, torch.where(torch.isfinite(lowest_pore), lowest_pore, highest_solid))
    return torch.sigmoid((margin - thr.reshape(-1, *([1] * (margin.ndim - 1)))) / width)


def log_conductance(conductance, rtol: float = 1e-3, iter_limit: int = 400):
    """Natural log of the through-plane (axis 0) effective conductance of each cube, differentiable.

    Args:
        conductance: ``n x X x Y x Z`` voxel conductances (all > 0), torch tensor, may carry gradients;
            solved in float64 if it is float64, else in float32.
        rtol, iter_limit: the potential solve's tolerance on the conductance and its iteration cap
            (:func:`microdesign.characterise.mgcg.mgcg_solve`, energy criterion).

    Returns:
        ``n`` tensor (float32, or float64 for float64 conductances): log of the Joule power for a unit potential difference (the current
        through the cube; faces with TauFactor ``MultiPhaseSolver``'s discretisation, harmonic means).
    """
    import torch

    from microdesign.characterise.mgcg import face_conductances, joule_power, mgcg_solve

    with torch.no_grad():
        dtype = "float64" if conductance.dtype == torch.float64 else "float32"
        _, converged, _, potential = mgcg_solve(conductance.detach(), boundary_factor=1.0, harmonic=True,
                                                device=str(conductance.device), rtol=rtol, iter_limit=iter_limit,
                                                dtype=dtype, return_potential=True)
    if not converged.all():  # the power is then too high and the gradient inexact: say so
        logger.warning("transport term: %d of %d potential solves stopped at iter_limit=%d before rtol=%g",
                       int((~converged).sum()), converged.size, iter_limit, rtol)
    gx, gy, gz = face_conductances(conductance, 1.0, harmonic=True)
    power = joule_power(gx, gy, gz, potential.to(conductance.dtype))
    return torch.log(power).to(conductance.dtype if conductance.dtype == torch.float64 else torch.float32)


def labels_log_conductance(labels: np.ndarray, batch: int = 8) -> np.ndarray:
    """Log conductances (pore, solid) of labelled volumes (0 pore, 1 AM, 2 CBD): ``n x 2``.

    Args:
        labels: ``n x X x Y x Z`` integer labels, or a list of such volumes of one shape.
        batch: volumes per solve.
    """
    import torch

    labels = np.asarray(labels)
    out = []
    for i in range(0, len(labels), batch):
        hard = torch.as_tensor(labels[i:i + batch] == 0, dtype=torch.float32)
        out.append(log_conductance(phase_conductances(hard)).reshape(2, -1).T.numpy())
    return np.concatenate(out).astype(np.float64)


def _features(cond: np.ndarray, degree: int) -> np.ndarray:
    """Monomials up to ``degree`` of the columns of ``cond`` (``n x d``), the constant first."""
    cols = [np.ones(len(cond))]
    for k in range(1, degree + 1):
        for combo in combinations_with_replacement(range(cond.shape[1]), k):
            cols.append(np.prod(cond[:, list(combo)], axis=1))
    return np.stack(cols, axis=1)


class TransportTargets:
    """Least-squares polynomial of the training volumes' log conductances in their normalised labels.

    Args:
        cond: ``n x d`` normalised conditioning labels of the training volumes.
        values: ``n x 2`` log conductances (pore, solid) of the same volumes (:func:`labels_log_conductance`).
        degree: polynomial degree (3: 20 coefficients for 3 labels).

    Attributes:
        residual_std: ``2``, standard deviation of the volumes about the fit (their own scatter).
        r2: ``2``, share of the variance the fit explains.

    Raises:
        ValueError: fewer volumes than coefficients, or shapes that disagree.
    """

    def __init__(self, cond: np.ndarray, values: np.ndarray, degree: int = 3):
        cond, values = np.asarray(cond, dtype=np.float64), np.asarray(values, dtype=np.float64)
        if values.shape != (len(cond), len(COLUMNS)):
            raise ValueError(f"TransportTargets: values of shape {values.shape}, expected {(len(cond), len(COLUMNS))}")
        phi = _features(cond, degree)
        if len(cond) < phi.shape[1]:
            raise ValueError(f"TransportTargets: {len(cond)} training volumes for {phi.shape[1]} coefficients "
                             f"(degree {degree}); expected at least as many volumes")
        self.degree = degree
        self.coef, *_ = np.linalg.lstsq(phi, values, rcond=None)
        resid = values - phi @ self.coef
        self.residual_std = resid.std(0)
        self.r2 = 1.0 - resid.var(0) / values.var(0).clip(1e-30)

    def predict(self, cond: np.ndarray) -> np.ndarray:
        """Fitted log conductances (pore, solid) at normalised labels ``cond`` (``m x d``): ``m x 2``."""
        return _features(np.asarray(cond, dtype=np.float64), self.degree) @ self.coef
