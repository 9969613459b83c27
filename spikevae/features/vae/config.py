"""Configuration of the convolutional (β-)VAE feature extractor."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import param


@dataclass
class VAEConfig:
    latent_dim: int = param(8, "size of the latent space", low=1, high=256)
    seed: int = param(0, "random seed (weights, batches, corruption)", low=0)
