"""Steady-state transport solves on voxel cubes: pore tortuosity factor and solid conductivity.

Two interchangeable back-ends solve the *same* finite-volume problem (flux along axis 0, Dirichlet
potentials -0.5 / +0.5 on the two faces normal to axis 0, no flux on the four others):

* ``"taufactor"`` -- TauFactor's SOR solvers (Kench & Cooper, SoftwareX 2023 / JOSS 2023):
  :class:`taufactor.Solver` for a binary phase, :class:`taufactor.MultiPhaseSolver` for several
  conducting phases. Their printing is silenced and their result checked for inf / NaN / negative.
* ``"mgcg"`` -- our matrix-free conjugate gradient preconditioned by a geometric aggregation
  multigrid V-cycle (Galerkin coarse operators from summed face conductances, damped Jacobi
  smoothing), written in torch so that it runs batched on a GPU and unchanged on a CPU. It
  reproduces TauFactor's discretisation exactly, face by face:

  - binary (``Solver``): unit conductance between two conducting voxels, conductance 2 between a
    boundary voxel and its Dirichlet face (half a voxel away); transport length ``Nx``;
    ``tau = eps / D_rel`` with ``D_rel = mean layer flux * Nx / (Ny * Nz)``.
  - multi-phase (``MultiPhaseSolver``): face conductance ``1 / (0.5/c_i + 0.5/c_j)`` (harmonic),
    a boundary voxel couples to a ghost of its own conductivity one voxel away; transport length
    ``Nx + 1``; ``D_eff = mean layer flux * (Nx + 1) / (Ny * Nz)``.

  Only the voxels of the cluster(s) spanning axis 0 (6-connectivity, as TauFactor's
  ``extract_through_feature``) carry flux; others are dropped before the solve, which does not
  change the flux and removes the singular floating clusters.

The preconditioned CG is standard (Saad, *Iterative Methods for Sparse Linear Systems*, 2nd ed.,
alg. 9.1); plain-aggregation multigrid as a CG preconditioner follows Notay (ETNA 37, 2010).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from microdesign.errors import ConfigError

log = logging.getLogger(__name__)

#: Voltage difference across the cube used by both back-ends (TauFactor's -0.5 / +0.5).
_V_TOP, _V_BOT = -0.5, 0.5


@dataclass(frozen=True)
class TransportResult:
    """Per-cube result of one transport solve over ``n`` cubes.

    Attributes:
        tau: tortuosity factor per cube, shape ``n`` (binary: ``eps / D_rel``; multi-phase:
            ``D_mean / D_eff``); NaN where the phase does not percolate.
        d_eff: effective transport coefficient per cube, shape ``n``, in the units of the
            conductivities given (binary: relative diffusivity ``D_eff / D_0``).
        percolating: whether the conducting phase spans axis 0, shape ``n``.
        converged: whether the solver met its criterion within its iteration limit, shape ``n``.
        iterations: iterations used per cube, shape ``n``.
    """

    tau: np.ndarray
    d_eff: np.ndarray
    percolating: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


# --------------------------------------------------------------------------------------- helpers
def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available else ``"cpu"``; ``"cpu"``/``"cuda[:i]"`` pass through.

    Raises:
        ConfigError: unknown device string, or ``cuda`` requested but unavailable.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if isinstance(device, str) and device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device", device, "'auto' or 'cpu' (no CUDA device is available)")
        return device
    raise ConfigError("device", device, "one of 'auto', 'cpu', 'cuda', 'cuda:<i>'")


def spanning_mask(mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Voxels of the clusters of ``mask`` that touch both faces normal to ``axis``.

    Args:
        mask: boolean volume ``X x Y x Z``.
        axis: transport axis.

    Returns:
        Boolean volume ``X x Y x Z`` (all False when the phase does not percolate).
        Connectivity: 6 (faces), as TauFactor's ``extract_through_feature(..., connectivity=1)``.
    """
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    first = np.unique(np.take(labels, 0, axis=axis))
    last = np.unique(np.take(labels, -1, axis=axis))
    through = np.intersect1d(first, last)
    through = through[through != 0]
    if through.size == 0:
        return np.zeros_like(mask, dtype=bool)
    return np.isin(labels, through)


@contextlib.contextmanager
def quiet():
    """Silence TauFactor's ``print`` output and warnings (library code logs, never prints)."""
    import warnings

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


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


