"""Metric calibration: the default evaluation's metrics moved to the reference pipeline's.

A campaign evaluates a design on structures of its generator, characterised on small cubes (64³ by
default). Both approximate the reference evaluation (docs/reference_error.md): the generator's
training source, the synthetic line, characterised on cubes of 128³. What is left between the two is
mostly systematic in the design (the shipped generator's pore tortuosity factor is too high at low CBD
adhesion, a 64³ cube under-counts the AM–pore surface of a 128³ one), so it can be learned where both
were measured and removed elsewhere: a model discrepancy in the sense of Kennedy and O'Hagan
("Bayesian calibration of computer models", J. R. Stat. Soc. B 63 (2001) 425).

For each calibrated metric ``k`` the log ratio

    δ_k(x) = ln(m_k^ref(x) / m_k^eval(x))

is modelled over the generator's parameters ``x`` (scaled to its training bounds) by a Gaussian
process (BoTorch ``SingleTaskGP``, Matérn-5/2 with one length scale per parameter, constant mean),
fitted on calibration designs evaluated both ways (scrambled Sobol, a seed other than the error
table's held-out designs; ``scripts/metric_calibration.py``), each log ratio with its observed noise
variance from the two standard errors, ``(s_ref/m_ref)² + (s_eval/m_eval)²`` (delta method). At
evaluation the metric's estimate is scaled by ``exp(μ_k(x))``, the posterior mean at the design:
mean, per-cube values, standard deviation and CI alike, so its relative CI (the characterisation's
noise that the campaign's surrogate gets) is unchanged. The posterior standard deviation of ``δ_k``
is the calibration's own uncertainty; it is recorded with each trial, not added to the observation
noise, because it is shared by neighbouring designs (a bias, not independent noise).

A calibration is valid for one generator (its weights), one labelling, one cube side and one
characterisation (the τ estimator); :meth:`MetricCalibration.check_validity` refuses any other.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.characterise.metrics import CONDUCTIVITY_SOLID, SSA_AM_PORE, TORTUOSITY_THROUGH_PLANE
from microdesign.errors import ConfigError

log = logging.getLogger(__name__)

#: Format of the calibration data file (a version bump marks an incompatible change).
FORMAT_VERSION = 1
#: The metrics a calibration may move (the cell model's transport and surface inputs; the phase volume
#: fractions are the design's exactly) and their short names in a trial's record.
CALIBRATABLE: dict[str, str] = {SSA_AM_PORE: "specific_surface_area_am_pore",
                                TORTUOSITY_THROUGH_PLANE: "pore_tortuosity_factor",
                                CONDUCTIVITY_SOLID: "solid_conductivity"}
#: Prefix of the per-trial record keys (the cell result's ``extra``): ``<prefix><short name>`` is the
#: factor applied, ``<prefix><short name>_log_sd`` the posterior standard deviation of its logarithm.
RECORD_PREFIX = "metric_calibration_factor_"


def log_ratio(reference: Mapping[str, Any], evaluation: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(ln(m_ref / m_eval), its variance)`` of one metric at one design, or None where either mean is not
    positive or has fewer than two cubes.

    Args:
        reference, evaluation: estimate records ``{"mean", "std", "values"}``
            (:func:`microdesign.analysis.reference.metrics_record`); ``std / sqrt(n)`` is the standard error
            (also for a transport-averaged τ, whose ``std`` is that of its linearised values).
    """
    out = []
    for rec in (reference, evaluation):
        n, mean = len(rec.get("values", [])), float(rec.get("mean", float("nan")))
        if n < 2 or not (math.isfinite(mean) and mean > 0):
            return None
        out.append((mean, float(rec["std"]) / math.sqrt(n)))
    (mr, sr), (me, se) = out
    return math.log(mr / me), (sr / mr) ** 2 + (se / me) ** 2


