"""Characterisation: TauFactor metrics over sampled cubes with confidence intervals (DESIGN.md §3.3)."""

from microdesign.characterise.metrics import MetricEstimate, MicrostructureMetrics

__all__ = ["MetricEstimate", "MicrostructureMetrics"]
