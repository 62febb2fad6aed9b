"""Percolation: the voxels of a phase's clusters that span the cube along the transport axis.

Connectivity is 6 (voxels sharing a face), as TauFactor's ``extract_through_feature(...,
connectivity=1)``. Two implementations with identical results:

* :func:`spanning_mask` -- one cube on the host, ``scipy.ndimage.label`` (default 6-connected
  structure) and the labels present on both faces normal to the axis. Used on a CPU.
* :func:`spanning_masks_torch` -- a batch of cubes as a torch tensor, on the tensor's device (the
  GPU path, where a host round trip per cube would dominate): flood fill from the inlet face, then
  from the outlet face inside what the first fill reached. Each fill step propagates along whole
  straight runs of the phase in each of the three axes at once (a run is reached when any of its
  voxels is: a forward and a backward ``cummax`` over position codes), so the number of steps is the
  number of turns of the longest shortest path, not its length; steps repeat until the reached set
  stops growing.

Cluster labelling, for the deflated conductivity solve, has the same two paths:
:func:`face_connected_clusters` (scipy on the host) and :func:`face_connected_clusters_torch` (run
maxima of voxel numbers on the device, the same clusters numbered in another order).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def spanning_mask(mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Voxels of the clusters of ``mask`` that touch both faces normal to ``axis`` (host, scipy).

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


def face_connected_clusters(masks):
    """Face-connected (6-connected) clusters of each cube of ``masks``: scipy on the host for a numpy
    array or a CPU tensor, torch (:func:`face_connected_clusters_torch`, on the device) for a tensor on
    another device (where a host round trip would cost more; on a CPU scipy is far faster).

    Args:
        masks: boolean ``n x X x Y x Z`` numpy array or torch tensor.

    Returns:
        Labels ``n x X x Y x Z`` of the same type (int32 numpy array, or int32 tensor on the masks'
        device): 0 outside the mask, ``1..k`` the clusters of each cube, numbered from 1 in every cube.
        The host numbers clusters in raster order of their first voxel (``scipy.ndimage.label``, default
        structure), the torch path in order of their last voxel: the same clusters, numbered differently.
    """
    import torch

    if torch.is_tensor(masks) and masks.device.type != "cpu":
        return face_connected_clusters_torch(masks)
    m = masks.numpy() if torch.is_tensor(masks) else np.asarray(masks)
    m = m.astype(bool, copy=False)
    out = np.zeros(m.shape, dtype=np.int32)
    for i in range(m.shape[0]):
        ndimage.label(m[i], output=out[i])
    return torch.from_numpy(out) if torch.is_tensor(masks) else out


def _run_max(labels, phase, dim: int, base: int):
    """The largest of ``labels`` (each in ``0..base - 1``) over each straight run of ``phase`` along
    ``dim`` (0 outside ``phase``).

    A run's voxels share the count of blockers (voxels not in ``phase``) before them, which only grows
    along ``dim``; with that count in the high digits of a key and the label in the low ones, a running
    maximum of the key never carries a label across a blocker. Forward and backward (counting from
    the far end) give the maximum over the whole run.
    """
    import torch

    out = labels
    for backward in (False, True):
        lab = labels.flip(dim) if backward else labels
        run = (~(phase.flip(dim) if backward else phase)).to(torch.int64).cumsum(dim)
        best = (run * base + lab).cummax(dim).values % base
        out = torch.maximum(out, best.flip(dim) if backward else best)
    return torch.where(phase, out, torch.zeros_like(out))


def face_connected_clusters_torch(masks):
    """Batched :func:`face_connected_clusters` on the masks' device (no host round trip).

    Every voxel of the mask starts with its own number (its flat index + 1); each step replaces it
    by the largest number along the straight runs of the mask through it, in each of the three axes
    (:func:`_run_max`), until nothing changes, so every cluster carries the number of its last voxel.
    Steps: about the number of turns of the longest path inside a cluster, as :func:`spanning_masks_torch`.
    The numbers are then made consecutive from 1 in each cube.

    Args:
        masks: torch tensor ``n x X x Y x Z`` (bool or 0/1), any device.

    Returns:
        int32 tensor ``n x X x Y x Z`` on the same device: 0 outside the mask, ``1..k`` the clusters of
        each cube, in order of their last voxel (raster order).
    """
    import torch

    phase = masks.bool()
    n = phase.shape[0]
    if phase.numel() == 0:
        return torch.zeros(phase.shape, dtype=torch.int32, device=phase.device)
    per_cube = phase[0].numel()
    flat = torch.arange(1, phase.numel() + 1, device=phase.device, dtype=torch.int64).reshape(phase.shape)
    labels = torch.where(phase, flat, torch.zeros_like(flat))
    while True:
        before = labels
        for dim in range(1, phase.ndim):
            labels = _run_max(labels, phase, dim, phase.numel() + 1)
        if torch.equal(labels, before):
            break
    # consecutive numbers per cube: a cluster's number lies in its cube's block of flat indices
    values, inverse = torch.unique(labels, return_inverse=True)
    inside = values > 0
    rank = torch.cumsum(inside.to(torch.int64), 0)
    cube = torch.div(values - 1, per_cube, rounding_mode="floor").clamp_min(0)
    counts = torch.bincount(cube[inside], minlength=n)
    first = torch.cumsum(counts, 0) - counts
    numbers = torch.where(inside, rank - first[cube], torch.zeros_like(rank))
    return numbers[inverse].to(torch.int32)


def _run_sweep(phase, reached, dim: int):
    """Extend ``reached`` to every straight run of ``phase`` along ``dim`` that it touches.

    Position codes: a blocker (not ``phase``) at position ``i`` is ``2 i``, a reached voxel
    ``2 i + 1``, anything else -2. The running maximum from one end is the most recent event; a voxel
    is reached from that side when that event is a reached voxel (odd code) -- no blocker in between.
    """
    import torch

    L = phase.shape[dim]
    dtype = torch.int16 if 2 * L + 1 < 2**15 else torch.int32
    shape = [1] * phase.ndim
    shape[dim] = L
    pos = torch.arange(L, device=phase.device, dtype=dtype).reshape(shape)
    neutral = torch.tensor(-2, dtype=dtype, device=phase.device)
    out = reached.clone()
    for p in (pos, (L - 1) - pos):  # forward, then backward (positions counted from the far end)
        code = torch.where(phase, torch.where(reached, 2 * p + 1, neutral), 2 * p)
        if p is not pos:
            code = code.flip(dim)
        last = code.cummax(dim).values
        if p is not pos:
            last = last.flip(dim)
        out |= (last & 1).bool()
    return out & phase


def _flood(phase, seed):
    """Voxels of ``phase`` 6-connected to ``seed`` (batched; repeats run sweeps until nothing changes)."""
    reached = seed & phase
    count = int(reached.sum())
    while True:
        for dim in range(1, phase.ndim):
            reached = _run_sweep(phase, reached, dim)
        new = int(reached.sum())
        if new == count:
            return reached
        count = new


def spanning_masks_torch(masks, axis: int = 0):
    """Batched :func:`spanning_mask` on the masks' device (identical result).

    Args:
        masks: torch tensor ``n x X x Y x Z`` (bool or 0/1), any device.
        axis: transport axis of each cube (0, 1 or 2; array axis ``axis + 1``).

    Returns:
        Boolean tensor ``n x X x Y x Z`` on the same device: the voxels of the clusters that touch
        both faces normal to ``axis`` (6-connectivity).
    """
    import torch

    phase = masks.bool()
    dim = axis + 1
    inlet = torch.zeros_like(phase)
    inlet.narrow(dim, 0, 1).fill_(True)
    outlet = torch.zeros_like(phase)
    outlet.narrow(dim, phase.shape[dim] - 1, 1).fill_(True)
    from_inlet = _flood(phase, inlet)
    return _flood(from_inlet, outlet)


def spanning_masks(masks, axis: int = 0):
    """Spanning voxels of each cube of ``masks`` (``n x X x Y x Z``): scipy for a numpy array, torch for a tensor.

    Returns:
        The same type as ``masks``: numpy bool array, or bool tensor on the masks' device.
    """
    import torch

    if torch.is_tensor(masks):
        return spanning_masks_torch(masks, axis)
    masks = np.asarray(masks)
    return np.stack([spanning_mask(m.astype(bool, copy=False), axis) for m in masks]) if len(masks) else \
        np.zeros(masks.shape, dtype=bool)
