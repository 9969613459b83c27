"""Configuration of the clustering-aware VAE (VaDE: a VAE with a Gaussian-mixture prior).

The network is the convolutional VAE of :mod:`spikevae.features.vae`, configured by the
nested ``net`` section (``features.vade.net.*``) and first trained as a plain VAE (its
own epochs, early stopping and corruption). Each electrode then gets its own Gaussian
mixture in the latent space, sized by BIC on the pretrained posterior means as the
clustering's mixture is, and network and mixtures are trained together on the VaDE
evidence bound (Jiang et al. 2017): reconstruction + ``mixture_weight`` x
KL(q(z, c | x) || p(z, c | electrode)).
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
