"""The interface every initial clusterer follows, and the registry that picks one by name.

An initial clusterer sees the features of one electrode and returns a label per
spike (-1 = left unsorted). It is built from the :class:`ClusterConfig` and a
``numpy.random.Generator``; it keeps no state between electrodes.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpikevaeConfigError


class BaseClusterer:
    """One electrode's initial clustering.

    Subclasses set ``name`` and ``params_doc`` and implement :meth:`fit_predict`.
    """

    name = ""
    params_doc = ""

    def __init__(self, config) -> None:
        self.config = config

    def fit_predict(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Cluster one electrode's spikes.

        Parameters
        ----------
        x : ndarray of shape (n_spikes, n_features), float
        rng : numpy.random.Generator

        Returns
        -------
        labels : ndarray of shape (n_spikes,), int64
            0..k-1, or -1 for spikes left unsorted.
        """
        raise NotImplementedError


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Map the non-negative labels onto 0..k-1 (in order of first value), keeping -1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    ok = labels >= 0
    if ok.any():
        _, inv = np.unique(labels[ok], return_inverse=True)
        out[ok] = inv
    return out


def clusterer_registry() -> dict[str, type[BaseClusterer]]:
    """Name -> clusterer class (imported lazily so that no clustering package loads at import)."""
    from .hdbscan import HDBSCANClusterer
    from .isosplit import IsosplitClusterer
    from .mixture import MixtureClusterer

    return {c.name: c for c in (HDBSCANClusterer, IsosplitClusterer, MixtureClusterer)}


def get_clusterer(config) -> BaseClusterer:
    """The initial clusterer named by ``config.method``.

    Raises
    ------
    SpikevaeConfigError
        If the name is not registered; the message lists the valid names.
    """
    registry = clusterer_registry()
    if config.method not in registry:
        raise SpikevaeConfigError(
            f"cluster.method={config.method!r}: unknown clusterer; valid names are {', '.join(sorted(registry))}"
        )
    return registry[config.method](config)
