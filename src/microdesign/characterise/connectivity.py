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


def face_connected_clusters(masks) -> np.ndarray:
    """Face-connected (6-connected) clusters of each cube of ``masks``, labelled on the host.

    Args:
        masks: boolean ``n x X x Y x Z`` (numpy array or torch tensor on any device).

    Returns:
        int32 numpy array ``n x X x Y x Z``: 0 outside the mask, ``1..k`` the clusters of each cube
        (``scipy.ndimage.label``, default structure). On a GPU this is a host round trip per call.
    """
    m = masks.cpu().numpy() if hasattr(masks, "cpu") else np.asarray(masks)
    m = m.astype(bool, copy=False)
    out = np.zeros(m.shape, dtype=np.int32)
    for i in range(m.shape[0]):
        ndimage.label(m[i], output=out[i])
    return out


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
