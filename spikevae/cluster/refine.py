"""Refinement of one electrode's clusters: split, merge, discriminant relabelling.

Each round (issue 7, after the prototype that reached 89-94 % of the supervised probe):

1. **split** a unit whose spikes, projected on the axis that best separates a
   two-component mixture fitted to them, are clearly bimodal (BIC of one vs two
   1-D Gaussians, margin ``split_bic_margin``);
2. **merge** the pair of units whose spikes, projected on their linear-discriminant
   direction, one Gaussian fits as well as two (BIC on a fixed-size subsample of
   ``merge_sample`` points: the sample size sets how far apart two units must be
   to stay apart), repeatedly, best pair first;
3. **relabel** every spike of the electrode, unsorted ones included, with a
   linear (or quadratic) discriminant trained on the current units; a spike whose
   best posterior is below ``min_posterior``, or whose Mahalanobis distance to its
   unit is beyond the chi-square ``gate_p`` tail, stays unsorted, so that noise and
   small background units are not absorbed;
4. **dissolve** units with too few spikes or a mean peak below ``min_unit_snr``.

Rounds repeat until fewer than ``tol`` of the labels change.

With ``noise_class`` and the features of synthetic noise threshold crossings
(:mod:`spikevae.noise_model`), the relabelling discriminant has a noise class whose
spikes stay unsorted; its prior is the expected fraction of noise crossings among the
electrode's detections (Rice's rate x duration). Measured (``bench_cluster.py``, seeds
0-4): detections that match no unit and end in a unit fell from 100 % to 9 %, units
from 265 to 218 for 201 scored, mean accuracy 0.584 -> 0.583; sample_data (20 s) 0.492 ->
0.527, Quiroga Easy1 0.938 -> 0.967. A prior from the synthetic sample's size instead
let units vanish into the noise (0.574); the class in the last round only left 23 %
of the noise in units.

Units smaller than ``min_unit_spikes`` are dissolved unless they lie far (``FAR_DPRIME``
on the discriminant axis) from every other spike: a large unit that fired rarely in a
short recording (Harris 2000, 11 spikes in 5 s: 0.0 -> 1.0, simulations unchanged).
"""
from __future__ import annotations

import numpy as np

from .base import relabel_consecutive

_LOG2PI = np.log(2 * np.pi)
#: Label of the noise class (synthetic threshold crossings of noise) in the discriminant.
NOISE_CLASS = -2
#: Separation (in pooled standard deviations on the discriminant axis) beyond which two
#: units are never merged: equal Gaussians 4 σ apart are clearly bimodal.
FAR_DPRIME = 4.0
#: Spikes of a unit that count as much as its whole-recording mean in a time window's mean (shrinkage).
WINDOW_PRIOR_SPIKES = 20


