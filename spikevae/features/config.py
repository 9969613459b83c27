"""Configuration of the feature stage (PCA baseline and the VAE)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param, section
from .vade.config import VaDEConfig
from .vae.config import VAEConfig


@dataclass
class FeaturesConfig:
    method: str = param("pca", "feature space the main sorting uses", choices=("pca", "vae", "vade"))
    also: list = param([], "other feature methods to compute, cluster and score in the same run", choices=("pca", "vae", "vade"))
    n_components: int = param(5, "number of principal components (PCA)", low=1, high=64)
    whiten: bool = param(False, "whiten waveforms by the per-electrode temporal noise covariance before features")
    noise_crossings: int = param(500, "synthetic pure-noise threshold crossings embedded per electrode: the clustering's noise class (0 = none)", low=0, high=100000)
    vae: VAEConfig = section(VAEConfig, "the convolutional (β-)VAE")
    vade: VaDEConfig = section(VaDEConfig, "the clustering-aware VAE (Gaussian-mixture prior per electrode, method vade)")