# --------------------------------------------------------------------------------- TauFactor back-end
def taufactor_tortuosity(masks: np.ndarray, device: str = "cpu", conv_crit: float = 1e-2,
                         iter_limit: int = 20000, batch: bool = False) -> TransportResult:
    """Pore tortuosity factor along axis 0 with :class:`taufactor.Solver`.

    Args:
        masks: conducting-phase masks ``n x X x Y x Z`` (bool / 0-1).
        device: ``"cpu"`` or ``"cuda[:i]"``.
        conv_crit: TauFactor's convergence criterion (relative spread of layer fluxes).
        iter_limit: TauFactor iteration limit.
        batch: solve all cubes in one batched call (pays on a GPU, not on a CPU).

    Returns:
        :class:`TransportResult`; non-percolating cubes have ``percolating=False`` and NaN tau.
    """
    import taufactor as tf

    masks = np.asarray(masks).astype(np.uint8)
    n = masks.shape[0]
    perc = np.array([spanning_mask(m.astype(bool)).any() for m in masks])
    tau = np.full(n, np.nan)
    d_eff = np.zeros(n)
    conv = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    idx = np.flatnonzero(perc)
    groups = [idx] if batch and idx.size else [[i] for i in idx]
    for g in groups:
        g = np.asarray(g)
        with quiet():
            s = tf.Solver(masks[g], device=device)
            s.solve(iter_limit=iter_limit, conv_crit=conv_crit, verbose=False)
        t = np.atleast_1d(np.asarray(s.tau, dtype=np.float64))
        d = np.atleast_1d(np.asarray(s.D_rel, dtype=np.float64))
        ok = _finite_positive(t) & _finite_positive(d)
        tau[g] = np.where(ok, t, np.nan)
        d_eff[g] = np.where(ok, d, 0.0)
        perc[g] &= ok
        conv[g] = bool(s.converged)
        iters[g] = int(s.iter)
    return TransportResult(tau, d_eff, perc, conv, iters)


def taufactor_conductivity(labels: np.ndarray, conductivity: dict[int, float], device: str = "cpu",
                           conv_crit: float = 1e-2, iter_limit: int = 20000) -> TransportResult:
    """Effective conductivity along axis 0 with :class:`taufactor.MultiPhaseSolver` (one cube at a time).

    Args:
        labels: label volumes ``n x X x Y x Z``; labels absent from ``conductivity`` insulate.
        conductivity: label -> bulk conductivity [S.m-1] (label 0 not allowed, TauFactor's rule).
        device, conv_crit, iter_limit: as :func:`taufactor_tortuosity`.

    Returns:
        :class:`TransportResult` with ``d_eff`` in [S.m-1].
    """
    import taufactor as tf

    labels = np.asarray(labels)
    n = labels.shape[0]
    conducting = np.isin(labels, list(conductivity))
    perc = np.array([spanning_mask(m).any() for m in conducting])
    tau = np.full(n, np.nan)
    d_eff = np.zeros(n)
    conv = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(perc):
        img = np.where(conducting[i], labels[i], 0).astype(np.uint8)
        with quiet():
            s = tf.MultiPhaseSolver(img, cond=dict(conductivity), device=device)
            s.solve(iter_limit=iter_limit, conv_crit=conv_crit, verbose=False)
        t = float(np.atleast_1d(s.tau)[0])
        d = float(np.atleast_1d(s.D_eff)[0])
        ok = bool(_finite_positive(np.array([t, d])).all())
        tau[i] = t if ok else np.nan
        d_eff[i] = d if ok else 0.0
        perc[i] = ok
        conv[i] = bool(s.converged)
        iters[i] = int(s.iter)
    return TransportResult(tau, d_eff, perc, conv, iters)


