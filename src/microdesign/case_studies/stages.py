"""Stage adapters the case studies need on top of the shared stages (Kench et al., Matter 2024).

All follow the campaign's stage protocols (:mod:`microdesign.campaign.evaluate`), so the shared loop,
objective and campaign file run them unchanged:

* :class:`SyntheticLineGenerator` - the synthetic manufacturing line (:class:`microdesign.synth.SyntheticLine`)
  as a volume generator ``sample(params, n, size_voxels, seed)``: the generator option of the ``cpu``
  case-study profile (it is also the conditional generator's oracle,
  docs/synthetic_line.md).
* :class:`CachedCharacteriser` - :class:`microdesign.characterise.Characteriser` with an on-disk
  per-cube memo (key: the cube's bytes, the voxel size and the solver settings). Campaigns of one
  case study share their Sobol initial designs (same seed), so their cubes are characterised once.
* :class:`MultiPowerCellModel` - the 4680 cell discharged at several constant powers per design (the
  multi-objective campaign: energy at a low and a high power); the result is that of the first power,
  the others go to ``extra`` under PyBaMM-style keys (:func:`power_key`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.cell import CellModel
from microdesign.characterise.characteriser import Characteriser
from microdesign.errors import ConfigError, check_voxel_size

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- generator
class SyntheticLineGenerator:
    """The synthetic manufacturing line as a campaign generator.

    Args:
        voxel_size_m: voxel edge [m] of the emitted cubes (default 0.398 µm, the NREL NMC-1
            tomography voxel, docs/public_data.md; the CPU case studies use 0.8 µm so that a 32³
            cube spans ~26 µm, several particle diameters).
        training_bounds: accepted range per microstructure parameter, ``name -> (lower, upper)``;
            None accepts anything (the line is a physical model, not a fit).
        **line_kwargs: arguments of :class:`microdesign.synth.SyntheticLine` (particle size,
            dry porosity, CBD placement; their defaults and sources are documented there).

    Raises:
        ConfigError: a bad voxel size or line argument.
    """

    def __init__(self, voxel_size_m: float = 3.98e-7, training_bounds: Mapping[str, Sequence[float]] | None = None,
                 **line_kwargs: Any):
        from microdesign.synth import SyntheticLine

        self.voxel_size_m = check_voxel_size("generator.voxel_size_m", voxel_size_m, hint="e.g. 8e-7")
        self.line = SyntheticLine(**line_kwargs)
        self.training_bounds = None if training_bounds is None else {k: (float(v[0]), float(v[1]))
                                                                      for k, v in dict(training_bounds).items()}

    def sample(self, params: Mapping[str, float], n: int = 1, size_voxels: int = 32, seed: int = 0) -> np.ndarray:
        """``n x L x L x L`` uint8 labels (0 pore, 1 AM, 2 CBD) at one design; cube ``i`` is drawn with
        the ``i``-th seed spawned from ``seed`` (same seed and parameters -> same cubes).

        Raises:
            ConfigError: ``n < 1``, ``size_voxels < 4`` or bad parameters (see ``SyntheticLine``).
        """
        if int(n) < 1:
            raise ConfigError("n", n, "a positive number of cubes")
        if int(size_voxels) < 4:
            raise ConfigError("size_voxels", size_voxels, "a cube side >= 4 voxels")
        seeds = np.random.SeedSequence(int(seed)).generate_state(int(n))
        return np.stack([self.line.generate(dict(params), int(size_voxels), self.voxel_size_m, int(s)) for s in seeds])


# -------------------------------------------------------------------------------------- characterisation
#: Format of the per-cube values a :class:`CachedCharacteriser` stores, part of the memo key: raised whenever
#: the characteriser's per-cube values change (2: the solid percolating fraction, and 0 S/m for a cube whose
#: solid does not span), so that entries of an older format are recomputed, never mixed with new ones.
MEMO_FORMAT = 2


class CachedCharacteriser(Characteriser):
    """:class:`~microdesign.characterise.Characteriser` that memoises per-cube measurements on disk.

    A cube's values depend only on its labels, the voxel size and the measurement settings
    (:meth:`Characteriser.settings`: solver and its tolerances, conductivities, surface-area method), so
    they are stored under ``sha256(settings, memo format, voxel size, cube bytes)`` (:data:`MEMO_FORMAT`); failed
    sets are never stored. Several
    processes may share one ``cache_dir`` (atomic writes).

    Args:
        cache_dir: directory of the memo (created); None disables the memo.
        **kwargs: :class:`~microdesign.characterise.Characteriser` arguments.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._settings = json.dumps({**self.settings(), "memo_format": MEMO_FORMAT}, sort_keys=True, default=str)
        self.hits = 0
        self.misses = 0

    def _key(self, cube: np.ndarray, dx: float) -> str:
        h = hashlib.sha256(self._settings.encode())
        h.update(repr((float(dx), cube.shape)).encode())
        h.update(np.ascontiguousarray(cube).tobytes())
        return h.hexdigest()

    def _measure(self, cubes: np.ndarray, dx: float) -> tuple[dict[str, np.ndarray], str | None]:
        """As :meth:`Characteriser._measure` (validated cubes; behind ``measure``, ``characterise`` and the
        adaptive loop), reading known cubes from the memo."""
        if self.cache_dir is None:
            return super()._measure(cubes, dx)
        keys = [self._key(c, dx) for c in cubes]
        known: dict[int, dict[str, float]] = {}
        for i, k in enumerate(keys):
            p = self.cache_dir / f"{k}.pkl"
            if p.is_file():
                try:
                    known[i] = pickle.loads(p.read_bytes())
                except Exception:  # noqa: BLE001 - a damaged entry is recomputed
                    pass
        todo = [i for i in range(len(cubes)) if i not in known]
        self.hits += len(known)
        self.misses += len(todo)
        if todo:
            values, reason = super()._measure(cubes[todo], dx)
            if reason:
                return values, reason
            for j, i in enumerate(todo):
                row = {m: float(v[j]) for m, v in values.items()}
                known[i] = row
                tmp = self.cache_dir / f"{keys[i]}.{os.getpid()}.tmp"
                tmp.write_bytes(pickle.dumps(row))
                os.replace(tmp, self.cache_dir / f"{keys[i]}.pkl")
        names = list(known[0])
        return {m: np.array([known[i][m] for i in range(len(cubes))]) for m in names}, None