@dataclass(frozen=True)
class CalibrationData:
    """What a calibration file holds (:meth:`load`; written by :func:`calibration_data`).

    Attributes:
        parameters: the generator's parameter names (GP inputs), in order.
        bounds: name -> (lower, upper), the scaling of each input to [0, 1] (the generator's training bounds).
        metrics: the calibrated metric keys (a subset of :data:`CALIBRATABLE`).
        designs: per design ``{"index", "inputs", "log_ratio": {key: [δ, variance]}}``.
        validity: what the calibration is valid for: ``generator``, ``weights_sha256``, ``labelling``,
            ``cube_size_voxels``, ``tau_estimator`` (see :meth:`MetricCalibration.check_validity`).
        source: path the data were read from (for messages).
    """

    parameters: tuple[str, ...]
    bounds: dict[str, tuple[float, float]]
    metrics: tuple[str, ...]
    designs: tuple[dict[str, Any], ...]
    validity: dict[str, Any]
    source: str = ""

    @classmethod
    def load(cls, path: str | Path) -> CalibrationData:
        """Read a calibration data file.

        Raises:
            ConfigError: naming ``campaign.metric_calibration``: missing, unreadable, of another format, or
                holding a metric that cannot be calibrated.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError("campaign.metric_calibration", str(p), f"a metric calibration file (JSON): {exc}") from exc
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise ConfigError("campaign.metric_calibration", str(p),
                              f"a metric calibration file of format_version {FORMAT_VERSION}")
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> CalibrationData:
        """The calibration of a file's content (:func:`calibration_data`).

        Raises:
            ConfigError: naming ``campaign.metric_calibration``: a metric that cannot be calibrated.
        """
        unknown = [k for k in data["metrics"] if k not in CALIBRATABLE]
        if unknown:
            raise ConfigError("campaign.metric_calibration", source, f"metrics among {list(CALIBRATABLE)}, not {unknown}")
        return cls(parameters=tuple(data["parameters"]),
                   bounds={k: (float(v[0]), float(v[1])) for k, v in data["bounds"].items()},
                   metrics=tuple(data["metrics"]), designs=tuple(data["designs"]), validity=dict(data["validity"]),
                   source=source)

    def unit(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Inputs ``n x d`` scaled to [0, 1] by :attr:`bounds` (outside it where the design is)."""
        lo = np.array([self.bounds[k][0] for k in self.parameters])
        hi = np.array([self.bounds[k][1] for k in self.parameters])
        x = np.array([[float(r[k]) for k in self.parameters] for r in rows], dtype=np.float64).reshape(-1, len(lo))
        return (x - lo) / np.where(hi > lo, hi - lo, 1.0)

    def observations(self, key: str, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Z n x d, δ n, variance n)`` of metric ``key`` over the designs that have it (but ``exclude``)."""
        rows = [d for d in self.designs if key in d["log_ratio"] and d["index"] != exclude]
        y = np.array([d["log_ratio"][key][0] for d in rows], dtype=np.float64)
        v = np.array([d["log_ratio"][key][1] for d in rows], dtype=np.float64)
        return self.unit([d["inputs"] for d in rows]), y, v


def fit_log_ratio(Z: np.ndarray, y: np.ndarray, variance: np.ndarray) -> Any:
    """The GP of one metric's log ratio (``optim.proposers.fit_gp``: ``SingleTaskGP`` on unit-cube inputs,
    outcome standardised, the observed noise variances as given).

    Raises:
        ConfigError: fewer than 4 observations.
    """
    import torch

    from microdesign.optim.proposers import fit_gp

    if len(y) < 4:
        raise ConfigError("campaign.metric_calibration", f"{len(y)} calibration designs", "at least 4 per metric")
    t = torch.as_tensor
    return fit_gp(t(Z, dtype=torch.float64), t(y, dtype=torch.float64).reshape(-1, 1),
                  t(variance, dtype=torch.float64).reshape(-1, 1))


def predict(model: Any, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of the log ratio at ``Z`` (``n x d``, unit scale), each shape ``n``."""
    import torch

    with torch.no_grad():
        post = model.posterior(torch.as_tensor(np.atleast_2d(Z), dtype=torch.float64))
        return post.mean.reshape(-1).numpy().copy(), post.variance.clamp_min(0).sqrt().reshape(-1).numpy().copy()


def leave_one_out(data: CalibrationData, key: str) -> dict[str, float]:
    """Leave-one-out check of one metric's GP: each design predicted by the GP of the others.

    Returns:
        ``{"n", "mae_uncalibrated", "mae_calibrated"}``: mean absolute log ratio without calibration
        (``|δ|``) and after it (``|δ − μ₋ᵢ|``), about the mean relative error of the metric either way;
        ``"improved_share"``, the share of designs where ``|δ − μ₋ᵢ| < |δ|``; and ``"coverage_95"``, the
        share of designs whose ``δ`` lies within ``μ₋ᵢ ± 1.96`` times the combined standard deviation (GP
        and observation).

    Raises:
        ConfigError: fewer than 5 designs with the metric.
    """
    Z, y, v = data.observations(key)
    if len(y) < 5:
        raise ConfigError("metrics", key, f"a metric with at least 5 calibration designs (it has {len(y)})")
    pred, hit = [], []
    for i, d in enumerate(d for d in data.designs if key in d["log_ratio"]):
        model = fit_log_ratio(*data.observations(key, exclude=d["index"]))
        mu, sd = predict(model, Z[i:i + 1])
        pred.append(float(mu[0]))
        hit.append(abs(y[i] - mu[0]) <= 1.96 * math.sqrt(sd[0] ** 2 + v[i]))
    pred_a = np.array(pred)
    return {"n": int(len(y)), "mae_uncalibrated": float(np.mean(np.abs(y))),
            "mae_calibrated": float(np.mean(np.abs(y - pred_a))),
            "improved_share": float(np.mean(np.abs(y - pred_a) < np.abs(y))), "coverage_95": float(np.mean(hit))}