# ------------------------------------------------------------------------- multigrid-CG back-end
class _Level:
    """Face conductances of one grid level (torch tensors, batch first).

    ``gx``: ``B x (X+1) x Y x Z`` (faces normal to axis 0, including both Dirichlet faces);
    ``gy``: ``B x X x (Y-1) x Z``; ``gz``: ``B x X x Y x (Z-1)`` (interior faces only: no flux).
    """

    def __init__(self, gx, gy, gz):
        self.gx, self.gy, self.gz = gx, gy, gz
        diag = gx[:, :-1] + gx[:, 1:]
        diag = diag.clone()
        diag[:, :, :-1] += gy
        diag[:, :, 1:] += gy
        diag[:, :, :, :-1] += gz
        diag[:, :, :, 1:] += gz
        self.diag = diag
        self.inv_diag = (diag > 0) * (1.0 / diag.clamp_min(1e-30))

    def apply(self, x):
        """Matrix-vector product ``A x`` (homogeneous Dirichlet on the axis-0 faces).

        ``A x = diag * x - sum_neighbours g * x_neighbour``, fused multiply-adds in place.
        """
        out = self.diag * x
        gxi = self.gx[:, 1:-1]
        out[:, 1:].addcmul_(gxi, x[:, :-1], value=-1.0)
        out[:, :-1].addcmul_(gxi, x[:, 1:], value=-1.0)
        out[:, :, 1:].addcmul_(self.gy, x[:, :, :-1], value=-1.0)
        out[:, :, :-1].addcmul_(self.gy, x[:, :, 1:], value=-1.0)
        out[:, :, :, 1:].addcmul_(self.gz, x[:, :, :, :-1], value=-1.0)
        out[:, :, :, :-1].addcmul_(self.gz, x[:, :, :, 1:], value=-1.0)
        return out

    def coarsen(self, scale: float = 1.0) -> _Level:
        """Galerkin operator ``P^T A P`` for piecewise-constant aggregation of 2 x 2 x 2 blocks."""
        import torch
        import torch.nn.functional as F

        B, X, Y, Z = self.diag.shape
        px, py, pz = X % 2, Y % 2, Z % 2
        gx = self.gx
        if px:  # a zero face before the Dirichlet face keeps that face on the coarse boundary
            gx = torch.cat([gx[:, :X], torch.zeros_like(gx[:, :1]), gx[:, X:]], dim=1)
        gx = F.pad(gx, (0, pz, 0, py))
        gy = F.pad(self.gy, (0, pz, 0, py, 0, px))
        gz = F.pad(self.gz, (0, pz, 0, py, 0, px))
        Xc, Yc, Zc = (X + px) // 2, (Y + py) // 2, (Z + pz) // 2
        # x faces: coarse face F <- fine face 2F, summed over the 2 x 2 (y, z) block
        gxc = gx[:, ::2].reshape(B, Xc + 1, Yc, 2, Zc, 2).sum((3, 5))
        # y faces: coarse interior face F (between cells F-1 and F) <- fine interior face 2F - 1
        gyc = gy[:, :, 1::2].reshape(B, Xc, 2, Yc - 1, Zc, 2).sum((2, 5))
        gzc = gz[:, :, :, 1::2].reshape(B, Xc, 2, Yc, 2, Zc - 1).sum((2, 4))
        return _Level(scale * gxc, scale * gyc, scale * gzc)


def _restrict(r, shape_c):
    import torch.nn.functional as F

    B, X, Y, Z = r.shape
    r = F.pad(r, (0, Z % 2, 0, Y % 2, 0, X % 2))
    Xc, Yc, Zc = shape_c
    return r.reshape(B, Xc, 2, Yc, 2, Zc, 2).sum((2, 4, 6))


def _prolong(e, shape_f):
    B, Xc, Yc, Zc = e.shape
    X, Y, Z = shape_f
    f = e[:, :, None, :, None, :, None].expand(B, Xc, 2, Yc, 2, Zc, 2).reshape(B, 2 * Xc, 2 * Yc, 2 * Zc)
    return f[:, :X, :Y, :Z]


class _MultigridPreconditioner:
    """Symmetric V-cycle: ``nu`` damped-Jacobi sweeps before and after, aggregation coarsening."""

    def __init__(self, fine: _Level, nu: int = 2, omega: float = 0.7, coarsest: int = 2,
                 coarse_sweeps: int = 30, coarse_scale: float = 0.5):
        self.levels = [fine]
        while min(self.levels[-1].diag.shape[1:]) > coarsest:
            self.levels.append(self.levels[-1].coarsen(coarse_scale))
        self.nu, self.omega, self.coarse_sweeps = nu, omega, coarse_sweeps
        self._weights = {id(lvl): omega * lvl.inv_diag for lvl in self.levels}

    def _smooth(self, lvl: _Level, x, b, sweeps):
        w = self._weights[id(lvl)]
        for _ in range(sweeps):
            if x is None:
                x = w * b
            else:
                r = lvl.apply(x)
                torch_sub = r.neg_().add_(b)  # b - A x, in place
                x.addcmul_(w, torch_sub)
        return x

    def _vcycle(self, k: int, b):
        lvl = self.levels[k]
        if k == len(self.levels) - 1:
            return self._smooth(lvl, None, b, self.coarse_sweeps)
        x = self._smooth(lvl, None, b, self.nu)
        r = b - lvl.apply(x)
        coarse = self.levels[k + 1]
        e = self._vcycle(k + 1, _restrict(r, coarse.diag.shape[1:]))
        x += _prolong(e, lvl.diag.shape[1:])
        return self._smooth(lvl, x, b, self.nu)

    def __call__(self, r):
        return self._vcycle(0, r)