# ----------------------------------------------------------------------------------------------- cells
def power_key(quantity: str, power_W: float) -> str:
    """``extra`` key of a quantity at a power, e.g. ``"Volumetric energy density at 200 W [W.h.L-1]"``."""
    from microdesign.cell.result import RESULT_KEYS

    label = RESULT_KEYS.get(quantity, quantity)
    name, _, unit = label.partition(" [")
    return f"{name} at {power_W:g} W [{unit}" if unit else f"{name} at {power_W:g} W"


class MultiPowerCellModel(CellModel):
    """A cell discharged at several constant powers per design (one DFN build per geometry).

    The returned :class:`~microdesign.cell.result.CellResult` is that of ``powers_W[0]``; for every
    power ``P`` its ``extra`` holds ``power_key(q, P)`` for ``q`` in ``quantities``. The design fails
    (with the reason) if any power fails: a cell that cannot deliver one of the target powers is not
    a candidate of the trade-off.

    Args:
        powers_W: discharge powers [W], shape ``m`` (10 and 200 W: Kench et al. 2024).
        quantities: ``CellResult`` fields recorded per power.
        **kwargs: :class:`~microdesign.cell.CellModel` arguments.

    Raises:
        ConfigError: fewer than one power or a non-positive power.
    """

    def __init__(self, powers_W: Sequence[float] = (10.0, 200.0),
                 quantities: Sequence[str] = ("volumetric_energy_density_Wh_L", "specific_energy_Wh_kg", "energy_Wh"),
                 **kwargs: Any):
        powers = [float(p) for p in powers_W]
        if not powers or not all(math.isfinite(p) and p > 0 for p in powers):
            raise ConfigError("cell.powers_W", list(powers_W), "one or more finite powers > 0 [W]")
        super().__init__(**kwargs)
        self.powers_W, self.quantities = tuple(powers), tuple(quantities)

    def simulate(self, metrics: Any, cathode_thickness_m: float, protocol: Any = None) -> Any:
        """Discharges at every power; ``protocol`` other than None runs the plain :meth:`CellModel.simulate`."""
        from dataclasses import replace

        if protocol is not None:
            return super().simulate(metrics, cathode_thickness_m, protocol)
        results = [super(MultiPowerCellModel, self).simulate(metrics, cathode_thickness_m,
                                                             {"kind": "constant_power", "power_W": p})
                   for p in self.powers_W]
        first = results[0]
        for p, r in zip(self.powers_W, results):
            if not r.ok:
                return r if r is first else replace(first, status="failed", reason=f"at {p:g} W: {r.reason}")
        extra = dict(first.extra)
        for p, r in zip(self.powers_W, results):
            for q in self.quantities:
                extra[power_key(q, p)] = float(getattr(r, q))
        return replace(first, extra=extra)
