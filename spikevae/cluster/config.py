"""Configuration of the clustering stage (initial clusterer + refinement)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param


@dataclass
class ClusterConfig:
    method: str = param("mixture", "initial clusterer, per electrode",
                        choices=("hdbscan", "isosplit", "mixture"))
    max_fit_spikes: int = param(20000, "electrodes with more spikes are fit on a random subsample, the rest assigned", low=100)
    seed: int = param(0, "random seed for subsampling and initialisation", low=0)