def _layer_flux(level: _Level, x, v_top: float, v_bot: float):
    """Flux through every x-face (including the two Dirichlet faces), summed over y, z: ``B x (X+1)``."""
    import torch

    B, X, Y, Z = x.shape
    top = torch.full((B, 1, Y, Z), v_top, dtype=x.dtype, device=x.device)
    bot = torch.full((B, 1, Y, Z), v_bot, dtype=x.dtype, device=x.device)
    xp = torch.cat([top, x, bot], dim=1)
    return (level.gx * (xp[:, 1:] - xp[:, :-1])).sum((2, 3))


def _energy(level: _Level, x, v_top: float, v_bot: float):
    """Joule power ``sum_faces g (dphi)^2`` of the potential ``x`` with the Dirichlet faces, float64 sums: ``B``."""
    import torch

    B, X, Y, Z = x.shape
    top = torch.full((B, 1, Y, Z), v_top, dtype=x.dtype, device=x.device)
    bot = torch.full((B, 1, Y, Z), v_bot, dtype=x.dtype, device=x.device)
    xp = torch.cat([top, x, bot], dim=1)
    e = (level.gx * (xp[:, 1:] - xp[:, :-1]).square()).sum((1, 2, 3), dtype=torch.float64)
    e += (level.gy * (x[:, :, 1:] - x[:, :, :-1]).square()).sum((1, 2, 3), dtype=torch.float64)
    e += (level.gz * (x[:, :, :, 1:] - x[:, :, :, :-1]).square()).sum((1, 2, 3), dtype=torch.float64)
    return e


