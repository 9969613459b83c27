"""The clustering-aware latent: a VAE with per-electrode Gaussian-mixture priors (VaDE)."""
from .config import VaDEConfig
from .estimator import VaDEFeatures

__all__ = ["VaDEConfig", "VaDEFeatures"]
