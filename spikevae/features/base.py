"""The feature-extractor contract shared by PCA and the VAE (scikit-learn's estimator contract).

``__init__`` only stores its configuration; ``fit(spikes)`` learns and sets attributes
ending in ``_``; ``transform(spikes)`` returns an :class:`~spikevae.objects.Embedding`
and mutates nothing; ``get_params()`` returns the configuration as a dict. Both see
waveforms scaled by their electrode's noise σ (never per spike, so amplitude stays
information), optionally noise-whitened.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..objects import Embedding, Spikes


class FeatureExtractor:
    """Base class: fit on Spikes, transform Spikes to an Embedding."""

    method: str = ""

    def fit(self, spikes: Spikes) -> "FeatureExtractor":
        raise NotImplementedError

    def transform(self, spikes: Spikes) -> Embedding:
        raise NotImplementedError

    def fit_transform(self, spikes: Spikes) -> Embedding:
        return self.fit(spikes).transform(spikes)

    def get_params(self) -> dict:
        cfg = getattr(self, "config", None)
        return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(vars(cfg or {}))


#: Spikes embedded at a time: features are computed block by block, so a run's waveforms (kept on
#: disk) are never all in memory; a fixed size keeps the result the same whatever the machine.
TRANSFORM_BLOCK = 1 << 16


def model_input(spikes: Spikes, whiten: bool = False, rows=None) -> np.ndarray:
    """The waveforms a feature extractor sees: noise-scaled, optionally noise-whitened.

    Parameters
    ----------
    rows : slice, index array or mask, optional
        Only these spikes (default: all).

    Returns
    -------
    ndarray of shape (n_rows, n_samples), float32, in units of noise σ
    """
    if whiten:
        from ..whiten import whiten_waveforms

        return np.asarray(whiten_waveforms(spikes if rows is None else spikes.subset(rows)), dtype=np.float32)
    return spikes.scaled_waveforms(rows)


def blocks(n: int, size: int = TRANSFORM_BLOCK):
    """Consecutive ``slice``s of at most ``size`` rows covering ``range(n)``."""
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


def embed_noise_class(extractor: FeatureExtractor, spikes: Spikes, embedding: Embedding, n_per_electrode: int,
                      threshold: float, polarity: str = "neg", dead_time_ms: float = 0.5, seed: int = 0) -> Embedding:
    """``embedding`` with the features of synthetic pure-noise threshold crossings attached.

    The crossings (:func:`spikevae.noise_model.noise_crossings`) are embedded by the same
    fitted ``extractor``; the clustering uses them as its noise class, with each
    electrode's expected crossing rate as its prior. Returns the embedding unchanged
    when ``n_per_electrode`` is 0 or there are no noise snippets.
    """
    from ..noise_model import noise_crossings

    if n_per_electrode <= 0:
        return embedding
    noise, rate = noise_crossings(spikes, threshold, polarity, n_per_electrode, dead_time_ms, seed)
    if noise.n_spikes == 0:
        return embedding
    return dataclasses.replace(embedding, noise_features=extractor.transform(noise).features,
                               noise_electrode=noise.electrode, noise_rate_hz=rate)