def mgcg_solve(conductance: np.ndarray, boundary_factor: float, harmonic: bool = True,
               device: str = "cpu", rtol: float = 1e-4, conv_crit: float = 1e-2,
               iter_limit: int = 500, dtype: str = "float32", criterion: str = "energy", nu: int = 2,
               omega: float = 0.7, coarse_scale: float = 0.5):
    """Solve the axis-0 potential problem on ``n`` voxel-conductivity cubes with MG-preconditioned CG.

    The effective conductance is read from the energy (Joule power) of the iterate,
    ``E(x) = sum_faces g (dphi)^2``, which for unit potential difference equals the
    total current at the solution and exceeds it by exactly ``||x - x*||_A^2`` elsewhere (Dirichlet
    principle): its error is *quadratic* in the solution error, and CG decreases it monotonically
    (CG minimises the A-norm error over its Krylov space; Hestenes & Stiefel, J. Res. NBS 49, 1952).
    TauFactor instead reads the mean of the layer fluxes, whose error is linear. Each CG step lowers
    the energy by exactly ``alpha_k r_k.z_k``, which the energy criterion watches (no cancellation);
    the returned value is the energy summed directly over the faces in float64.

    Args:
        conductance: per-voxel conductivity ``n x X x Y x Z`` (0 = insulating); voxels off the
            spanning network must already be zero.
        boundary_factor: boundary-face conductance over the boundary voxel's conductivity
            (2 for TauFactor's ``Solver``, 1 for its ``MultiPhaseSolver``).
        harmonic: face conductance from the harmonic mean of the two voxels (``MultiPhaseSolver``);
            otherwise the minimum (identical for 0/1 conductivities).
        device: torch device.
        rtol: ``criterion="energy"``: stop when the estimated remaining energy error, the geometric
            tail ``drop_k q / (1 - q)`` of the per-step drops with ``q = drop_k / drop_{k-1}``, is below
            ``rtol`` relative -- the relative error of the result (an upper bound of the conductance);
            ``criterion="flux"``: preconditioned-residual reduction required besides the flux spread.
        conv_crit: ``criterion="flux"``: TauFactor's layer-flux spread ``(max - min) / max``.
        iter_limit: CG iteration cap.
        dtype: ``"float32"`` (TauFactor's default precision) or ``"float64"``.
        criterion: ``"energy"`` (default; result from the energy) or ``"flux"`` (TauFactor's
            criterion and estimate, the mean layer flux).
        nu, omega, coarse_scale: V-cycle damped-Jacobi sweeps and damping, and the factor on the
            aggregated coarse operators (0.5 makes a 2^3 aggregate's operator match a
            re-discretisation on the coarse grid; Braess, Computing 54 (1995) 381 over-correction).

    Returns:
        ``(mean_flux, converged, iterations)``: arrays of shape ``n``; ``mean_flux`` is the current
        through the cube for a unit potential difference (the mean axis-0 face flux).
    """
    import torch

    if criterion not in ("energy", "flux"):
        raise ConfigError("criterion", criterion, "'energy' or 'flux'")
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    c = torch.as_tensor(np.asarray(conductance), dtype=tdt, device=device)
    if c.ndim == 3:
        c = c[None]

    def face(a, b):
        if harmonic:
            s = a + b
            return torch.where((a > 0) & (b > 0), 2 * a * b / s.clamp_min(1e-30), torch.zeros_like(s))
        return torch.minimum(a, b)

    gx_int = face(c[:, 1:], c[:, :-1])
    gx = torch.cat([boundary_factor * c[:, :1], gx_int, boundary_factor * c[:, -1:]], dim=1)
    gy = face(c[:, :, 1:], c[:, :, :-1])
    gz = face(c[:, :, :, 1:], c[:, :, :, :-1])
    fine = _Level(gx, gy, gz)
    B, X, Y, Z = c.shape
    dv = _V_BOT - _V_TOP
    # right-hand side from the Dirichlet faces, and the boundary part of the energy
    b = torch.zeros_like(c)
    b[:, 0] += gx[:, 0] * _V_TOP
    b[:, -1] += gx[:, -1] * _V_BOT
    active = fine.diag > 0
    # initial guess: linear profile, as TauFactor
    prof = torch.linspace(_V_TOP, _V_BOT, X + 2, dtype=tdt, device=device)[1:-1]
    x = prof[None, :, None, None].expand(B, X, Y, Z) * active
    M = _MultigridPreconditioner(fine, nu=nu, omega=omega, coarse_scale=coarse_scale)

    def dot(u, v):
        return (u * v).sum((1, 2, 3), dtype=torch.float64).to(tdt)

    r = b - fine.apply(x)
    z = M(r)
    p = z.clone()
    rz = dot(r, z)
    rz0 = rz.clone().abs().clamp_min(1e-300)
    e_est = _energy(fine, x, _V_TOP, _V_BOT)
    prev_drop = torch.zeros_like(e_est)  # first step: q -> 0.99 (no rate known yet)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    iters = torch.zeros(B, dtype=torch.int64, device=device)
    for _ in range(iter_limit):
        Ap = fine.apply(p)
        pAp = dot(p, Ap)
        alpha = torch.where(done | (pAp <= 0), torch.zeros_like(rz), rz / pAp.clamp_min(1e-300))
        a4 = alpha.to(x.dtype)[:, None, None, None]
        x.addcmul_(a4, p)
        r.addcmul_(a4, Ap, value=-1.0)
        iters += (~done).to(torch.int64)
        if criterion == "energy":
            drop = (alpha * rz).double().abs()  # exact energy decrease of this CG step
            e_est = e_est - drop
            # remaining energy error ~ geometric tail of the drops: drop * q / (1 - q), q = drop ratio
            q = (drop / prev_drop.clamp_min(1e-300)).clamp(0.0, 0.99)
            prev_drop = drop
            small = drop * q / (1 - q) <= rtol * e_est.abs()
            if bool((small & ~done).any()):  # guard against CG plateaus: layer fluxes must agree too
                fl = _layer_flux(fine, x, _V_TOP, _V_BOT)
                spread = (fl.max(1).values - fl.min(1).values) / fl.max(1).values.abs().clamp_min(1e-300)
                done = done | (small & (spread < conv_crit))
        if bool(done.all()):
            break
        z = M(r)
        rz_new = dot(r, z)
        if criterion == "flux":
            small = (rz_new.abs() / rz0).sqrt() < rtol
            if bool(small.any()):
                fl = _layer_flux(fine, x, _V_TOP, _V_BOT)
                spread = (fl.max(1).values - fl.min(1).values) / fl.max(1).values.abs().clamp_min(1e-300)
                done = done | (small & (spread < conv_crit))
                if bool(done.all()):
                    break
        beta = torch.where(done, torch.zeros_like(rz), rz_new / rz.clamp_min(1e-300))
        p = p.mul_(beta.to(p.dtype)[:, None, None, None]).add_(z)
        rz = rz_new
    if criterion == "energy":
        mean_flux = _energy(fine, x, _V_TOP, _V_BOT) / dv**2
    else:
        mean_flux = _layer_flux(fine, x, _V_TOP, _V_BOT).mean(1).double() / dv
    return mean_flux.cpu().numpy(), done.cpu().numpy(), iters.cpu().numpy()


