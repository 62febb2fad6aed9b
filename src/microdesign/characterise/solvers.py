"""Transport solvers of the characterisation stage: one object per back-end, holding its own settings.

:class:`~microdesign.characterise.Characteriser` takes a solver object (``solver`` argument, a nested
``_target_`` node in ``conf/characterise/solver/``) and calls its two solves; the solvers share the
percolation check, grouping and filtering of :mod:`microdesign.characterise.transport` and solve the
same finite-volume problem (TauFactor's discretisation, docs/characterisation.md):

* :class:`MgcgSolver` -- our multigrid-preconditioned conjugate gradient
  (:mod:`microdesign.characterise.mgcg`): faster than TauFactor's SOR at equal accuracy
  (docs/benchmarks/characterise.md), batched on a GPU; takes host arrays or device tensors.
* :class:`TauFactorSolver` -- TauFactor's SOR ``Solver`` / ``MultiPhaseSolver`` (Kench & Cooper,
  SoftwareX 2023); takes host arrays.

Both satisfy :class:`TransportSolver`; a stand-in only needs the same attributes and methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from microdesign.characterise import transport
from microdesign.device import resolve_device
from microdesign.errors import require

PRECISIONS = ("float32", "float64")
CRITERIA = ("energy", "flux")


class TransportSolver(Protocol):
    """What :class:`~microdesign.characterise.Characteriser` needs of a transport solver.

    Attributes:
        name: short name for logs and failure reasons (``"mgcg"``, ``"taufactor"``).
        device: resolved torch device of the solves (``"cpu"`` or ``"cuda[:i]"``).
        takes_device_arrays: whether the solves accept torch tensors on ``device`` (then the voxel
            work may stay on the device, ``voxel_ops: auto``).
    """

    name: str
    device: str
    takes_device_arrays: bool

    def tortuosity(self, masks: Any) -> transport.TransportResult:
        """Pore tortuosity factor along axis 0 of ``n x X x Y x Z`` conducting-phase masks."""

    def conductivity(self, labels: Any, conductivity: Mapping[int, float]) -> transport.TransportResult:
        """Effective conductivity along axis 0 of ``n x X x Y x Z`` labels, ``conductivity``: label -> [S.m-1]."""

    def settings(self) -> dict[str, Any]:
        """The settings that change a solve's result (for memo keys and logs)."""


def _check_common(device: str, conv_crit: float, threads: int | None, what: str) -> tuple[str, float, int | None]:
    require(0 < conv_crit < 1, "conv_crit", conv_crit, "a number in (0, 1)", context=what)
    require(threads is None or int(threads) >= 1, "threads", threads, "None or an integer >= 1", context=what)
    return resolve_device(device), float(conv_crit), None if threads is None else int(threads)


