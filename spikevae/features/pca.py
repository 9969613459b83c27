"""PCA features: the baseline every learned feature space is compared with.

One PCA is fit on the noise-scaled waveforms of all electrodes pooled (a random
subsample of at most ``max_fit_spikes``), by an exact eigendecomposition of the
sample covariance (n_samples x n_samples, 48 x 48 at 30 kHz): deterministic, unlike a
randomised solver (MountainSort5's ``pca_solver`` avoids randomised SVD for the same
reason), and far cheaper than an SVD of the n_spikes x n_samples matrix. Each
component's sign is fixed so that its largest loading is positive.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import param
from ..errors import SpikevaeError
from ..objects import Embedding, Spikes
from .base import FeatureExtractor, blocks, model_input, sample_rows


@dataclass
class PCAParams:
    n_components: int = param(5, "number of principal components", low=1, high=64)
    whiten: bool = param(False, "noise-whiten waveforms first")
    max_fit_spikes: int = param(200000, "fit on at most this many spikes (random subsample)", low=100)
    seed: int = param(0, "seed of the fit subsample", low=0)


class PCAFeatures(FeatureExtractor):
    """Principal components of noise-scaled waveforms, fit on all electrodes pooled."""

    method = "pca"

    def __init__(self, config: PCAParams | None = None, **kwargs):
        self.config = config if config is not None else PCAParams(**kwargs)

    def fit(self, spikes: Spikes) -> "PCAFeatures":
        n, length = spikes.n_spikes, spikes.n_samples
        k = self.config.n_components
        if n < k + 1 or length < k:
            raise SpikevaeError(f"PCA with {k} components needs more than {k} spikes of at least {k} samples; "
                                f"got {n} spikes of {length} samples (lower features.n_components)")
        rng = np.random.default_rng(self.config.seed)
        rows = slice(None)  # only the fitted subsample (at most max_fit_spikes) is read
        if n > self.config.max_fit_spikes:
            rows = sample_rows(rng, n, self.config.max_fit_spikes)
        x = model_input(spikes, self.config.whiten, rows).astype(np.float64)
        mean = x.mean(axis=0)
        x -= mean  # centred in place: one float64 copy of the fit sample, not two
        cov = x.T @ x / max(x.shape[0] - 1, 1)
        del x
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1]
        evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
        comps = evecs[:, :k].T
        comps *= np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])[:, None]
        self.mean_ = mean.astype(np.float32)
        self.components_ = comps.astype(np.float32)
        self.explained_variance_ = evals[:k]
        self.explained_variance_ratio_ = evals[:k] / max(evals.sum(), 1e-12)
        self.fit_solver_ = "covariance_eigh"
        return self

    def transform(self, spikes: Spikes) -> Embedding:
        if not hasattr(self, "components_"):
            raise SpikevaeError("PCAFeatures.transform called before fit")
        feats = np.empty((spikes.n_spikes, self.components_.shape[0]), dtype=np.float32)
        for rows in blocks(spikes.n_spikes):  # block by block: the waveforms may be on disk
            feats[rows] = (model_input(spikes, self.config.whiten, rows) - self.mean_) @ self.components_.T
        params = self.get_params() | {"explained_variance_ratio": np.round(self.explained_variance_ratio_, 5).tolist()}
        return Embedding(feats, "pca", params)  # already float32: no copy of every spike's features
