"""HDBSCAN per electrode (the design card's choice): density clusters, the rest unsorted."""
from __future__ import annotations

import numpy as np

from .base import BaseClusterer, relabel_consecutive


class HDBSCANClusterer(BaseClusterer):
    name = "hdbscan"
    params_doc = "cluster.hdbscan.min_cluster_size, min_samples, selection"

    def fit_predict(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import hdbscan

        c = self.config.hdbscan
        if x.shape[0] <= c.min_cluster_size:
            return np.full(x.shape[0], -1, dtype=np.int64)
        model = hdbscan.HDBSCAN(min_cluster_size=int(c.min_cluster_size),
                                min_samples=int(min(c.min_samples, x.shape[0] - 1)),
                                cluster_selection_method=c.selection, core_dist_n_jobs=1)
        return relabel_consecutive(model.fit_predict(np.asarray(x, dtype=np.float64)))
