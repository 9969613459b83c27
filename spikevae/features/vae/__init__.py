"""The convolutional denoising (β-)VAE feature extractor."""
from .config import VAEConfig
from .estimator import VAEFeatures

__all__ = ["VAEConfig", "VAEFeatures"]
