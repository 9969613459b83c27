"""Distance-based cluster-isolation metrics in one shared feature space.

All metrics here judge a unit against the other spikes of its electrode in a feature space
that does not depend on how the sorting was made: by default the first principal components
of the electrode's noise-scaled waveforms (:func:`electrode_pca`). PCA and VAE sortings of the
same spikes are therefore measured with the same ruler.

Definitions follow the cited papers as implemented in SpikeInterface 0.105
(``spikeinterface.metrics.quality.pca_metrics``); differences are stated per function.
"""
from __future__ import annotations

import numpy as np

#: Spikes whose distances to the other centroids are computed at once (simplified silhouette).
SILHOUETTE_BLOCK = 8192


def electrode_pca(x: np.ndarray, n_components: int) -> np.ndarray:
    """Project the rows of ``x`` on their first principal components.

    Parameters
    ----------
    x : ndarray of shape (n_spikes, n_samples), float
        Noise-scaled waveforms of one electrode.
    n_components : int
        Components kept (fewer when ``x`` has fewer rows or columns).

    Returns
    -------
    ndarray of shape (n_spikes, k), float64, k = min(n_components, n_spikes, n_samples)
    (k = min(n_components, n_samples) when there are no spikes)
    """
    if np.shape(x)[0] == 0:
        return np.zeros((0, min(n_components, np.shape(x)[1])))
    xc = np.array(x, dtype=np.float64)  # a copy, centred in place: one float64 array of the electrode, not two
    k = min(n_components, xc.shape[0], xc.shape[1])
    xc -= xc.mean(axis=0)
    from threadpoolctl import threadpool_limits

    # Eigen-decomposition of the small (n_samples x n_samples) covariance: deterministic and fast.
    # One BLAS thread: on products this thin, threads only wait for each other (14 times slower
    # with 2 OpenBLAS threads on a busy 2-core machine; a third of the report of a 10-minute run).
    with threadpool_limits(1, user_api="blas"):
        _, vecs = np.linalg.eigh(xc.T @ xc)
        return xc @ vecs[:, ::-1][:, :k]


