"""spikevae: spike sorting with PCA and convolutional VAE features."""

__version__ = "0.1.0"
