"""isosplit6 per electrode (the clusterer of MountainSort 5): splits along unimodality tests."""
from __future__ import annotations

import numpy as np

from .base import BaseClusterer, relabel_consecutive


class IsosplitClusterer(BaseClusterer):
    name = "isosplit"
    params_doc = "cluster.isosplit.min_cluster_size"

    def fit_predict(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from isosplit6 import isosplit6

        n = x.shape[0]
        if n < 2 * self.config.isosplit.min_cluster_size:
            return np.zeros(n, dtype=np.int64)
        labels = np.asarray(isosplit6(np.ascontiguousarray(x, dtype=np.float64)), dtype=np.int64) - 1
        counts = np.bincount(labels[labels >= 0])
        labels[np.isin(labels, np.flatnonzero(counts < self.config.isosplit.min_cluster_size))] = -1
        return relabel_consecutive(labels)
