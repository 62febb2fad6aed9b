"""Characterisation: TauFactor metrics over sampled cubes with confidence intervals (docs/characterisation.md)."""

from microdesign.characterise.characteriser import DEFAULT_BULK_CONDUCTIVITY_S_M, AdaptiveSampling, Characteriser
from microdesign.characterise.metrics import MetricEstimate, MicrostructureMetrics
from microdesign.characterise.sampling import SubcubeSampler, sample_subcubes
from microdesign.characterise.solvers import MgcgSolver, TauFactorSolver, TransportSolver

__all__ = [
    "DEFAULT_BULK_CONDUCTIVITY_S_M",
    "AdaptiveSampling",
    "Characteriser",
    "MetricEstimate",
    "MgcgSolver",
    "MicrostructureMetrics",
    "SubcubeSampler",
    "TauFactorSolver",
    "TransportSolver",
    "sample_subcubes",
]
