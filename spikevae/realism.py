"""How realistic are generated waveforms? Two-sample measures against real spikes.

- :func:`classifier_two_sample_auc`: a classifier is trained to tell real from generated
  waveforms; its cross-validated ROC AUC is 0.5 when the two sets are indistinguishable
  to it and 1 when they are perfectly separable (C2ST, Lopez-Paz & Oquab 2017).
- :func:`frechet_distance_pca`: the Fréchet (2-Wasserstein) distance between Gaussians
  fitted to both sets in the PCA space of the real waveforms (the FID of Heusel et al.
  2017, with PCA in place of Inception features). 0 for identical sets.
- :func:`gaussian_pca_baseline`: the simplest generator to beat, a Gaussian fitted in
  PCA space and projected back.

All functions take (n, L) arrays of waveforms in the same unit (e.g. noise σ).
"""
from __future__ import annotations

import numpy as np
from .errors import SpikevaeError


def _check_pair(real: np.ndarray, fake: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise SpikevaeError(f"real {real.shape} and fake {fake.shape} must be (n, L) arrays of one length L")
    if min(len(real), len(fake)) < min_n:
        raise SpikevaeError(f"need at least {min_n} waveforms in each set, got {len(real)} real and {len(fake)} fake")
    return real, fake


def _classifier(kind: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if kind == "boosting":
        return HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, learning_rate=0.1, random_state=seed)
    raise SpikevaeError(f"classifier {kind!r}: use 'logistic', 'boosting' or 'both'")


def classifier_two_sample_auc(real: np.ndarray, fake: np.ndarray, seed: int = 0, cv: int = 5,
                              classifier: str = "both", max_per_class: int = 5000) -> float:
    """Cross-validated ROC AUC of a classifier telling real from generated waveforms.

    The classifier-two-sample test (C2ST) of Lopez-Paz & Oquab, "Revisiting classifier
    two-sample tests", ICLR 2017: if a classifier cannot beat chance on held-out data, the
    two samples are indistinguishable to it. Classes are balanced by subsampling the larger
    set (at most ``max_per_class`` each); every waveform is scored once, out of fold
    (stratified ``cv``-fold), and the AUC is computed on those out-of-fold scores.

    Parameters
    ----------
    real, fake : ndarray of shape (n, L)
    seed : int
        Subsampling, fold assignment and classifier randomness.
    cv : int
        Number of folds.
    classifier : {"both", "logistic", "boosting"}
        Logistic regression on standardised samples, gradient-boosted trees, or the larger
        AUC of the two (a sharper test: either may find the difference).

    Returns
    -------
    float
        AUC in [0, 1]; 0.5 = indistinguishable, 1 = perfectly separable. Values below 0.5
        are chance fluctuations.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    real, fake = _check_pair(real, fake, cv)
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake), max_per_class)
    x = np.concatenate([real[rng.choice(len(real), n, replace=False)], fake[rng.choice(len(fake), n, replace=False)]])
    y = np.r_[np.ones(n), np.zeros(n)]
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    kinds = ("logistic", "boosting") if classifier == "both" else (classifier,)
    aucs = []
    for kind in kinds:
        score = cross_val_predict(_classifier(kind, seed), x, y, cv=folds, method="predict_proba")[:, 1]
        aucs.append(roc_auc_score(y, score))
    return float(max(aucs))


def _gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_pca(real: np.ndarray, fake: np.ndarray, n_components: int = 5) -> float:
    """Fréchet distance between Gaussians fitted to ``real`` and ``fake`` in the PCA space of ``real``.

    d² = |μ_r − μ_f|² + tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½), the distance Heusel et al. use in
    "GANs trained by a two time-scale update rule converge to a local Nash equilibrium"
    (NeurIPS 2017, the FID), here on the first ``n_components`` principal components of the
    real waveforms instead of Inception features. Returned as d² (as FID is), in the squared
    unit of the waveforms; 0 for identical sets.

    Parameters
    ----------
    real, fake : ndarray of shape (n, L)
    n_components : int
        PCA dimensions (at most min(L, n_real - 1)).
    """
    from sklearn.decomposition import PCA

    real, fake = _check_pair(real, fake, 2)
    k = int(min(n_components, real.shape[1], len(real) - 1))
    pca = PCA(n_components=k).fit(real)
    mu_r, cov_r = _gaussian(pca.transform(real))
    mu_f, cov_f = _gaussian(pca.transform(fake))
    # tr (Σ_r Σ_f)^½ = tr (Σ_r^½ Σ_f Σ_r^½)^½, a symmetric PSD matrix: eigendecompositions, no sqrtm
    root_r = _psd_sqrt(cov_r)
    tr_covmean = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_r @ cov_f @ root_r), 0.0, None)))
    d2 = np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r) + np.trace(cov_f) - 2.0 * tr_covmean
    return float(max(d2, 0.0))


def gaussian_pca_baseline(real: np.ndarray, n: int, seed: int = 0, n_components: int = 8) -> np.ndarray:
    """``n`` waveforms from a Gaussian fitted to ``real`` in PCA space, projected back.

    The principal-component scores of ``real`` are modelled as one Gaussian (mean, full
    covariance); draws are mapped back by the inverse PCA transform, so what the first
    ``n_components`` components do not capture (most of the noise) is absent. The
    baseline a learned generator has to beat.

    Returns
    -------
    ndarray of shape (n, L), float64
    """
    from sklearn.decomposition import PCA

    real = np.asarray(real, dtype=np.float64)
    if real.ndim != 2 or len(real) < 2:
        raise SpikevaeError(f"need an (n >= 2, L) array of real waveforms, got shape {real.shape}")
    k = int(min(n_components, real.shape[1], len(real) - 1))
    pca = PCA(n_components=k).fit(real)
    mu, cov = _gaussian(pca.transform(real))
    scores = np.random.default_rng(seed).multivariate_normal(mu, cov, size=int(n), method="eigh")
    return pca.inverse_transform(scores)
