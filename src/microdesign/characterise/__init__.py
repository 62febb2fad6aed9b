"""Characterisation: TauFactor metrics over sampled cubes with confidence intervals (docs/characterisation.md)."""

from microdesign.characterise.characteriser import DEFAULT_BULK_CONDUCTIVITY_S_M, Characteriser
from microdesign.characterise.metrics import MetricEstimate, MicrostructureMetrics
from microdesign.characterise.sampling import SubcubeSampler, sample_subcubes

__all__ = [
    "DEFAULT_BULK_CONDUCTIVITY_S_M",
    "Characteriser",
    "MetricEstimate",
    "MicrostructureMetrics",
    "SubcubeSampler",
    "sample_subcubes",
]
