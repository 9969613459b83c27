"""The model a finished run holds, rebuilt for classification without refitting.

A run folder stores its spikes, their embedding (with the features of the synthetic noise
crossings that form the clustering's noise class) and the sorting, but not the per-electrode
discriminant that last relabelled the spikes (:func:`spikevae.cluster.refine.relabel`) nor the
PCA basis. Both are rebuilt here from what is stored, so no pipeline change is needed:

- **features**: the run's VAE (``vae_model/``) or VaDE (``vade_model/``: its encoder's posterior
  means), or its PCA refitted on the stored spikes with
  the run's settings; the PCA fit is an exact, deterministic eigendecomposition, so the basis is
  the run's own, which is checked against the stored embedding (any difference is an error);
- **per electrode**: one Gaussian class per sorted unit (its spikes' mean and covariance in the
  run's feature space), the noise class (the stored noise-crossing features), and the priors of
  the relabelling (noise: Rice's expected crossing rate x duration / detections; units: their
  share of the rest), with the run's ``cluster.refine`` rule: a spike whose best posterior is
  below ``min_posterior``, or that lies beyond the chi-square ``gate_p`` tail of its unit, or
  that the noise class takes, stays unsorted (-1). These are the discriminants of the last
  relabelling round, trained on the final labels: the run's overlap resolution and last
  dissolve step are not replayed, which is why labels can differ from the run's sorting.

Detection uses the run's threshold in µV (its noise σ x ``detect.threshold``) and waveforms
are scaled by the run's noise σ, so that a new session is seen exactly as the model saw its
training data; a change of noise level shows as more or fewer spikes, not as moved features.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cluster.refine import NOISE_CLASS, Discriminant
from ..errors import SpikevaeError
from ..objects import Spikes

log = logging.getLogger(__name__)

_LOG2PI = np.log(2 * np.pi)


@dataclass
class ElectrodeClassifier:
    """Gaussian classes of one electrode, factorised for fast evaluation.

    Attributes
    ----------
    classes : ndarray of shape (k,), int64
        Global unit id of each class; :data:`~spikevae.cluster.refine.NOISE_CLASS` for noise.
    means : ndarray of shape (k, d)
    whiten : ndarray of shape (k, d, d)
        Inverse Cholesky factor of each class's discriminant covariance (pooled for LDA).
    logdet : ndarray of shape (k,)
    own_whiten : ndarray of shape (k, d, d)
        Inverse Cholesky factor of each class's own covariance (the distance gate).
    log_prior : ndarray of shape (k,)
    """

    classes: np.ndarray
    means: np.ndarray
    whiten: np.ndarray
    logdet: np.ndarray
    own_whiten: np.ndarray
    log_prior: np.ndarray

    @classmethod
    def from_discriminant(cls, disc: Discriminant, log_prior: np.ndarray) -> "ElectrodeClassifier":
        inv = [np.linalg.inv(np.linalg.cholesky(c)) for c in disc.cov_]
        own = [np.linalg.inv(np.linalg.cholesky(c)) for c in disc.own_cov_]
        logdet = np.array([2 * np.log(np.diag(np.linalg.cholesky(c))).sum() for c in disc.cov_])
        return cls(np.asarray(disc.classes_, np.int64), np.asarray(disc.means_, float), np.stack(inv), logdet,
                   np.stack(own), np.asarray(log_prior, float))

    def classify(self, x: np.ndarray, min_posterior: float, gate_d2: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit of every row of ``x`` (n, d) and why unsorted ones are unsorted.

        Returns
        -------
        unit : ndarray of shape (n,), int64
            Global unit id, or -1.
        reason : ndarray of shape (n,), int8
            0 sorted, 1 taken by the noise class, 2 doubtful (posterior or distance gate:
            a spike of no known unit).
        """
        diff = x[:, None, :] - self.means[None, :, :]  # (n, k, d)
        z = np.einsum("kij,nkj->nki", self.whiten, diff)
        logp = -0.5 * ((z ** 2).sum(-1) + self.logdet[None, :] + x.shape[1] * _LOG2PI) + self.log_prior[None, :]
        best = logp.argmax(1)
        rows = np.arange(x.shape[0])
        top = logp[rows, best]
        post = 1.0 / np.exp(logp - top[:, None]).sum(1)
        zb = np.einsum("nij,nj->ni", self.own_whiten[best], diff[rows, best])
        d2 = (zb ** 2).sum(1)
        cls = self.classes[best]
        noise = cls == NOISE_CLASS
        doubtful = ~noise & ((post < min_posterior) | (d2 > gate_d2))
        unit = np.where(noise | doubtful, -1, cls).astype(np.int64)
        reason = np.where(noise, 1, np.where(doubtful, 2, 0)).astype(np.int8)
        return unit, reason


