"""Configuration of the quality-metrics stage."""
from __future__ import annotations

from dataclasses import dataclass

from .config import param


@dataclass
class QualityConfig:
    refractory_ms: float = param(1.5, "refractory period for ISI violations", unit="ms", low=0.1, high=10)
    censored_ms: float = param(0.0, "censored period after each spike, where no spike can be detected", unit="ms", low=0, high=5)
    preset: str = param("spikevae", "rules for the 'good' label", choices=("spikevae", "allen", "ibl"))