def mgcg_tortuosity(masks: np.ndarray, device: str = "cpu", rtol: float = 1e-4, conv_crit: float = 1e-2,
                    iter_limit: int = 500, batch: bool = False, dtype: str = "float32",
                    **mg_options) -> TransportResult:
    """Pore tortuosity factor along axis 0 with the MG-CG solver, TauFactor ``Solver`` discretisation.

    Args and returns as :func:`taufactor_tortuosity`; ``rtol`` as :func:`mgcg_solve`.
    """
    masks = np.asarray(masks).astype(bool)
    n, X, Y, Z = masks.shape
    eps = masks.reshape(n, -1).mean(1)
    span = np.stack([spanning_mask(m) for m in masks])
    perc = span.reshape(n, -1).any(1)
    tau = np.full(n, np.nan)
    d_rel = np.zeros(n)
    conv = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    idx = np.flatnonzero(perc)
    groups = [idx] if batch and idx.size else [[i] for i in idx]
    for g in groups:
        g = np.asarray(g)
        flux, ok, it = mgcg_solve(span[g].astype(np.float32), boundary_factor=2.0, harmonic=False,
                                  device=device, rtol=rtol, conv_crit=conv_crit, iter_limit=iter_limit,
                                  dtype=dtype, **mg_options)
        d = flux * X / (Y * Z)
        good = _finite_positive(d)
        d_rel[g] = np.where(good, d, 0.0)
        tau[g] = np.where(good, eps[g] / np.where(good, d, 1.0), np.nan)
        perc[g] &= good
        conv[g], iters[g] = ok, it
    return TransportResult(tau, d_rel, perc, conv, iters)


def mgcg_conductivity(labels: np.ndarray, conductivity: dict[int, float], device: str = "cpu",
                      rtol: float = 1e-4, conv_crit: float = 1e-2, iter_limit: int = 500,
                      batch: bool = False, dtype: str = "float32", **mg_options) -> TransportResult:
    """Effective conductivity along axis 0 with the MG-CG solver, TauFactor ``MultiPhaseSolver`` discretisation.

    The problem is scaled by the largest bulk conductivity before the solve (float32 range) and
    the flux scaled back. Args and returns as :func:`taufactor_conductivity`.
    """
    labels = np.asarray(labels)
    n, X, Y, Z = labels.shape
    scale = max(conductivity.values())
    cmap = np.zeros(256, dtype=np.float64)
    for lab, c in conductivity.items():
        cmap[int(lab)] = c / scale
    cond = cmap[labels]
    span = np.stack([spanning_mask(c > 0) for c in cond])
    cond = np.where(span, cond, 0.0)
    perc = span.reshape(n, -1).any(1)
    vf = {lab: (labels == lab).reshape(n, -1).mean(1) for lab in conductivity}
    d_mean = sum(vf[lab] * conductivity[lab] for lab in conductivity)
    tau = np.full(n, np.nan)
    d_eff = np.zeros(n)
    conv = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    idx = np.flatnonzero(perc)
    groups = [idx] if batch and idx.size else [[i] for i in idx]
    for g in groups:
        g = np.asarray(g)
        flux, ok, it = mgcg_solve(cond[g], boundary_factor=1.0, harmonic=True, device=device, rtol=rtol,
                                  conv_crit=conv_crit, iter_limit=iter_limit, dtype=dtype, **mg_options)
        d = flux * (X + 1) / (Y * Z) * scale
        good = _finite_positive(d)
        d_eff[g] = np.where(good, d, 0.0)
        tau[g] = np.where(good, d_mean[g] / np.where(good, d, 1.0), np.nan)
        perc[g] &= good
        conv[g], iters[g] = ok, it
    return TransportResult(tau, d_eff, perc, conv, iters)


def check_positive(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite positive number."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(name, value, "a finite positive number")