@dataclass
class OnlineModel:
    """Everything needed to sort new data with a finished run's model.

    Attributes
    ----------
    extractor : FeatureExtractor
        Fitted PCA, VAE or VaDE.
    classifiers : dict
        Electrode index -> :class:`ElectrodeClassifier` (electrodes with no unit are absent).
    noise_uv : ndarray of shape (n_electrodes,), float32, µV
        The run's noise σ per electrode (threshold and feature scaling).
    channel_ids : ndarray of shape (n_electrodes,), str
    fs : float, Hz
    config : PipelineConfig
        The run's configuration (preprocess, detect, cluster settings).
    n_features : int
        Leading features the classifiers use.
    gate_d2 : float
        Squared Mahalanobis distance beyond which a spike is of no known unit (inf: no gate).
    description : str
        Which feature model and how the classifiers were made.
    noise_snippets, noise_electrode : ndarray, optional
        The run's noise snippets (needed by noise-whitened features).
    excluded_electrodes : ndarray of int64
        The run's artefact electrodes (:mod:`spikevae.artefacts`): their spikes are dropped.
    """

    extractor: object
    classifiers: dict
    noise_uv: np.ndarray
    channel_ids: np.ndarray
    fs: float
    config: object
    n_features: int
    gate_d2: float
    description: str
    peak_index: int
    n_samples: int
    noise_snippets: np.ndarray | None = None
    noise_electrode: np.ndarray | None = None
    excluded_electrodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_electrodes(self) -> int:
        return int(self.channel_ids.shape[0])

    def spikes(self, sample_index, electrode, waveforms) -> Spikes:
        """Spikes with this model's noise σ (so features are computed as in the run)."""
        waveforms = np.asarray(waveforms, np.float32)
        return Spikes(sample_index, electrode, waveforms,
                      waveforms[:, self.peak_index] if waveforms.shape[0] else np.zeros(0, np.float32),
                      self.noise_uv, self.fs, self.peak_index, self.channel_ids, self.noise_snippets,
                      self.noise_electrode)

    def features(self, spikes: Spikes) -> np.ndarray:
        """The classifiers' features of ``spikes`` (n, n_features), float64."""
        if spikes.n_spikes == 0:
            return np.zeros((0, self.n_features))
        f = self.extractor.transform(spikes).features
        return np.asarray(f[:, :self.n_features], dtype=np.float64)

    def classify_features(self, x: np.ndarray, electrode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit (-1 unsorted) and reason (0 sorted, 1 noise, 2 no known unit, 3 electrode without units)
        of every spike, from its features ``x`` (n, n_features) and electrode (n,).

        All electrodes are evaluated at once on the classes stacked by :meth:`stacked` (the same
        rule as :meth:`ElectrodeClassifier.classify`, electrode by electrode)."""
        st = self.stacked()
        n = x.shape[0]
        unit = np.full(n, -1, np.int64)
        reason = np.full(n, 3, np.int8)
        row = st["row"][electrode] if n else np.zeros(0, np.int64)
        has = np.flatnonzero(row >= 0)
        if has.size == 0:
            return unit, reason
        r, xs = row[has], x[has]
        diff = xs[:, None, :] - st["means"][r]  # (m, K, d)
        z = np.einsum("mkij,mkj->mki", st["whiten"][r], diff)
        logp = -0.5 * ((z ** 2).sum(-1) + st["logdet"][r] + x.shape[1] * _LOG2PI) + st["log_prior"][r]
        best = logp.argmax(1)
        m = np.arange(has.size)
        post = 1.0 / np.exp(logp - logp[m, best][:, None]).sum(1)
        zb = np.einsum("mij,mj->mi", st["own_whiten"][r, best], diff[m, best])
        cls = st["classes"][r, best]
        noise = cls == NOISE_CLASS
        doubtful = ~noise & ((post < self.config.cluster.refine.min_posterior) | ((zb ** 2).sum(1) > self.gate_d2))
        unit[has] = np.where(noise | doubtful, -1, cls)
        reason[has] = np.where(noise, 1, np.where(doubtful, 2, 0))
        return unit, reason

    def stacked(self) -> dict:
        """The classifiers of all electrodes as arrays padded to the largest class count (cached).

        ``row`` (n_electrodes,) is each electrode's row (-1 without units); padded classes have a
        log prior of -inf, so they are never chosen and add nothing to the posterior."""
        if getattr(self, "_stacked", None) is not None:
            return self._stacked
        els = sorted(self.classifiers)
        k = max((self.classifiers[e].classes.size for e in els), default=1)
        d = self.n_features
        out = {"row": np.full(self.n_electrodes, -1, np.int64), "classes": np.full((len(els), k), -1, np.int64),
               "means": np.zeros((len(els), k, d)), "whiten": np.tile(np.eye(d), (len(els), k, 1, 1)),
               "own_whiten": np.tile(np.eye(d), (len(els), k, 1, 1)), "logdet": np.zeros((len(els), k)),
               "log_prior": np.full((len(els), k), -np.inf)}
        for i, e in enumerate(els):
            c = self.classifiers[e]
            j = c.classes.size
            out["row"][e] = i
            for key, val in (("classes", c.classes), ("means", c.means), ("whiten", c.whiten),
                             ("own_whiten", c.own_whiten), ("logdet", c.logdet), ("log_prior", c.log_prior)):
                out[key][i, :j] = val
        self._stacked = out
        return out

    def classify_spikes(self, spikes: Spikes) -> tuple[np.ndarray, np.ndarray]:
        """Offline classification of detected spikes: unit and reason per spike (see :meth:`classify_features`)."""
        if spikes.n_samples != self.n_samples:
            raise SpikevaeError(f"waveforms have {spikes.n_samples} samples but the model's run cut "
                                f"{self.n_samples}; detect with the run's detect.window_ms")
        return self.classify_features(self.features(spikes), spikes.electrode)


def _extractor(run: Path, method: str, cfg, spikes: Spikes, stored: np.ndarray):
    """The run's fitted feature extractor, checked against the stored embedding."""
    if method == "vae":
        from ..features.vae import VAEFeatures

        if not (run / "vae_model" / "config.json").is_file():
            raise SpikevaeError(f"{run}: the run's features are VAE but vae_model/ is missing; rerun the sort")
        ex, what = VAEFeatures.load(run / "vae_model", device="cpu"), f"the run's VAE ({run / 'vae_model'})"
        # one chunk is a small batch: one torch thread embeds 1400 spikes in 6 ms where two took 120 ms
        # on the shared 2-core machine (threads spinning against each other and other processes)
        ex.config.num_threads = 1
    elif method == "vade":
        from ..features.vade import VaDEFeatures

        if not (run / "vade_model" / "vade.json").is_file():
            raise SpikevaeError(f"{run}: the run's features are VaDE but vade_model/ is missing; rerun the sort "
                                "(runs before VaDE models were saved have none)")
        ex = VaDEFeatures.load(run / "vade_model", device="cpu")
        what = f"the run's VaDE encoder, posterior means ({run / 'vade_model'})"
        ex.vae_.config.num_threads = 1  # as for the VAE: one thread is fastest on one chunk's spikes
    else:
        from ..features import PCAFeatures, PCAParams

        ex = PCAFeatures(PCAParams(n_components=cfg.features.n_components, whiten=cfg.features.whiten,
                                   seed=cfg.run.seed)).fit(spikes)
        what = "the run's PCA, refitted on its stored spikes"
    check = np.linspace(0, spikes.n_spikes - 1, min(500, spikes.n_spikes)).astype(int)
    got = ex.transform(spikes.subset(check)).features
    err = float(np.max(np.abs(got - stored[check]))) if check.size else 0.0
    if err > 1e-3 * max(1.0, float(np.abs(stored).max())):
        raise SpikevaeError(f"{run}: the rebuilt {method} features differ from the stored embedding "
                            f"(max difference {err:.3g}); the run may come from another version: rerun the sort")
    return ex, what


def _noise_prior(rate_hz: float, duration_s: float, n_spikes: int) -> float:
    """Expected fraction of noise crossings among an electrode's detections (as the clustering sets it)."""
    return float(np.clip(rate_hz * duration_s / max(n_spikes, 1), 1e-3, 0.9))


def _electrode_classifiers(x, electrode, labels, emb, cfg, duration_s, rng) -> dict:
    refine = cfg.cluster.refine
    use_noise = emb.noise_features is not None and refine.noise_class and refine.enabled
    nf = np.asarray(emb.noise_features, float)[:, :x.shape[1]] if use_noise else None
    out = {}
    for e in np.unique(electrode[labels >= 0]):
        idx = np.flatnonzero((electrode == e) & (labels >= 0))
        if idx.size > 20000:  # the relabelling's training cap
            idx = np.sort(rng.choice(idx, 20000, replace=False))
        xt, yt = x[idx], labels[idx]
        noise_x = nf[emb.noise_electrode == e] if use_noise else None
        with_noise = noise_x is not None and noise_x.shape[0] > x.shape[1]
        if with_noise:
            xt, yt = np.vstack([xt, noise_x]), np.concatenate([yt, np.full(noise_x.shape[0], NOISE_CLASS)])
        disc = Discriminant(refine.classifier).fit(xt, yt)
        log_prior = disc.log_prior_
        rate = float(emb.noise_rate_hz[e]) if with_noise and emb.noise_rate_hz is not None else float("nan")
        if with_noise and np.isfinite(rate):
            prior = _noise_prior(rate, duration_s, int((electrode == e).sum()))
            counts = np.exp(disc.log_prior_)
            is_noise = disc.classes_ == NOISE_CLASS
            units = counts * ~is_noise
            log_prior = np.log(np.where(is_noise, prior, (1 - prior) * units / units.sum()))
        out[int(e)] = ElectrodeClassifier.from_discriminant(disc, log_prior)
    return out


def load_online_model(run_dir, method: str | None = None) -> OnlineModel:
    """Rebuild the classification model of a finished run folder (see the module docstring).

    Parameters
    ----------
    run_dir : path
        Folder written by ``spikevae run``.
    method : str, optional
        Feature method whose sorting to follow (default: the run's ``features.method``).

    Raises
    ------
    SpikevaeError
        When the folder is not a run, lacks that sorting, or its features cannot be rebuilt.
    """
    from scipy import stats

    from ..params import load_config
    from ..store import RunStore
    from ..tracking.session import labels_of_spikes

    run = Path(run_dir)
    store = RunStore(run)
    if not store.path.exists():
        raise SpikevaeError(f"{run}: not a run folder (no run.h5); sort a recording first with "
                            f"`spikevae run REC -o {run}`")
    cfg = load_config(base=store.root_attrs().get("config", {}))
    method = method or cfg.features.method
    if method not in store.groups("sorting") or method not in store.groups("embedding"):
        raise SpikevaeError(f"{run}: the run has no '{method}' embedding and sorting (sortings: "
                            f"{', '.join(store.groups('sorting')) or 'none'})")
    spikes = store.load_spikes()
    if spikes.group_channels is not None:
        raise SpikevaeError(f"{run}: online classification of channel groups (input.groups) is not supported")
    emb = store.load_embedding(method, spikes.electrode, getattr(spikes.waveforms, "row", None)).in_memory()
    labels = labels_of_spikes(spikes, store.load_sorting(method))
    ex, what = _extractor(run, method, cfg, spikes, emb.features)
    n_feat = emb.features.shape[1] if cfg.cluster.n_features <= 0 else min(cfg.cluster.n_features,
                                                                             emb.features.shape[1])
    x = np.asarray(emb.features[:, :n_feat], dtype=np.float64)
    duration = (int(spikes.sample_index.max()) - int(spikes.sample_index.min()) + 1) / spikes.fs
    rng = np.random.default_rng([cfg.cluster.seed, 15])
    classifiers = _electrode_classifiers(x, spikes.electrode, labels, emb, cfg, duration, rng)
    refine = cfg.cluster.refine
    gate = float(stats.chi2.isf(refine.gate_p, n_feat)) if refine.gate_p > 0 else float("inf")
    desc = (f"{what}; per electrode, the {refine.classifier.upper()} of the run's final units"
            + (" and its noise class" if emb.noise_features is not None and refine.noise_class else ""))
    log.info("online model from %s: %d electrodes with units, %d units", run, len(classifiers),
             int(np.unique(labels[labels >= 0]).size))
    art = store.load_artefacts()
    return OnlineModel(ex, classifiers, spikes.noise_uv, spikes.channel_ids, spikes.fs, cfg, n_feat, gate, desc,
                       spikes.peak_index, spikes.n_samples, spikes.noise_snippets, spikes.noise_electrode,
                       art.excluded_electrodes if art is not None else np.zeros(0, np.int64))