class MgcgSolver:
    """Our multigrid-preconditioned CG on TauFactor's discretisation (:func:`transport.mgcg_tortuosity`,
    :func:`transport.mgcg_conductivity`).

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:i]"``.
        batch: solve several cubes in one batched call (pays on a GPU, not on a CPU).
        conv_crit: layer-flux spread criterion (TauFactor's ``conv_crit``, default 1e-2).
        rtol: ``criterion="energy"``: relative energy error at which CG stops; ``"flux"``: reduction of
            the preconditioned residual norm required as well (see :func:`mgcg.mgcg_solve`).
        criterion: ``"energy"`` (result from the Joule energy, quadratic in the solution error) or
            ``"flux"`` (TauFactor's estimate and flux-spread criterion).
        iter_limit: CG iteration cap.
        precision: tortuosity solves, ``"float32"`` (TauFactor's) or ``"float64"``.
        conductivity_precision: conductivity solves, ``"float64"`` by default -- with a bulk contrast of
            ~4000 the potential steps inside the CBD fall below float32 resolution and the layer fluxes
            become noise (measured: docs/benchmarks/characterise.md).
        threads: torch CPU threads during the solves (restored afterwards); None keeps torch's setting.
            1 is fastest on a small, shared CPU (no thread barriers per array operation).
        deflation: float64 conductivity solves deflated by the clusters of the most conducting phase
            (default True; :func:`transport.mgcg_conductivity`): the same values to within ``rtol``, about 4x
            less CPU time for the full metric set where the carbon-binder domain forms islands that do not
            span, 1.3-1.5x where it spans (docs/benchmarks/characterise.md).

    Raises:
        ConfigError: any argument out of range (at construction).
    """

    name = "mgcg"
    takes_device_arrays = True

    def __init__(self, device: str = "cpu", batch: bool = False, conv_crit: float = 1e-2, rtol: float = 1e-4,
                 criterion: str = "energy", iter_limit: int = 1000, precision: str = "float32",
                 conductivity_precision: str = "float64", threads: int | None = None, deflation: bool = True):
        what = "mgcg solver"
        self.device, self.conv_crit, self.threads = _check_common(device, conv_crit, threads, what)
        require(0 < rtol < 1, "rtol", rtol, "a number in (0, 1)", context=what)
        require(int(iter_limit) >= 1, "iter_limit", iter_limit, "an integer >= 1", context=what)
        require(precision in PRECISIONS, "precision", precision, "'float32' or 'float64'", context=what)
        require(conductivity_precision in PRECISIONS, "conductivity_precision", conductivity_precision,
                "'float32' or 'float64'", context=what)
        require(criterion in CRITERIA, "criterion", criterion, "'energy' or 'flux'", context=what)
        self.batch = bool(batch)
        self.rtol = float(rtol)
        self.criterion = criterion
        self.iter_limit = int(iter_limit)
        self.precision = precision
        self.conductivity_precision = conductivity_precision
        require(isinstance(deflation, bool), "deflation", deflation, "true or false", context=what)
        self.deflation = deflation

    def tortuosity(self, masks: Any) -> transport.TransportResult:
        """:func:`transport.mgcg_tortuosity` with these settings (``masks``: host array or device tensor)."""
        with transport.torch_threads(self.threads):
            return transport.mgcg_tortuosity(masks, device=self.device, rtol=self.rtol, conv_crit=self.conv_crit,
                                             iter_limit=self.iter_limit, batch=self.batch, dtype=self.precision,
                                             criterion=self.criterion)

    def conductivity(self, labels: Any, conductivity: Mapping[int, float]) -> transport.TransportResult:
        """:func:`transport.mgcg_conductivity` with these settings (``labels``: host array or device tensor)."""
        with transport.torch_threads(self.threads):
            return transport.mgcg_conductivity(labels, dict(conductivity), device=self.device, rtol=self.rtol,
                                               conv_crit=self.conv_crit, iter_limit=self.iter_limit,
                                               batch=self.batch, dtype=self.conductivity_precision,
                                               criterion=self.criterion, deflation=self.deflation)

    def settings(self) -> dict[str, Any]:
        return {"solver": self.name, "conv_crit": self.conv_crit, "rtol": self.rtol, "criterion": self.criterion,
                "iter_limit": self.iter_limit, "precision": self.precision,
                "conductivity_precision": self.conductivity_precision, "deflation": self.deflation}


class TauFactorSolver:
    """TauFactor's SOR solvers (:func:`transport.taufactor_tortuosity`, :func:`transport.taufactor_conductivity`).

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:i]"``.
        batch: tortuosity: solve several cubes in one call (conductivity: always one cube at a time).
        conv_crit: TauFactor's flux-spread criterion (its default 1e-2).
        iter_limit: SOR iteration cap (>= 100; TauFactor's high-contrast conductivity solves are slow to
            converge, docs/benchmarks/characterise.md).
        threads: torch CPU threads during the solves, as :class:`MgcgSolver`.

    Raises:
        ConfigError: any argument out of range (at construction).
    """

    name = "taufactor"
    takes_device_arrays = False

    def __init__(self, device: str = "cpu", batch: bool = False, conv_crit: float = 1e-2, iter_limit: int = 20000,
                 threads: int | None = None):
        what = "taufactor solver"
        self.device, self.conv_crit, self.threads = _check_common(device, conv_crit, threads, what)
        require(int(iter_limit) >= 100, "iter_limit", iter_limit, "an integer >= 100", context=what)
        self.batch = bool(batch)
        self.iter_limit = int(iter_limit)

    def tortuosity(self, masks: Any) -> transport.TransportResult:
        """:func:`transport.taufactor_tortuosity` with these settings (a tensor is copied to the host)."""
        with transport.torch_threads(self.threads):
            return transport.taufactor_tortuosity(masks, device=self.device, conv_crit=self.conv_crit,
                                                  iter_limit=self.iter_limit, batch=self.batch)

    def conductivity(self, labels: Any, conductivity: Mapping[int, float]) -> transport.TransportResult:
        """:func:`transport.taufactor_conductivity` with these settings (a tensor is copied to the host)."""
        with transport.torch_threads(self.threads):
            return transport.taufactor_conductivity(labels, dict(conductivity), device=self.device,
                                                    conv_crit=self.conv_crit, iter_limit=self.iter_limit)

    def settings(self) -> dict[str, Any]:
        return {"solver": self.name, "conv_crit": self.conv_crit, "iter_limit": self.iter_limit}