def _subsample(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return idx if idx.shape[0] <= n else rng.choice(idx, n, replace=False)


def _reg_cov(x: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    cov = np.cov(x, rowvar=False).reshape(d, d) if x.shape[0] > 1 else np.zeros((d, d))
    return cov + (1e-3 * max(np.trace(cov) / d, 1e-6)) * np.eye(d)


def discriminant_axis(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Unit vector of Fisher's linear discriminant between two point sets, shape (d,)."""
    pooled = (_reg_cov(xa) * (len(xa) - 1) + _reg_cov(xb) * (len(xb) - 1)) / max(len(xa) + len(xb) - 2, 1)
    w = np.linalg.solve(pooled, xa.mean(0) - xb.mean(0))
    norm = np.linalg.norm(w)
    return w / norm if norm > 0 else np.eye(xa.shape[1])[0]


def two_gaussians_1d(p: np.ndarray, n_iter: int = 60) -> tuple[float, np.ndarray]:
    """Compare one 1-D Gaussian with a two-component mixture fitted by EM (split at the median).

    Returns
    -------
    delta : float
        BIC(one) - BIC(two); positive values favour two components.
    resp : ndarray of shape (n,)
        Each value's posterior probability of the upper component.
    """
    p = np.asarray(p, dtype=np.float64)
    n = p.shape[0]
    if n < 6:
        return -np.inf, np.zeros(n)
    p = (p - p.mean()) / max(p.std(), 1e-12)
    ll1 = -0.5 * n * (_LOG2PI + 1.0)  # standardised data: variance 1
    r = (p > np.median(p)).astype(np.float64)
    ll2 = -np.inf
    # Each array expression is computed once per iteration (the test runs on up to a thousand values,
    # where numpy's per-call overhead is most of the time): a third faster, the same values bit for bit.
    for _ in range(n_iter):
        q = 1 - r
        s1, s0 = r.sum(), q.sum()
        w = min(max(s1 / n, 1e-3), 1 - 1e-3)
        m1, m0 = (r @ p) / max(s1, 1e-9), (q @ p) / max(s0, 1e-9)
        d1, d0 = (p - m1) ** 2, (p - m0) ** 2
        v1 = max((r @ d1) / max(s1, 1e-9), 1e-4)
        v0 = max((q @ d0) / max(s0, 1e-9), 1e-4)
        l1 = np.log(w) - 0.5 * (_LOG2PI + np.log(v1) + d1 / v1)
        l0 = np.log(1 - w) - 0.5 * (_LOG2PI + np.log(v0) + d0 / v0)
        top = np.maximum(l1, l0)
        lse = top + np.log(np.exp(l1 - top) + np.exp(l0 - top))
        new_ll = lse.sum()
        r = np.exp(l1 - lse)
        if new_ll - ll2 < 1e-6 * n:
            ll2 = max(ll2, new_ll)
            break
        ll2 = new_ll
    return float((-2 * ll1 + 2 * np.log(n)) - (-2 * ll2 + 5 * np.log(n))), r


def bic_one_minus_two(p: np.ndarray, n_iter: int = 60) -> float:
    """BIC(one 1-D Gaussian) - BIC(two-component 1-D mixture) for the values ``p``
    (positive favours two components)."""
    return two_gaussians_1d(p, n_iter)[0]


def dip_evidence(p: np.ndarray) -> float:
    """-log10 of the p-value of Hartigan's dip test of unimodality (high = two modes)."""
    try:
        import diptest
    except ImportError as exc:  # optional dependency
        from ..errors import SpikevaeConfigError

        raise SpikevaeConfigError("cluster.refine.merge_test=dip needs the diptest package: pip install diptest, "
                                  "or set cluster.refine.merge_test=bic") from exc
    pval = float(diptest.diptest(np.asarray(p, dtype=np.float64))[1])
    return float(-np.log10(max(pval, 1e-300)))


def pair_merge_score(x: np.ndarray, ia: np.ndarray, ib: np.ndarray, n_sample: int,
                     rng: np.random.Generator, test: str = "bic") -> float:
    """Evidence that units a and b are two modes on their discriminant axis (low = merge).

    ``test="bic"``: BIC(1) - BIC(2) of 1-D Gaussian fits; ``test="dip"``: -log10 of the
    p-value of Hartigan's dip test. Pairs farther apart than ``FAR_DPRIME`` on that axis
    are two modes whatever the sample; they score +inf without the test (most pairs, and
    most of the time).
    """
    w = discriminant_axis(x[ia], x[ib])
    pa, pb = x[ia] @ w, x[ib] @ w
    if abs(pa.mean() - pb.mean()) > FAR_DPRIME * np.sqrt(0.5 * (pa.var() + pb.var()) + 1e-12):
        return np.inf
    both = _subsample(np.concatenate([ia, ib]), n_sample, rng)
    return dip_evidence(x[both] @ w) if test == "dip" else bic_one_minus_two(x[both] @ w)


def local_pair(t: np.ndarray, ia: np.ndarray, ib: np.ndarray, window_s: float,
               min_spikes: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The spikes of units a and b (indices ``ia``, ``ib``; spike times ``t`` in s) in the two
    consecutive windows of ``window_s`` where the smaller of the two counts is largest: where
    the units fire together, or, for two pieces of one unit taking turns, where one ends and
    the other begins. Slow drift barely moves either unit there. All of both when the recording
    spans fewer than three windows or no such span holds ``min_spikes`` of each."""
    t0 = min(t[ia].min(), t[ib].min())
    edges = np.arange(t0, max(t[ia].max(), t[ib].max()) + window_s, window_s)
    if edges.size < 4:
        return ia, ib
    ca, cb = np.histogram(t[ia], edges)[0], np.histogram(t[ib], edges)[0]
    both = np.minimum(ca[:-1] + ca[1:], cb[:-1] + cb[1:])
    k = int(np.argmax(both))
    if both[k] < min_spikes:
        return ia, ib
    lo, hi = edges[k], edges[k + 2]
    return ia[(t[ia] >= lo) & (t[ia] < hi)], ib[(t[ib] >= lo) & (t[ib] < hi)]


def merge_units(x: np.ndarray, labels: np.ndarray, cfg, rng: np.random.Generator,
                times: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Merge unit pairs that form one mode on their discriminant axis (``cfg.merge_test``), best first.

    With ``times`` (s) and ``cfg.merge_window_s`` > 0, each pair is tested on its spikes in two
    consecutive windows of that length (:func:`local_pair`), not on the whole recording, where
    drift stretches neighbouring units into each other.

    Returns the new labels and the number of merges.
    """
    local = times is not None and getattr(cfg, "merge_window_s", 0) > 0
    labels = labels.copy()
    cache: dict[tuple[int, int], float] = {}
    n_merges = 0
    while True:
        units = [int(u) for u in np.unique(labels) if u >= 0]
        if len(units) < 2:
            break
        members = {u: np.flatnonzero(labels == u) for u in units}
        best, best_pair = np.inf, None
        for i, a in enumerate(units):
            for b in units[i + 1:]:
                if (a, b) not in cache:
                    ia, ib = local_pair(times, members[a], members[b], cfg.merge_window_s) if local \
                        else (members[a], members[b])
                    cache[(a, b)] = pair_merge_score(x, ia, ib, cfg.merge_sample, rng, cfg.merge_test)
                if cache[(a, b)] < best:
                    best, best_pair = cache[(a, b)], (a, b)
        threshold = -np.log10(cfg.merge_dip_p) if cfg.merge_test == "dip" else cfg.merge_bic_margin
        if best_pair is None or best >= threshold:
            break
        a, b = best_pair
        labels[labels == b] = a
        cache = {k: v for k, v in cache.items() if a not in k and b not in k}
        n_merges += 1
    return labels, n_merges


def time_overlap(t: np.ndarray, part: np.ndarray, window_s: float) -> float:
    """Overlap (0-1) of the firing-time histograms of two parts of a unit, in windows of ``window_s``.

    ``t`` (n,) are spike times in seconds and ``part`` (n,) the part (0 or 1) of each spike.
    Two units firing through the recording overlap near 1 (less by the counting noise of the
    windows, which depends on the rate, not the recording's length); the two halves of one unit
    whose amplitude drifts fire at different times and overlap little.
    """
    edges = np.arange(t.min(), t.max() + window_s, window_s)
    if edges.size < 3:  # one window: nothing to compare
        return 1.0
    h1 = np.histogram(t[part == 1], edges)[0] / max(int((part == 1).sum()), 1)
    h0 = np.histogram(t[part == 0], edges)[0] / max(int((part == 0).sum()), 1)
    return float(np.minimum(h0, h1).sum())


def split_units(x: np.ndarray, labels: np.ndarray, cfg, rng: np.random.Generator,
                times: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Split units whose spikes are clearly bimodal on the axis of a 2-component mixture.

    With ``times`` (n,) in seconds, a split whose two parts fire at different times
    (:func:`time_overlap` below ``cfg.split_min_time_overlap``) is refused: it cuts a
    drifting unit in two."""
    from .gmm import FullGaussianMixture

    labels = labels.copy()
    n_splits = 0
    next_label = labels.max() + 1 if labels.size else 0
    for u in [int(u) for u in np.unique(labels) if u >= 0]:
        idx = np.flatnonzero(labels == u)
        if idx.shape[0] < 4 * cfg.min_unit_spikes:
            continue
        fit_idx = _subsample(idx, cfg.split_fit_sample, rng)
        gm = FullGaussianMixture(2, reg_covar=1e-3, random_state=int(rng.integers(2**31 - 1)))
        sub = gm.fit(x[fit_idx]).predict(x[fit_idx])
        if min(np.bincount(sub, minlength=2)) < 0.05 * sub.shape[0]:
            continue
        w = discriminant_axis(x[fit_idx][sub == 0], x[fit_idx][sub == 1])
        test = _subsample(idx, cfg.split_sample, rng)
        if bic_one_minus_two(x[test] @ w) > cfg.split_bic_margin:
            part = gm.predict(x[idx])
            if min(np.bincount(part, minlength=2)) >= cfg.min_unit_spikes and (
                    times is None or cfg.split_min_time_overlap <= 0
                    or time_overlap(times[idx], part, cfg.split_window_s) >= cfg.split_min_time_overlap):
                labels[idx[part == 1]] = next_label
                next_label += 1
                n_splits += 1
    return labels, n_splits


class Discriminant:
    """Gaussian class model for relabelling: shared (LDA) or per-class (QDA) covariance.

    Parameters
    ----------
    kind : {"lda", "qda"}
    """

    def __init__(self, kind: str = "lda") -> None:
        self.kind = kind

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Discriminant":
        self.classes_ = np.unique(y)
        d = x.shape[1]
        self.means_ = np.stack([x[y == c].mean(0) for c in self.classes_])
        counts = np.array([(y == c).sum() for c in self.classes_], dtype=np.float64)
        self.log_prior_ = np.log(counts / counts.sum())
        own = [_reg_cov(x[y == c]) if (y == c).sum() > d else None for c in self.classes_]
        pooled = sum((cv * (k - 1) for cv, k in zip(own, counts) if cv is not None), np.zeros((d, d)))
        pooled = pooled / max(counts.sum() - len(counts), 1) + 1e-6 * np.eye(d)
        self.own_cov_ = [cv if cv is not None else pooled for cv in own]
        self.cov_ = [pooled] * len(counts) if self.kind == "lda" else self.own_cov_
        return self

    @staticmethod
    def _maha(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, float]:
        from scipy.linalg import solve_triangular

        chol = np.linalg.cholesky(cov)
        z = solve_triangular(chol, (x - mean).T, lower=True, check_finite=False)
        return (z**2).sum(0), 2 * np.log(np.diag(chol)).sum()

    def log_likelihood(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log density of every row of ``x`` under each class (n, k), and the squared
        Mahalanobis distance to each class under the class's own covariance (n, k)."""
        logl = np.empty((x.shape[0], len(self.classes_)))
        own_d2 = np.empty_like(logl)
        for k, (m, cov) in enumerate(zip(self.means_, self.cov_)):
            d2, logdet = self._maha(x, m, cov)
            logl[:, k] = -0.5 * (d2 + logdet + x.shape[1] * _LOG2PI)
            own_d2[:, k] = d2 if self.kind == "qda" else self._maha(x, m, self.own_cov_[k])[0]
        return logl, own_d2

    def predict(self, x: np.ndarray, log_prior: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class, its posterior, and the squared Mahalanobis distance to the class
        under the class's own covariance, for every row of ``x``.

        ``log_prior`` (k,) replaces the class priors learnt from the training counts.
        """
        logl, own_d2 = self.log_likelihood(x)
        logp = logl + (self.log_prior_ if log_prior is None else log_prior)[None, :]
        best = logp.argmax(1)
        top = logp[np.arange(len(best)), best]
        post = 1.0 / np.exp(logp - top[:, None]).sum(1)
        return self.classes_[best], post, own_d2[np.arange(len(best)), best]


def relabel(x: np.ndarray, labels: np.ndarray, cfg, rng: np.random.Generator,
            max_train: int = 20000, noise_x: np.ndarray | None = None,
            noise_prior: float | None = None, keep_noise: bool = False,
            times: np.ndarray | None = None) -> np.ndarray:
    """Relabel every spike with a discriminant trained on the current units' spikes.

    With ``noise_x`` (features of synthetic noise threshold crossings) the discriminant
    has a noise class too, whose spikes stay unsorted. Its prior is ``noise_prior``, the
    expected fraction of noise crossings among the detections (the synthetic sample's
    size says nothing about it; when None, the training counts are used); the units
    share the rest in proportion to their sizes. ``keep_noise`` labels those spikes
    ``NOISE_CLASS`` instead of -1 (both mean unsorted).

    With ``times`` (n,) in seconds and ``cfg.relabel_window_s`` > 0, each unit's mean
    follows it through the recording: the spikes of each window are classified with the
    units' means in that window (see :func:`_predict_in_windows`).
    """
    known = np.flatnonzero(labels >= 0)
    if known.size == 0:
        return labels.copy()
    train = _subsample(known, max_train, rng)
    xt, yt = x[train], labels[train]
    with_noise = noise_x is not None and noise_x.shape[0] > x.shape[1]
    if with_noise:
        xt = np.vstack([xt, noise_x])
        yt = np.concatenate([yt, np.full(noise_x.shape[0], NOISE_CLASS)])
    model = Discriminant(cfg.classifier).fit(xt, yt)
    log_prior = None
    if with_noise and noise_prior is not None:
        counts = np.exp(model.log_prior_)
        is_noise = model.classes_ == NOISE_CLASS
        units = counts * ~is_noise
        log_prior = np.log(np.where(is_noise, noise_prior, (1 - noise_prior) * units / units.sum()))
    if times is not None and cfg.relabel_window_s > 0:
        cls, post, d2 = _predict_in_windows(model, x, labels, times, cfg.relabel_window_s, log_prior)
    else:
        cls, post, d2 = model.predict(x, log_prior)
    out = cls.astype(np.int64)
    doubtful = post < cfg.min_posterior
    if cfg.gate_p > 0:
        from scipy import stats

        doubtful |= d2 > stats.chi2.isf(cfg.gate_p, x.shape[1])
    out[doubtful & (out != NOISE_CLASS)] = -1
    if not keep_noise:
        out[out == NOISE_CLASS] = -1
    return out


def _predict_in_windows(model: Discriminant, x: np.ndarray, labels: np.ndarray, times: np.ndarray,
                        window_s: float, log_prior: np.ndarray | None):
    """:meth:`Discriminant.predict` window by window, with each unit's mean taken from its
    current spikes (``labels``) in the window, shrunk towards its whole-recording mean by
    ``WINDOW_PRIOR_SPIKES``. Slow amplitude drift moves a unit's cloud over the recording;
    within a window it stays put, so units that the drift makes overlap stay apart."""
    win = ((times - times.min()) // window_s).astype(np.int64)
    cls = np.empty(x.shape[0], dtype=model.classes_.dtype)
    post, d2 = np.empty(x.shape[0]), np.empty(x.shape[0])
    is_unit = model.classes_ >= 0
    for w in np.unique(win):
        rows = np.flatnonzero(win == w)
        local = Discriminant(model.kind)
        local.__dict__.update(model.__dict__)
        local.means_ = model.means_.copy()
        lab = labels[rows]
        for k in np.flatnonzero(is_unit):
            mine = rows[lab == model.classes_[k]]
            prior = WINDOW_PRIOR_SPIKES * model.means_[k]
            local.means_[k] = (x[mine].sum(0) + prior) / (mine.size + WINDOW_PRIOR_SPIKES)
        cls[rows], post[rows], d2[rows] = local.predict(x[rows], log_prior)
    return cls, post, d2


def isolated(x: np.ndarray, mine: np.ndarray) -> bool:
    """Whether the spikes ``mine`` (boolean mask) lie farther than ``FAR_DPRIME`` pooled standard
    deviations from all other spikes on their discriminant axis."""
    rest = ~mine
    if rest.sum() <= x.shape[1] or mine.sum() <= x.shape[1]:
        return bool(rest.sum() == 0)
    w = discriminant_axis(x[mine], x[rest])
    pa, pb = x[mine] @ w, x[rest] @ w
    return bool(abs(pa.mean() - pb.mean()) > FAR_DPRIME * np.sqrt(0.5 * (pa.var() + pb.var()) + 1e-12))


def dissolve_weak(labels: np.ndarray, peak_scaled: np.ndarray, cfg,
                  x: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Unsort units with a mean peak below ``min_unit_snr`` σ, and units with fewer than
    ``min_unit_spikes`` spikes unless (given the features ``x``) they are isolated from
    every other spike of the electrode (a large unit that fired rarely)."""
    labels = labels.copy()
    n = 0
    for u in [int(u) for u in np.unique(labels) if u >= 0]:
        m = labels == u
        small = m.sum() < cfg.min_unit_spikes and not (
            x is not None and m.sum() >= cfg.min_isolated_spikes and isolated(x, m))
        if small or abs(float(np.mean(peak_scaled[m]))) < cfg.min_unit_snr:
            labels[m] = -1
            n += 1
    return labels, n


def refine(x: np.ndarray, labels: np.ndarray, peak_scaled: np.ndarray, cfg,
           rng: np.random.Generator, noise_x: np.ndarray | None = None,
           noise_prior: float | None = None, times: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Iterate split -> merge -> relabel -> dissolve on one electrode.

    Parameters
    ----------
    x : ndarray of shape (n_spikes, n_features)
        The electrode's features.
    labels : ndarray of shape (n_spikes,), int
        Initial labels (-1 = unsorted; spikes not in the fit subsample are -1).
    peak_scaled : ndarray of shape (n_spikes,)
        Each spike's waveform value at the peak index, in noise σ.
    cfg : RefineConfig
    rng : numpy.random.Generator
    noise_x : ndarray of shape (m, n_features), optional
        Features of synthetic noise threshold crossings on this electrode: with
        ``cfg.noise_class``, the relabelling's noise class (its spikes stay unsorted).
    noise_prior : float, optional
        Expected fraction of the electrode's detections that are noise crossings.
    times : ndarray of shape (n_spikes,), optional
        Spike times in seconds: splits whose parts fire at different times are refused
        (see :func:`split_units`).

    Returns
    -------
    labels : ndarray of shape (n_spikes,), int64, consecutive from 0, -1 unsorted
    stats : dict
        Counts of ``splits``, ``merges``, ``dissolved`` and ``rounds`` run, and
        ``noise``: spikes the noise class took in the last round.
    """
    x = np.asarray(x, dtype=np.float64)
    labels, n_weak = dissolve_weak(relabel_consecutive(labels), peak_scaled, cfg, x)
    st = {"splits": 0, "merges": 0, "dissolved": n_weak, "rounds": 0, "noise": 0}
    if not cfg.noise_class:
        noise_x = None
    for _ in range(cfg.n_rounds):
        before = labels.copy()
        if cfg.split:
            labels, k = split_units(x, labels, cfg, rng, times)
            st["splits"] += k
        if cfg.merge:
            labels, k = merge_units(x, labels, cfg, rng, times)
            st["merges"] += k
        labels = relabel(x, labels, cfg, rng, noise_x=noise_x, noise_prior=noise_prior, keep_noise=True,
                         times=times)
        st["noise"] = int((labels == NOISE_CLASS).sum())
        labels, k = dissolve_weak(labels, peak_scaled, cfg, x)
        st["dissolved"] += k
        labels = relabel_consecutive(labels)
        st["rounds"] += 1
        if np.mean(before != labels) < cfg.tol:
            break
    return labels, st