class MetricCalibration:
    """The fitted calibration of one data file: :meth:`apply` moves an evaluation's metrics.

    Args:
        data: :class:`CalibrationData`.

    Raises:
        ConfigError: a metric with fewer than 4 calibration designs.
    """

    def __init__(self, data: CalibrationData):
        self.data = data
        self.models = {k: fit_log_ratio(*data.observations(k)) for k in data.metrics}

    @classmethod
    def from_file(cls, path: str | Path) -> MetricCalibration:
        """Load and fit (about a second for three metrics on a CPU)."""
        return cls(CalibrationData.load(path))

    @property
    def cube_size_voxels(self) -> int:
        return int(self.data.validity["cube_size_voxels"])

    @staticmethod
    def check_validity(data: CalibrationData, generator: Any, cube_size_voxels: int, tau_estimator: str) -> None:
        """Refuse calibration data made for another generator, labelling, cube side or τ estimator.

        Args:
            data: :class:`CalibrationData`.
            generator: the campaign's :class:`~microdesign.generator.Generator` (``name``,
                ``metadata.weights_sha256``, ``labelling``).
            cube_size_voxels: the campaign's cube side [voxels].
            tau_estimator: the characteriser's ``tau_estimator``.

        Raises:
            ConfigError: naming ``campaign.metric_calibration`` and what differs.
        """
        v = data.validity
        meta = getattr(generator, "metadata", None)
        have = {"generator": getattr(generator, "name", None),
                "weights_sha256": getattr(meta, "weights_sha256", None),
                "labelling": dict(getattr(generator, "labelling", {}) or {}),
                "cube_size_voxels": int(cube_size_voxels), "tau_estimator": str(tau_estimator)}
        differ = {k: (v.get(k), have[k]) for k in have if json.dumps(v.get(k)) != json.dumps(have[k])}
        if differ:
            detail = "; ".join(f"{k}: made for {a!r}, the campaign has {b!r}" for k, (a, b) in differ.items())
            raise ConfigError("campaign.metric_calibration", data.source,
                              f"a calibration of this evaluation ({detail}); set campaign.metric_calibration=null "
                              "to evaluate uncalibrated, or make one with scripts/metric_calibration.py")

    def factors(self, params: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """Metric key -> ``(exp(μ), σ)``: the factor at the generator parameters ``params`` and the posterior
        standard deviation of its logarithm."""
        z = self.data.unit([params])
        out = {}
        for k, model in self.models.items():
            mu, sd = predict(model, z)
            out[k] = (float(math.exp(mu[0])), float(sd[0]))
        return out

    def apply(self, metrics: Any, params: Mapping[str, float]) -> tuple[Any, dict[str, float]]:
        """``(calibrated metrics, record)``: each calibrated metric scaled by its factor at ``params``
        (:meth:`MetricEstimate.scaled`; the other metrics unchanged), and the trial record
        ``{<RECORD_PREFIX><short>: factor, <RECORD_PREFIX><short>_log_sd: σ}``.

        Raises:
            ValueError: ``metrics`` measured on cubes of another side than the calibration's.
        """
        if int(metrics.cube_size_voxels) != self.cube_size_voxels:
            raise ValueError(f"metric calibration for cubes of {self.cube_size_voxels}^3 applied to cubes of "
                             f"{metrics.cube_size_voxels}^3")
        estimates, record = dict(metrics.estimates), {}
        for k, (factor, sd) in self.factors(params).items():
            if k in estimates:
                estimates[k] = estimates[k].scaled(factor)
                record[RECORD_PREFIX + CALIBRATABLE[k]] = factor
                record[RECORD_PREFIX + CALIBRATABLE[k] + "_log_sd"] = sd
        return replace(metrics, estimates=estimates), record


def calibration_data(reference: Mapping[str, Any], evaluation: Mapping[str, Any], generator: Any,
                     metrics: Sequence[str] = tuple(CALIBRATABLE), command: str = "") -> dict[str, Any]:
    """The calibration file's content from two reference data files of the same designs.

    Args:
        reference: :func:`microdesign.analysis.reference.run_reference` with ``structures="line"`` (the
            reference's settings: its line, its cube side and count).
        evaluation: the same with ``structures="generator"`` at the campaign's cube side.
        generator: the campaign's generator (the GP's inputs are its parameters, scaled to its training bounds).
        metrics: metric keys to calibrate (of :data:`CALIBRATABLE`).
        command: the command that made the file.

    Raises:
        ConfigError: the two files are not of the same designs, or a metric that cannot be calibrated.
    """
    from microdesign.analysis.reference import generator_record

    bad = [k for k in metrics if k not in CALIBRATABLE]
    if bad:
        raise ConfigError("metrics", bad, f"metrics among {list(CALIBRATABLE)}")
    by_index = {int(d["index"]): d for d in evaluation["designs"]}
    designs = []
    for d in reference["designs"]:
        e = by_index.get(int(d["index"]))
        if e is None:
            continue
        if json.dumps(e["inputs"], sort_keys=True) != json.dumps(d["inputs"], sort_keys=True):
            raise ConfigError("evaluation", f"design {d['index']}", "the reference file's designs")
        ratios = {}
        for k in metrics:
            r = log_ratio(d["metrics"].get("estimates", {}).get(k, {}), e["metrics"].get("estimates", {}).get(k, {}))
            if r is not None:
                ratios[k] = list(r)
        designs.append({"index": int(d["index"]), "inputs": {k: d["inputs"][k] for k in generator.parameter_names},
                        "log_ratio": ratios})
    es = evaluation["settings"]
    return {"format_version": FORMAT_VERSION, "command": command,
            "parameters": list(generator.parameter_names),
            "bounds": {k: list(map(float, generator.training_bounds[k])) for k in generator.parameter_names},
            "metrics": list(metrics), "designs": designs,
            "validity": {**generator_record(generator), "cube_size_voxels": int(es["size_voxels"]),
                         "tau_estimator": str(es.get("tau_estimator", "mean"))},
            "reference": {k: reference["settings"][k] for k in ("designs_seed", "n_cubes", "size_voxels", "structures")},
            "evaluation": {k: es[k] for k in ("designs_seed", "n_cubes", "size_voxels")}}


#: Values of ``campaign.metric_calibration`` besides a file path.
CALIBRATION_MODES = ("auto", "none")


def configured_metric_calibration(campaign: Mapping[str, Any]) -> str:
    """The ``metric_calibration`` of a ``campaign`` config node: ``"auto"``, ``"none"`` (also for null) or a
    path; ``"none"`` (the rule such campaigns ran under) for one written before the key existed."""
    value = campaign.get("metric_calibration", None)
    return "none" if value is None else str(value)


def calibration_file_for(checkpoint: Any, cube_size_voxels: int) -> Path | None:
    """``<checkpoint folder>/metric_calibration_<L>.json`` where it exists, else None (also for a generator
    config without a checkpoint, e.g. an untrained network)."""
    from microdesign.generator.checkpoint import CheckpointError, resolve_checkpoint_dir

    if checkpoint is None:
        return None
    try:
        path = resolve_checkpoint_dir(str(checkpoint)) / f"metric_calibration_{int(cube_size_voxels)}.json"
    except CheckpointError:
        return None
    return path if path.is_file() else None


def resolve_metric_calibration(setting: str, generator: Any, checkpoint: Any, cube_size_voxels: int,
                               tau_estimator: str) -> MetricCalibration | None:
    """The calibration a campaign evaluates with, or None.

    Args:
        setting: ``campaign.metric_calibration``: ``"none"``; ``"auto"``: the calibration shipped with the
            checkpoint for this cube side (:func:`calibration_file_for`) where there is one and it was made
            for this evaluation (labelling, τ estimator), else none (logged); or a file path, which must
            have been made for this evaluation.
        generator: the campaign's generator; checkpoint: its ``generator.checkpoint`` setting.
        cube_size_voxels, tau_estimator: the campaign's cube side and the characteriser's τ estimator.

    Raises:
        ConfigError: naming ``campaign.metric_calibration``: a path that is not a calibration file, or one
            made for another generator, labelling, cube side or τ estimator (:meth:`MetricCalibration.check_validity`).
    """
    if setting == "none":
        return None
    if setting == "auto":
        path = calibration_file_for(checkpoint, cube_size_voxels)
        if path is None:
            log.info("metric calibration: none for generator %s at cubes of %d^3; metrics as measured",
                     getattr(generator, "name", generator), int(cube_size_voxels))
            return None
        data = CalibrationData.load(path)
        try:
            MetricCalibration.check_validity(data, generator, cube_size_voxels, tau_estimator)
        except ConfigError as exc:
            log.warning("metric calibration: %s does not fit this evaluation, metrics as measured (%s)", path, exc)
            return None
        return MetricCalibration(data)
    data = CalibrationData.load(setting)
    MetricCalibration.check_validity(data, generator, cube_size_voxels, tau_estimator)
    return MetricCalibration(data)