def mahalanobis_metrics(own: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Isolation distance and L-ratio (Schmitzer-Torbert et al. 2005, Neuroscience 131:1).

    With D² the squared Mahalanobis distance from the unit's mean under the unit's covariance
    and d the feature dimension:

    - isolation distance = D² of the n-th closest other spike, n = the unit's spike count;
      undefined (NaN) when there are fewer other spikes than unit spikes, as in the paper
      (SpikeInterface uses ``min(n_self, n_other)`` instead);
    - L-ratio = sum over other spikes of (1 - chi2_d.cdf(D²)) / n_self.

    Parameters
    ----------
    own : ndarray of shape (n_self, d)
    other : ndarray of shape (n_other, d)

    Returns
    -------
    isolation_distance, l_ratio : float (NaN when undefined or the covariance is singular)
    """
    from scipy.stats import chi2

    n_self, d = own.shape
    if n_self <= d or other.shape[0] < 2 or n_self < 2:
        return float("nan"), float("nan")
    cov = np.cov(own.T)
    try:
        vi = np.linalg.inv(np.atleast_2d(cov))
    except np.linalg.LinAlgError:
        return float("nan"), float("nan")
    diff = other - own.mean(axis=0)
    d2 = np.sort(np.einsum("ij,jk,ik->i", diff, vi, diff))
    l_ratio = float(np.sum(chi2.sf(d2, d)) / n_self)
    iso = float(d2[n_self - 1]) if other.shape[0] >= n_self else float("nan")
    return iso, l_ratio


def d_prime(own: np.ndarray, other: np.ndarray) -> float:
    """d' of the unit against the other spikes along Fisher's linear discriminant.

    Hill et al. 2011 (J Neurosci 31:8699): project both sets on w = S_w^-1 (mu_self - mu_other)
    (S_w the pooled within-class scatter, the direction of scikit-learn's
    ``LinearDiscriminantAnalysis`` used by SpikeInterface) and return
    ``(mean_self - mean_other) / sqrt((var_self + var_other) / 2)``. The sign is fixed so the
    unit projects higher (SpikeInterface's sign follows the SVD and can be negative).
    """
    if own.shape[0] < 2 or other.shape[0] < 2:
        return float("nan")
    mu1, mu0 = own.mean(axis=0), other.mean(axis=0)
    sw = (own - mu1).T @ (own - mu1) + (other - mu0).T @ (other - mu0)
    w = np.linalg.lstsq(np.atleast_2d(sw), mu1 - mu0, rcond=None)[0]
    p1, p0 = own @ w, other @ w
    denom = np.sqrt((p1.var() + p0.var()) / 2)
    return float((p1.mean() - p0.mean()) / denom) if denom > 0 else float("nan")


def simplified_silhouette(own: np.ndarray, other_centroids: np.ndarray) -> float:
    """Simplified silhouette (Hruschka et al. 2004), as SpikeInterface's default silhouette.

    a_i is the distance of spike i to the unit's centroid; b_i its distance to the centroid of
    the other cluster nearest on average to the unit's spikes;
    ``mean((b_i - a_i) / max(a_i, b_i))``. NaN when there is no other cluster.

    Parameters
    ----------
    own : ndarray of shape (n_self, d)
    other_centroids : ndarray of shape (n_clusters, d)
    """
    if own.shape[0] == 0 or other_centroids.shape[0] == 0:
        return float("nan")
    a = np.linalg.norm(own - own.mean(axis=0), axis=1)
    # distances to every centroid, a block of spikes at a time (a whole hour-long unit against
    # 20 centroids would hold n x 20 x d values at once)
    dist = np.concatenate([np.linalg.norm(own[i:i + SILHOUETTE_BLOCK, None, :] - other_centroids[None, :, :], axis=2)
                           for i in range(0, own.shape[0], SILHOUETTE_BLOCK)])
    b = dist[:, np.argmin(dist.mean(axis=0))]
    m = np.maximum(a, b)
    return float(np.mean(np.divide(b - a, m, out=np.zeros_like(m), where=m > 0)))


def nearest_neighbour_rates(x: np.ndarray, labels: np.ndarray, units, n_neighbors: int = 5,
                            max_spikes: int = 10000) -> dict:
    """Nearest-neighbour hit and miss rates of each unit (Chung et al. 2017, Neuron 95:1381).

    hit rate: fraction of the k nearest neighbours (self excluded) of the unit's spikes that
    belong to the unit; miss rate: fraction of the neighbours of the other spikes that belong
    to it. One k-NN search serves every unit of the electrode; beyond ``max_spikes`` spikes a
    regular strided subsample is used (SpikeInterface strides over the unit-first ordering of
    each unit instead). With a single cluster on the electrode, hit = 1 and miss = 0, as in
    SpikeInterface.

    Parameters
    ----------
    x : ndarray of shape (n_spikes, d)
    labels : ndarray of shape (n_spikes,), int
    units : iterable of int

    Returns
    -------
    dict unit -> (hit_rate, miss_rate)
    """
    units = list(units)
    if np.unique(labels).size <= 1:
        return {u: (1.0, 0.0) for u in units}
    if x.shape[0] > max_spikes:
        sel = np.linspace(0, x.shape[0] - 1, max_spikes).astype(np.int64)
        x, labels = x[sel], labels[sel]
    k = min(n_neighbors, x.shape[0] - 1)
    if k < 1:
        return {u: (float("nan"), float("nan")) for u in units}
    neigh = labels[_neighbours(x, k)]
    out = {}
    for u in units:
        mine = labels == u
        hit = float(np.mean(neigh[mine] == u)) if mine.any() else float("nan")
        miss = float(np.mean(neigh[~mine] == u)) if (~mine).any() else float("nan")
        out[u] = (hit, miss)
    return out


def _neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of the ``k`` nearest neighbours of each row of ``x``, itself excluded.

    A k-d tree queried for k + 1 neighbours in one thread (half the time of scikit-learn's
    search, which spends the rest on its thread pool): each row's own index is removed; when
    exact duplicates put it past the k + 1 found, the farthest one is dropped instead.
    """
    from scipy.spatial import cKDTree

    idx = cKDTree(x).query(x, k=k + 1, workers=1)[1]
    own = idx == np.arange(x.shape[0])[:, None]
    own[~own.any(axis=1), -1] = True
    return idx[~own].reshape(x.shape[0], k)
