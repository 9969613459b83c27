"""Configuration of the clustering-aware VAE (VaDE: a VAE with a Gaussian-mixture prior).

The network is the convolutional VAE of :mod:`spikevae.features.vae`, configured by the
nested ``net`` section (``features.vade.net.*``) and first trained as a plain VAE (its
own epochs, early stopping and corruption). Each electrode then gets its own Gaussian
mixture in the latent space, sized by BIC on the pretrained posterior means as the
clustering's mixture is, and network and mixtures are trained together on the VaDE
evidence bound (Jiang et al. 2017): reconstruction + ``mixture_weight`` x
KL(q(z, c | x) || p(z, c | electrode)).

Measured (``benchmarks/compare_features.py``, 16 electrodes x 60 s, simulation seeds 0-1,
plain and the three hard cases of :mod:`spikevae.synth.hard`, network seeds 0-2, same
detection, clustering with refinement and noise class for every feature space; 2 shared
CPU cores): mean accuracy, mean ± sd over network seeds

========================  ======  ===============  ===============
set (2 simulations each)  PCA(5)  VAE + background  VaDE (defaults)
========================  ======  ===============  ===============
plain                     0.500   0.511 ± 0.004    0.506 ± 0.009
shape change              0.405   0.405 ± 0.006    0.407 ± 0.005
heavy-tailed + line       0.414   0.388 ± 0.010    0.389 ± 0.003
fast (overlapping) units  0.480   0.460 ± 0.003    0.455 ± 0.009
all 8 pooled              0.449   0.441 ± 0.004    0.439 ± 0.001
========================  ======  ===============  ===============

The supervised probe is the same in all three spaces (0.513-0.515). VaDE does not beat PCA
on the hard cases (0.417 ± 0.004 against 0.433); training took ~50 s against the VAE's
~20 s (median, ~23,000 spikes). PCA stays the pipeline's default.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...config import param, section
from ..vae.config import VAEConfig


@dataclass
class VaDEConfig:
    max_components: int = param(5, "most Gaussian components of one electrode's latent mixture (chosen by BIC)",
                                 low=1, high=40)
    bic_fit_spikes: int = param(1000, "spikes per electrode the mixture is sized and initialised on (fixed-size "
                                      "subsample, as cluster.mixture)", low=20)
    min_spikes_per_component: int = param(20, "an electrode tries k components only with at least k x this "
                                              "many spikes", low=2)
    covariance: str = param("full", "covariance of each latent mixture component", choices=("full", "diag"))
    reg_covar: float = param(1e-3, "added to the diagonal of each component's covariance", low=0.0)
    epochs: int = param(10, "epochs of joint training of network and mixtures after the pretraining",
                        unit="epochs", low=0, high=10000)
    lr: float = param(1e-3, "Adam learning rate of the joint training", low=0.0)
    mixture_weight: float = param(1.0, "weight of the mixture-prior KL term in the joint training", low=0.0)
    net: VAEConfig = section(VAEConfig, "the shared network over all electrodes and its pretraining as a VAE")
