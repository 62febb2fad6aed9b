"""TauFactor back-end of the transport driver: one group of cubes through TauFactor's SOR solvers.

:class:`taufactor.Solver` (binary phase) and :class:`taufactor.MultiPhaseSolver` (several conducting
phases), Kench & Cooper, SoftwareX 2023 / JOSS 2023. TauFactor extracts the spanning cluster itself,
so these get the whole phase; their printing is silenced and their warnings logged (library code logs). The
driver (:mod:`microdesign.characterise.transport`) does the percolation check, the grouping and the
finite/positive filtering.
"""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np

from microdesign.logs import warnings_to_log

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet():
    """Silence TauFactor's ``print`` output (library code logs, never prints); its warnings go to the debug log."""
    with contextlib.redirect_stdout(io.StringIO()), warnings_to_log(log, "TauFactor", logging.DEBUG):
        yield


def solve_binary(masks: np.ndarray, device: str, conv_crit: float, iter_limit: int):
    """``taufactor.Solver`` on ``masks`` (``g x X x Y x Z`` uint8, solved in one call).

    Returns:
        ``(tau, D_rel, converged, iterations)``; TauFactor reports one convergence flag and
        iteration count for the whole call.
    """
    import taufactor as tf

    with quiet():
        s = tf.Solver(masks, device=device)
        s.solve(iter_limit=iter_limit, conv_crit=conv_crit, verbose=False)
    return (np.atleast_1d(np.asarray(s.tau, dtype=np.float64)), np.atleast_1d(np.asarray(s.D_rel, dtype=np.float64)),
            bool(s.converged), int(s.iter))


def solve_multiphase(image: np.ndarray, conductivity: dict[int, float], device: str, conv_crit: float,
                     iter_limit: int):
    """``taufactor.MultiPhaseSolver`` on one labelled cube ``X x Y x Z`` (label 0 insulates).

    Returns:
        ``(tau, D_eff, converged, iterations)`` with ``tau``/``D_eff`` of shape 1.
    """
    import taufactor as tf

    with quiet():
        s = tf.MultiPhaseSolver(image, cond=dict(conductivity), device=device)
        s.solve(iter_limit=iter_limit, conv_crit=conv_crit, verbose=False)
    return (np.array([float(np.atleast_1d(s.tau)[0])]), np.array([float(np.atleast_1d(s.D_eff)[0])]),
            bool(s.converged), int(s.iter))
