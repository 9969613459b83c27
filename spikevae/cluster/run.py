"""``cluster_spikes``: per-electrode clustering, refinement and overlap resolution.

Electrode by electrode (Utah electrodes are 400 µm apart, so a neuron is seen on
one): initial clusterer (``config.method``) on at most ``max_fit_spikes`` spikes,
then refinement, which also assigns the spikes left out of the fit, then overlap
resolution. An electrode whose spikes span two time windows or more (``config.windows``) is
clustered window by window and the windows' units linked (:mod:`spikevae.cluster.windows`),
which follows slow drift over long recordings. Each electrode draws its own generator from (seed, electrode), so
results do not depend on ``n_jobs`` or on the order of electrodes.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Iterator

import numpy as np

from ..execution import spill
from ..objects import Embedding, Sorting, Spikes, group_indices
from .base import get_clusterer, relabel_consecutive
from .overlap import resolve_overlaps
from .refine import Discriminant, refine
from .windows import cluster_in_windows, window_bounds

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ElectrodeResult:
    """Labels of one electrode (local ids 0..k-1, -1 unsorted), extra overlap spikes, and what was done.
    ``n_ids`` (k) is set where the labels are gathered, which then drops them."""

    labels: np.ndarray | None
    extra_index: np.ndarray
    extra_unit: np.ndarray
    stats: dict
    n_ids: int = 0


def _empty_result(n: int, reason: str) -> ElectrodeResult:
    z = np.zeros(0, dtype=np.int64)
    return ElectrodeResult(np.full(n, -1, dtype=np.int64), z, z, {"skipped": reason, "n_spikes": n})


def cluster_electrode(x: np.ndarray, wf: np.ndarray, sample_index: np.ndarray, peak_index: int,
                      fs: float, config, seed: tuple[int, int], whitener: np.ndarray | None = None,
                      noise_x: np.ndarray | None = None, noise_prior: float | None = None) -> ElectrodeResult:
    """Cluster one electrode.

    Parameters
    ----------
    x : ndarray of shape (n, d), the electrode's features
    wf : ndarray of shape (n, L), noise-scaled waveforms (σ = 1)
    sample_index : ndarray of shape (n,), int64
    peak_index : int, index of the aligned extremum in ``wf``
    fs : float, Hz
    config : ClusterConfig
    seed : (base seed, electrode index)
    whitener : ndarray of shape (L, L), optional
        Noise whitening of ``wf`` (for overlap residuals).
    noise_x : ndarray of shape (m, d), optional
        Features of synthetic noise threshold crossings on this electrode (noise class).
    noise_prior : float, optional
        Expected fraction of the electrode's detections that are noise crossings.
    """
    n = x.shape[0]
    if n < config.min_spikes:
        return _empty_result(n, f"fewer than {config.min_spikes} spikes")
    from threadpoolctl import threadpool_limits

    # small per-electrode problems: BLAS/OpenMP threads only add contention (measured 20x slower on 2 shared cores)
    with threadpool_limits(limits=1):
        return _cluster_electrode(x, wf, sample_index, peak_index, fs, config, seed, whitener, noise_x, noise_prior)


def _cluster_electrode(x, wf, sample_index, peak_index, fs, config, seed, whitener, noise_x,
                       noise_prior) -> ElectrodeResult:
    """One electrode: in one piece, or in linked time windows when its spikes span at least
    ``config.windows.min_windows`` windows (:mod:`spikevae.cluster.windows`)."""
    wc = config.windows
    t = sample_index / fs
    bounds = window_bounds(float(t.min()), float(t.max()), wc.window_s, wc.overlap, wc.min_windows)
    if bounds.shape[0] == 1:
        return _cluster_piece(x, wf, sample_index, peak_index, fs, config, seed, whitener, noise_x, noise_prior)

    # with refine_linked, windows are clustered and refined; refinement and overlaps then run once on the linked labels
    piece_config = dataclasses.replace(config, overlap=dataclasses.replace(config.overlap, enabled=False)) \
        if wc.refine_linked else config

    def window(w: int, rows: np.ndarray) -> ElectrodeResult:
        if rows.size < config.min_spikes:
            return _empty_result(rows.size, f"fewer than {config.min_spikes} spikes in the window")
        return _cluster_piece(x[rows], wf[rows], sample_index[rows], peak_index, fs, piece_config, (*seed, w),
                              whitener, noise_x, noise_prior)

    t0 = time.perf_counter()
    labels, extra_t, extra_u, st = cluster_in_windows(t, bounds, window, wc.link_threshold, fs)
    if wc.refine_linked:
        rng = np.random.default_rng([*seed, bounds.shape[0]])
        linked = dataclasses.replace(config, refine=dataclasses.replace(
            config.refine, merge_window_s=config.refine.merge_window_s or wc.window_s))
        fin = _finish(x, wf, sample_index, peak_index, fs, linked, rng, labels, np.arange(x.shape[0]), {},
                      whitener, noise_x, noise_prior)
        labels, extra_t, extra_u = fin.labels, fin.extra_index, fin.extra_unit
        st.update({f"linked_{k}": v for k, v in fin.stats.items()})
        for k in ("merges", "splits", "dissolved"):  # windows' and linked refinement's together
            st[k] = st.get(k, 0) + fin.stats.get(k, 0)
        for k in ("noise", "overlap_relabelled", "overlap_extra"):  # what the final labels hold
            st[k] = fin.stats.get(k, 0)
    st.update(n_spikes=int(x.shape[0]), n_units=int(len(np.unique(labels[labels >= 0]))),
              t_total_s=time.perf_counter() - t0)
    return ElectrodeResult(labels, extra_t, extra_u, st)


def _cluster_piece(x, wf, sample_index, peak_index, fs, config, seed, whitener, noise_x,
                   noise_prior) -> ElectrodeResult:
    """Initial clusterer, refinement and overlap resolution on the spikes given (one electrode,
    or one time window of it)."""
    n = x.shape[0]
    rng = np.random.default_rng(list(seed))
    t0 = time.perf_counter()
    fit = np.arange(n) if n <= config.max_fit_spikes else np.sort(rng.choice(n, config.max_fit_spikes, replace=False))
    labels = np.full(n, -1, dtype=np.int64)
    labels[fit] = get_clusterer(config).fit_predict(x[fit], rng)
    st = {"n_spikes": n, "n_initial_units": int(len(np.unique(labels[labels >= 0])))}
    st["t_initial_s"] = time.perf_counter() - t0
    return _finish(x, wf, sample_index, peak_index, fs, config, rng, labels, fit, st, whitener, noise_x,
                   noise_prior)


def _finish(x, wf, sample_index, peak_index, fs, config, rng, labels, fit, st, whitener, noise_x,
            noise_prior) -> ElectrodeResult:
    """Refinement (or assignment of the spikes left out of the fit ``fit``) and overlap resolution
    of initial ``labels``; ``st`` (the stage counts so far) is completed."""
    n = x.shape[0]
    t0 = time.perf_counter() - st.get("t_initial_s", 0.0)
    peak = wf[:, peak_index]
    if config.refine.enabled:
        # spike times: a drifting unit's halves take turns and are not split; relabelling follows drift per window
        labels, rs = refine(x, labels, peak, config.refine, rng, noise_x=noise_x, noise_prior=noise_prior,
                            times=sample_index / fs)
        st.update(rs)
    elif fit.size < n and (labels >= 0).any():
        rest = np.setdiff1d(np.arange(n), fit)
        known = labels >= 0
        labels[rest] = Discriminant("lda").fit(x[known], labels[known]).predict(x[rest])[0]
    labels = relabel_consecutive(labels)
    st["t_refine_s"] = time.perf_counter() - t0 - st.get("t_initial_s", 0.0)
    extra_t = extra_u = np.zeros(0, dtype=np.int64)
    if config.overlap.enabled:
        before = labels.copy()
        labels, extra_t, extra_u = resolve_overlaps(wf, sample_index, labels, fs, config.overlap, whitener)
        st["overlap_relabelled"] = int((before != labels).sum())
        st["overlap_extra"] = int(extra_t.size)
    st["n_units"] = int(len(np.unique(labels[labels >= 0])))
    st["t_total_s"] = time.perf_counter() - t0
    return ElectrodeResult(labels, extra_t, extra_u, st)


def _features(embedding: Embedding, n_features: int) -> np.ndarray:
    """The features the clustering uses (the first ``n_features``; all when 0), in memory; features on
    disk are read per electrode by :func:`_electrode_features` instead."""
    x = np.asarray(embedding.features)
    return x if n_features <= 0 else x[:, :n_features]


def cluster_spikes(spikes: Spikes, embedding: Embedding, config, progress: bool = False) -> Sorting:
    """Sort the spikes of every electrode into units.

    Parameters
    ----------
    spikes : Spikes
        Detected, aligned spikes (waveforms are used for unit SNR and overlaps).
    embedding : Embedding
        Features of the same spikes, in the same order.
    config : ClusterConfig
    progress : bool, default False
        Show a progress bar over electrodes.

    Returns
    -------
    Sorting
        The first ``spikes.n_spikes`` entries are the detected spikes in their
        order; entries after that are extra spikes found inside overlapping
        waveforms (``params["n_detected"]`` marks where they start and
        ``params["n_overlap_extra"]`` counts them): they have a sample index,
        an electrode and a unit, but no waveform or features. Unit ids are unique
        across the array; -1 means unsorted. ``params`` holds the resolved config
        and, per electrode, what each stage did.

    Raises
    ------
    SpikevaeConfigError
        For an unknown ``config.method`` (the message lists the valid names).
    ValueError
        If the embedding and the spikes differ in length.
    """
    if embedding.n_spikes != spikes.n_spikes:
        raise ValueError(f"embedding has {embedding.n_spikes} rows but there are {spikes.n_spikes} spikes")
    get_clusterer(config)  # fail early on an unknown method
    from ..execution import release_memory
    from ..execution.memory import LOOP_TRIM_BYTES
    from ..waveform_store import is_lazy

    x = embedding.features if is_lazy(embedding.features) else _features(embedding, config.n_features)
    peak_index = spikes.peak_index
    if spikes.group_channels is not None:  # channel groups: unit SNR from each spike's largest channel, no overlaps
        peak, peak_index = spikes.peak_scaled()[:, None], 0
        config = dataclasses.replace(config, overlap=dataclasses.replace(config.overlap, enabled=False))
    by_electrode = group_indices(spikes.electrode)  # int32 indices, one sort: not 8 bytes per spike and a pass per electrode
    electrodes = np.fromiter(by_electrode, dtype=np.int64, count=len(by_electrode))
    groups = list(by_electrode.values())
    del by_electrode  # each electrode's index goes when its labels are in (below)
    white = _whiteners(spikes, config)
    noise = _noise_class(spikes, embedding, config, groups, electrodes)
    def job(i: int) -> tuple:  # built when submitted: the job list holds no copy of the features
        e, g = electrodes[i], groups[i]
        return (_electrode_features(x, g, e, config.n_features),
                peak[g] if spikes.group_channels is not None else _electrode_waveforms(spikes, g, e),
                spikes.sample_index[g], peak_index, spikes.fs, config, (config.seed, int(e)),
                white.get(int(e)), *noise.get(int(e), (None, None)))

    # the largest electrodes first, so that no long electrode is left running alone at the end
    # (each electrode's result depends only on its own spikes and seed, not on the order)
    order = np.argsort([-g.size for g in groups], kind="stable")
    jobs = _LazyJobs(lambda k: job(int(order[k])), len(electrodes))
    t0 = time.perf_counter()
    results = [None] * len(electrodes)
    # each electrode's labels are written as they come (its own ids; made unique in _assemble), and its
    # labels and index freed: the main process does not hold every electrode's until the end
    unit = spill.full(spikes.n_spikes, -1, np.int32)  # in the run's spill folder, if any
    for j, (k, res) in enumerate(_run_jobs(jobs, config.n_jobs, progress)):
        if j % 8 == 7:  # what the results' arrays left freed goes back to the OS as they come
            release_memory(LOOP_TRIM_BYTES)
        i = int(order[k])
        unit[groups[i]] = res.labels
        res.n_ids = int(res.labels.max()) + 1 if res.labels.size else 0
        res.labels, groups[i], results[i] = None, None, res
    return _assemble(spikes, config, electrodes, unit, results, time.perf_counter() - t0)


def _noise_class(spikes: Spikes, embedding: Embedding, config, groups, electrodes) -> dict:
    """Per electrode: the noise class's features and its prior, the expected fraction of the
    electrode's detections that are noise crossings (rate x duration / detections).
    Empty without noise features or with ``refine.noise_class`` off."""
    if embedding.noise_features is None or not (config.refine.enabled and config.refine.noise_class):
        return {}
    nf = _features(Embedding(embedding.noise_features, embedding.method), config.n_features).astype(np.float64)
    duration = (int(spikes.sample_index.max()) - int(spikes.sample_index.min()) + 1) / spikes.fs
    out = {}
    for e, g in zip(electrodes, groups):
        mine = embedding.noise_electrode == e
        if mine.sum() > nf.shape[1] and embedding.noise_rate_hz is not None \
                and np.isfinite(embedding.noise_rate_hz[e]):
            prior = float(np.clip(embedding.noise_rate_hz[e] * duration / max(g.size, 1), 1e-3, 0.9))
            out[int(e)] = (nf[mine], prior)
    return out


def _whiteners(spikes: Spikes, config) -> dict:
    """Whitening matrices for noise-scaled waveforms, per electrode (empty when not used)."""
    if not (config.overlap.enabled and config.overlap.whiten) or spikes.noise_snippets is None \
            or spikes.noise_snippets.shape[0] == 0:
        return {}
    from ..whiten import noise_whitener

    sigma = np.maximum(spikes.noise_uv.astype(np.float64), 1e-6)
    return {e: w * sigma[e] for e, w in noise_whitener(spikes).items()}


class _LazyJobs:
    """A sequence whose i-th item is built by ``make(i)`` when asked for."""

    def __init__(self, make, n: int):
        self.make, self.n = make, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.make(i)


class _DeferredRows:
    """One electrode's rows of a file (noise-scaled waveforms, or features), read when its job runs (so
    the job list, and what is sent to workers, holds indices, not waveforms or features)."""

    def __init__(self, waveforms, sigma=1.0, n_cols: int = 0):
        self.waveforms, self.sigma, self.n_cols = waveforms, sigma, n_cols

    def load(self) -> np.ndarray:
        rows = self.waveforms[:] if self.n_cols <= 0 else self.waveforms[:, :self.n_cols]
        return rows / self.sigma if self.sigma != 1.0 else rows


def _one_electrode(rows, positions: np.ndarray, electrode: int):
    """``rows`` (a DiskWaveforms) at ``positions``, all on ``electrode``: its index as a zero-stride
    view, not an array per spike."""
    from ..waveform_store import DiskWaveforms

    return DiskWaveforms(rows.path, np.broadcast_to(np.int64(electrode), positions.shape), rows.row[positions],
                         rows.n_samples)


def _electrode_features(x, rows: np.ndarray, electrode: int, n_features: int):
    """The features of ``rows`` (all on ``electrode``), or a :class:`_DeferredRows` that reads them in the
    job when they are on disk."""
    from ..waveform_store import is_lazy

    if is_lazy(x):
        return _DeferredRows(_one_electrode(x, rows, electrode), n_cols=n_features)
    return x[rows]


def _electrode_waveforms(spikes: Spikes, rows: np.ndarray, electrode: int):
    """The noise-scaled waveforms of ``rows`` (all on ``electrode``), or a :class:`_DeferredRows` that reads
    them later when they are on disk."""
    from ..waveform_store import is_lazy

    wf = spikes.waveforms
    if is_lazy(wf):
        return _DeferredRows(_one_electrode(wf, rows, electrode), np.maximum(spikes.noise_uv, 1e-6)[electrode])
    return spikes.scaled_waveforms(rows)


def _cluster_job(job: tuple) -> ElectrodeResult:
    from ..execution import release_memory
    from ..execution.memory import return_large_arrays

    return_large_arrays()  # the electrode's arrays go back to the OS when freed, not to a growing heap
    if isinstance(job[0], _DeferredRows) or isinstance(job[1], _DeferredRows):
        job = tuple(j.load() if isinstance(j, _DeferredRows) else j for j in job[:2]) + tuple(job[2:])
    result = cluster_electrode(*job)
    result.labels = result.labels.astype(np.int32)  # local ids: the main process holds every electrode's until assembly
    del job
    release_memory()  # a worker clusters many electrodes: what one freed must not stay resident
    return result


def _run_jobs(jobs: list, n_jobs: int, progress: bool) -> Iterator[tuple[int, ElectrodeResult]]:
    """``(k, result of jobs[k])`` as each electrode's result comes in (not every electrode's held at once)."""
    from ..execution import imap_jobs

    # local workers, or a Dask cluster inside `with dask_executor(...)`; spawn: torch may
    # already run threads in this process, and a fork could deadlock
    return imap_jobs(_cluster_job, jobs, n_jobs, spawn=True, progress=progress, desc="cluster", unit="electrode")


def _assemble(spikes: Spikes, config, electrodes, local_unit: np.ndarray, results, elapsed: float) -> Sorting:
    """The Sorting of every electrode's result: ``local_unit`` (each detected spike's label among its
    electrode's units, -1 unsorted) made unique across the array in electrode order, the overlap extras after."""
    n = spikes.n_spikes
    # the detected spikes' units, then the overlap extras': one array of the final length, not a concatenation
    # (in the run's spill folder, if any: spikevae.execution.spill)
    n_all = n + sum(r.extra_index.size for r in results)
    unit = local_unit  # the Sorting's own dtype (no copy when it is made), grown for the extras
    if n_all > n:
        unit = spill.disk_empty(n_all, local_unit.dtype)
        _copy_blocks(unit, local_unit, n)
        del local_unit
    electrode = spill.disk_empty(n_all, np.int32)
    _copy_blocks(electrode, spikes.electrode, n)
    extra_t, extra_e, extra_u, per_electrode = [], [], [], {}
    first_id = np.zeros(int(electrodes.max(initial=-1)) + 1, dtype=np.int32)  # each electrode's first unit id
    next_id = 0
    for e, r in zip(electrodes, results):
        first_id[e] = next_id
        extra_t.append(r.extra_index)
        extra_e.append(np.full(r.extra_index.size, e, dtype=np.int32))
        extra_u.append(np.where(r.extra_unit >= 0, r.extra_unit + next_id, -1))
        next_id += max(r.n_ids, 0)
        per_electrode[str(spikes.channel_ids[e])] = r.stats
    for a in range(0, n, 1 << 20):  # a block at a time: no mask or copy the length of the recording
        b = min(a + (1 << 20), n)
        u = unit[a:b]
        sorted_ = u >= 0
        u[sorted_] += first_id[spikes.electrode[a:b][sorted_]]
    totals = {k: int(sum(s.get(k, 0) for s in per_electrode.values()))
              for k in ("merges", "splits", "dissolved", "noise", "overlap_relabelled", "overlap_extra", "n_initial_units", "n_units")}
    et = np.concatenate(extra_t) if extra_t else np.zeros(0, dtype=np.int64)
    params = {"config": dataclasses.asdict(config), "n_detected": spikes.n_spikes, "n_overlap_extra": int(et.size),
              "totals": totals, "electrodes": per_electrode, "elapsed_s": elapsed}
    log.info("clustered %d spikes on %d electrodes into %d units in %.1f s (%d merges, %d splits, %d spikes left "
             "unsorted as noise crossings, %d overlap spikes)", spikes.n_spikes, len(electrodes), totals["n_units"],
             elapsed, totals["merges"], totals["splits"], totals["noise"], et.size)
    sample_index = spill.disk_empty(n_all, np.int64)
    _copy_blocks(sample_index, spikes.sample_index, n)
    sample_index[n:] = et
    return Sorting(
        sample_index=sample_index,
        electrode=_fill_tail(electrode, n, extra_e),
        unit=_fill_tail(unit, n, extra_u),
        fs=spikes.fs, params=params,
    )


def _copy_blocks(out: np.ndarray, a: np.ndarray, n: int, block: int = 1 << 20) -> None:
    """``out[:n] = a[:n]``, a block at a time (``a`` may be a file's pages: no whole copy in between)."""
    for i in range(0, n, block):
        out[i:min(i + block, n)] = a[i:min(i + block, n)]


def _fill_tail(arr: np.ndarray, n: int, parts: list) -> np.ndarray:
    """``arr`` with ``parts`` written one after another from position ``n``."""
    for p in parts:
        arr[n:n + p.size] = p
        n += p.size
    return arr
