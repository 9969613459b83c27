"""Threshold detection and sub-sample alignment of spike waveforms.

Defaults measured on Utah-like ground truth (benchmarks/bench_accuracy.py, 3 simulations of
16 electrodes x 60 s + sample_data, PCA + mixture clustering): a 3.5 σ threshold raised the
detection ceiling from 0.78-0.91 to 0.86-0.95 and mean accuracy from 0.505 to 0.547 over 4 σ
(3.0 and 3.25 σ were no better); finding the alignment extremum on a snippet smoothed by a
2-sample Gaussian, within ±3 samples, raised mean accuracy from 0.458 to 0.505 over raw
±0.5-sample alignment, because noise on a broad trough otherwise moves a share of a unit's
spikes by 1-2 samples and the clustering splits them off.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import param


@dataclass
class DetectConfig:
    threshold: float = param(3.5, "detection threshold in noise σ (σ = median|x| / 0.6745)", low=1.0, high=50)
    polarity: str = param("neg", "which extremum is a spike", choices=("neg", "pos", "both"))
    dead_time_ms: float = param(0.5, "after a spike, no other spike on the same electrode for this long", unit="ms", low=0.0, high=10)
    window_ms: float = param(1.6, "waveform length (48 samples at 30 kHz)", unit="ms", low=0.2, high=10)
    pre_ms: float = param(0.5, "waveform samples before the peak", unit="ms", low=0.05, high=5)
    upsample: int = param(8, "upsampling factor for sub-sample peak alignment (1 = none)", low=1, high=64)
    align_smooth_ms: float = param(0.067, "Gaussian smoothing (σ) of the snippet used to find the alignment extremum",
                                   unit="ms", low=0.0, high=0.2)
    align_max_shift_ms: float = param(0.1, "largest move of the alignment point from the detected peak",
                                      unit="ms", low=0.0, high=0.1)
    noise_snippets: int = param(300, "spike-free snippets kept per electrode (noise covariance, denoising)", low=0)
    max_noise_chunks: int = param(20, "chunks sampled across the recording to estimate the noise", low=1)


# --------------------------------------------------------------------------------------
# Implementation
# --------------------------------------------------------------------------------------
import logging  # noqa: E402
from collections import deque  # noqa: E402
from itertools import islice  # noqa: E402

import numpy as np  # noqa: E402
from scipy.interpolate import CubicSpline  # noqa: E402
from scipy.ndimage import gaussian_filter1d, maximum_filter1d  # noqa: E402

from .errors import RecordingError  # noqa: E402
from .objects import Spikes, in_time_order  # noqa: E402
from .recording import Recording, get_chunk_with_margin  # noqa: E402

log = logging.getLogger(__name__)

#: Samples read beyond each waveform for alignment (bounds the alignment shift).
ALIGN_PAD = 4

#: MAD to σ for Gaussian noise: σ = median(|x|) / 0.6745 (Quiroga et al. 2004).
MAD_TO_SIGMA = 0.6745


def ms_to_samples(ms: float, fs: float) -> int:
    return int(round(ms * 1e-3 * fs))


def estimate_noise(rec: Recording, n_chunks: int = 20, chunk_samples: int | None = None) -> np.ndarray:
    """Noise σ of each channel, ``median(|x|) / 0.6745``, over chunks spread across the recording.

    Parameters
    ----------
    rec : Recording
        A filtered recording (the median of the absolute value assumes zero mean).
    n_chunks : int
        Number of chunks sampled evenly across the recording.
    chunk_samples : int, optional
        Chunk length (default: 0.5 s).

    Returns
    -------
    ndarray of shape (n_channels,), float32, µV
    """
    chunk_samples = int(chunk_samples or rec.fs // 2)
    chunk_samples = min(chunk_samples, rec.n_samples)
    # never read the same samples twice: short recordings get fewer chunks
    n_chunks = max(1, min(n_chunks, rec.n_samples // max(chunk_samples, 1)))
    starts = np.unique(np.linspace(0, rec.n_samples - chunk_samples, n_chunks).astype(np.int64))
    mads = [np.median(np.abs(rec.get_traces(s, s + chunk_samples)), axis=0) for s in starts]
    return (np.median(np.stack(mads), axis=0) / MAD_TO_SIGMA).astype(np.float32)


def find_peaks(x: np.ndarray, thr: np.ndarray, polarity: str, dead: int) -> tuple[np.ndarray, np.ndarray]:
    """Threshold-crossing extrema, at most one per ``dead`` samples on each channel.

    A sample is a spike peak when it crosses the threshold, is a local extremum, is the
    largest within ±``dead`` samples on its channel, and is larger than every sample in the
    ``dead`` samples before it: of two equal extrema within the dead time, only the first is a
    peak (both would otherwise be kept, and alignment can move both onto the same sample: one
    spike counted twice).

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_channels), µV
    thr : ndarray of shape (n_channels,), µV (positive)
    polarity : {"neg", "pos", "both"}
    dead : int
        Dead time in samples.

    Returns
    -------
    t, ch : ndarray of int64
        Sample (row of ``x``) and channel of each peak, sorted by time.
    """
    # Only threshold crossings can be peaks, so the extremum and dead-time tests run on those
    # samples alone (a running maximum over every sample cost ~70 ms per second of 96 channels).
    # ``x < -thr`` is ``-x > thr`` and ``|x| > thr`` is ``x > thr or x < -thr`` exactly (negation is
    # exact), and a window clipped at the chunk ends is the running maximum's "nearest" mode, so the
    # peaks are those of the dense formulation. Row-major order of the mask = sorted by (time, channel).
    thr = np.asarray(thr)
    n, n_ch = x.shape
    inner = x[1:-1]
    if polarity == "neg":
        mask = inner < -thr[None, :]
    elif polarity == "pos":
        mask = inner > thr[None, :]
    else:
        mask = (inner > thr[None, :]) | (inner < -thr[None, :])
    t, ch = np.divmod(np.flatnonzero(mask), n_ch)
    t += 1
    v = _peak_sign(x[t, ch], polarity)
    ok = (v > _peak_sign(x[t - 1, ch], polarity)) & (v >= _peak_sign(x[t + 1, ch], polarity))
    t, ch, v = t[ok], ch[ok], v[ok]
    if dead > 0 and t.size and t.size * (2 * dead + 1) > x.size:
        # so many candidates that their windows outnumber the samples: the running maximum is cheaper
        y = _peak_sign(x, polarity)
        ok = v >= maximum_filter1d(y, size=2 * dead + 1, axis=0, mode="nearest")[t, ch]
        t, ch, v = t[ok], ch[ok], v[ok]
    elif dead > 0 and t.size:
        win = np.clip(t[:, None] + np.arange(-dead, dead + 1)[None, :], 0, n - 1)
        ok = v >= _peak_sign(x[win, ch[:, None]], polarity).max(axis=1)
        t, ch, v = t[ok], ch[ok], v[ok]
    if dead > 0 and t.size:  # ties: the first of equal maxima (only the survivors are tested: few)
        before = np.maximum(t[:, None] + np.arange(-dead, 0)[None, :], 0)  # t >= 1: every index is earlier
        ok = v > _peak_sign(x[before, ch[:, None]], polarity).max(axis=1)
        t, ch = t[ok], ch[ok]
    return t.astype(np.int64, copy=False), ch.astype(np.int64, copy=False)


def _peak_sign(v: np.ndarray, polarity: str) -> np.ndarray:
    """The values ``v`` of the traces turned so that a spike is a maximum (``-v``, ``v`` or ``|v|``)."""
    return -v if polarity == "neg" else (v if polarity == "pos" else np.abs(v))


def align_waveforms(x: np.ndarray, t: np.ndarray, ch: np.ndarray, pre: int, length: int,
                    upsample: int, polarity: np.ndarray, smooth: float = 0.0,
                    max_shift: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Cut waveforms centred on the sub-sample extremum near each peak.

    The extremum is located on a cubic-spline upsampling (factor ``upsample``) within
    ±``max_shift`` samples of the integer peak, on the snippet smoothed by a Gaussian of
    ``smooth`` samples (so that noise on a broad trough does not move the alignment point);
    each raw waveform is then resampled so that this extremum falls exactly on index ``pre``.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_channels)
        Traces; every ``t - pre - ALIGN_PAD >= 0`` and ``t - pre + length + ALIGN_PAD <= n_samples``.
    t, ch : ndarray of int64
        Peak sample and channel of each spike.
    pre, length : int
        Samples before the peak, and waveform length.
    upsample : int
        Upsampling factor (1 = integer alignment).
    polarity : ndarray of shape (n,), ±1
        Sign of each spike's extremum (-1 for a trough).
    smooth : float, default 0
        Standard deviation (samples) of the Gaussian smoothing used to find the extremum.
    max_shift : float, default 0.5
        Largest distance (samples) of the extremum from the integer peak.

    Returns
    -------
    waveforms : ndarray of shape (n, length), float32
    shift : ndarray of shape (n,), float
        Position of the extremum relative to ``t``, in samples.
    """
    pad = ALIGN_PAD
    idx = t[:, None] + np.arange(-pre - pad, length - pre + pad)[None, :]
    snips = x[idx, ch[:, None]].astype(np.float64)
    if upsample <= 1 or len(t) == 0:
        return snips[:, pad:pad + length].astype(np.float32), np.zeros(len(t))
    # The splines are scipy's CubicSpline (not-a-knot) through each snippet, computed without its
    # per-call overhead and evaluated row by row (_spline_coefficients, _eval_spline): the same
    # numbers to the bit, 3-4 times faster.
    coef = _spline_coefficients(snips)
    ref = _spline_coefficients(gaussian_filter1d(snips, smooth, axis=1)) if smooth > 0 else coef
    half = int(round(min(max_shift, pad - 1) * upsample))
    offsets = np.arange(-half, half + 1) / upsample
    fine = _eval_spline(ref, pre + pad + offsets)  # (n, n_offsets)
    best = np.argmax(fine * polarity[:, None], axis=1)
    points = (np.arange(length, dtype=np.float64) + pad)[None, :] + offsets[best][:, None]
    return _eval_spline(coef, points).astype(np.float32), offsets[best]


def _spline_coefficients(y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Polynomial coefficients of the not-a-knot cubic spline through each row of ``y`` on the grid 0, 1, ..., m - 1.

    The numbers of ``scipy.interpolate.CubicSpline(np.arange(m), y, axis=1).c``, to the bit: the
    same tridiagonal system solved by the same LAPACK call (``solve_banded``, ``gtsv``) on the same
    right-hand sides, and the same arithmetic for the coefficients, with the grid step of 1 (a
    product or quotient by 1.0 is exact) taken out; what is saved is CubicSpline's checks, axis
    moves and copies, most of its time for snippets of 56 samples.

    Parameters
    ----------
    y : ndarray of shape (n, m), float64, finite

    Returns
    -------
    c0, c1, c2, c3 : ndarrays of shape (n, m - 1), float64
        On interval ``[j, j + 1]``: ``c0 s³ + c1 s² + c2 s + c3`` with ``s`` = position - ``j``.
    """
    from scipy.linalg import solve_banded

    n, m = y.shape
    if m < 4:  # CubicSpline's special cases for 2 and 3 points
        c = CubicSpline(np.arange(m, dtype=np.float64), y, axis=1).c
        return tuple(np.moveaxis(c, 2, 1))
    if not np.all(np.isfinite(y)):
        raise ValueError("`y` must contain only finite values.")
    slope = np.diff(y, axis=1)
    b = np.empty((n, m))
    b[:, 1:-1] = 3 * (slope[:, :-1] + slope[:, 1:])
    b[:, 0] = (5.0 * slope[:, 0] + slope[:, 1]) / 2.0  # not-a-knot at the start (CubicSpline's d = 2)
    b[:, -1] = (slope[:, -2] + 5.0 * slope[:, -1]) / 2.0
    ab = np.empty((3, m))
    ab[0], ab[1], ab[2] = 1.0, 4.0, 1.0
    ab[1, 0], ab[0, 1], ab[1, -1], ab[2, -2] = 1.0, 2.0, 1.0, 2.0
    # b.T is Fortran-ordered (m, n): LAPACK works on it in place
    s = solve_banded((1, 1), ab, b.T, overwrite_ab=True, overwrite_b=True, check_finite=False).T
    t = (s[:, :-1] + s[:, 1:]) - 2 * slope
    return t, (slope - s[:, :-1]) - t, s[:, :-1], y[:, :-1]


def _eval_spline(coef: tuple[np.ndarray, ...], points: np.ndarray) -> np.ndarray:
    """Values of the splines of :func:`_spline_coefficients` at ``points``.

    Each row is evaluated at its own points only (``points`` of shape (n, k)), or every row at the
    same points (shape (k,)), with the operations of scipy's ``PPoly`` evaluation in the same order
    (``c3 + c2 s + c1 s² + c0 s³`` from the left, ``s³ = (s s) s``), so the values are the same to
    the bit. Points outside the grid extrapolate the end polynomials, as PPoly does.

    Returns
    -------
    ndarray of shape (n, k), float64
    """
    c0, c1, c2, c3 = coef
    # the interval of each point, as PPoly finds it: j <= p < j + 1, the last one closed
    i = np.clip(np.floor(points), 0, c0.shape[1] - 1).astype(np.intp)
    s = points - i
    sel = (slice(None), i) if points.ndim == 1 else (np.arange(points.shape[0])[:, None], i)
    res = 0.0 + c3[sel]
    res += c2[sel] * s
    ss = s * s
    res += c1[sel] * ss
    res += c0[sel] * (ss * s)
    return res


#: Noise snippets are drawn per block of this many seconds, whatever the chunking, so that the
#: same recording and seed give the same snippets (and the same sorting) for any ``run.chunk_s``.
NOISE_BLOCK_S = 1.0


def _noise_candidates(block: int, block_len: int, n_samples: int, length: int, n_draw: int, seed: int) -> np.ndarray:
    """Candidate start samples of noise windows in one fixed block, in draw order (a function of the
    block and seed only)."""
    lo, hi = block * block_len, min((block + 1) * block_len, n_samples) - length
    if n_draw <= 0 or hi <= lo:
        return np.zeros(0, np.int64)
    return np.random.default_rng([seed, block]).integers(lo, hi, size=n_draw)


def _clean_noise_windows(x, level, left, start, stop, length, n_per_block, block_len, n_samples, active, seed,
                         block_stride: int = 1):
    """Spike-free windows of ``length`` whose start lies in the chunk ``[start, stop)``.

    A window is clean on a channel when no sample of it exceeds ``level`` in absolute value. Only
    the candidate windows are read (a few per block and channel), not a mask of the whole chunk.

    Parameters
    ----------
    x : ndarray of shape (n_samples_chunk, n_channels), the chunk with ``left`` samples of margin
    level : ndarray of shape (n_channels,), µV
        Detection threshold of each channel (``threshold * noise σ``).

    Returns
    -------
    waveforms : ndarray (n, length); electrode, block, draw : ndarray (n,) int64
        Every clean candidate, ordered by block, electrode, then draw; the caller keeps the first
        ``n_per_block`` of each (block, electrode) in draw order, once all chunks are in.
    """
    n_draw = 4 * n_per_block
    act = np.flatnonzero(active)
    wf, el, blk, drw = [], [], [], []
    for b in range(start // block_len, (stop - 1) // block_len + 1):
        if b % block_stride:  # long recordings: windows from every block_stride-th block only
            continue
        cand = _noise_candidates(b, block_len, n_samples, length, n_draw, seed)
        draw = np.flatnonzero((cand >= start) & (cand < stop))
        if draw.size == 0 or act.size == 0:
            continue
        pos = cand[draw] - start + left
        win = x[pos[:, None] + np.arange(length)[None, :]][:, :, act]  # (n_pos, length, n_active)
        clean = ~(np.abs(win) > level[act]).any(axis=1)  # (n_pos, n_active)
        j, i = np.nonzero(clean.T)  # by channel, then draw order
        if i.size:
            wf.append(win[i, :, j])
            el.append(act[j].astype(np.int64))
            blk.append(np.full(i.size, b, np.int64))
            drw.append(draw[i])
    if not wf:
        return np.zeros((0, length), np.float32), *(np.zeros(0, np.int64) for _ in range(3))
    return np.concatenate(wf), np.concatenate(el), np.concatenate(blk), np.concatenate(drw).astype(np.int64)


def _first_per_block(nz, nze, nzb, nzd, n_per_block):
    """The first ``n_per_block`` clean windows of each (block, electrode), in draw order."""
    keep = _first_per_block_index(nze, nzb, nzd, n_per_block)
    return nz[keep], nze[keep]


def _first_per_block_index(nze, nzb, nzd, n_per_block) -> np.ndarray:
    """Indices of :func:`_first_per_block`'s windows, ordered by block, electrode, draw. Applied to each
    chunk's windows as they arrive it keeps a superset of the final choice (a chunk's first windows
    of a block include every first window of that block that lies in the chunk)."""
    if nze.size == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((nzd, nze, nzb))
    key = nzb[order] * (int(nze.max()) + 1) + nze[order]
    first = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    rank = np.arange(key.size) - np.repeat(first, np.diff(np.r_[first, key.size]))
    keep = order[rank < n_per_block]
    return keep[np.lexsort((nzd[keep], nze[keep], nzb[keep]))]


#: In a worker process: the recording of the chunk job it last ran, and what identifies that job.
_WORKER_RECORDING: dict = {}


def _worker_recording(job) -> Recording:
    """``job.rec``; in a worker process, the copy kept from an earlier batch of the same job.

    A process pool pickles the job again with every batch of chunks it sends (``Executor.map``), so
    each batch arrives with a fresh copy of the recording, and a file reader parses the file's
    header again on its first read (neo's Blackrock reader: ~40 ms, about the time it takes to
    detect a chunk). A worker therefore keeps the first copy and reuses it while the job is the
    same: same kind of recording, source, length, channels and noise levels (the noise is measured
    on the recording, so it fingerprints the data and its preprocessing). The main process always
    uses the job's own recording, so nothing is kept after detection there.
    """
    import multiprocessing

    rec = job.rec
    if multiprocessing.parent_process() is None:
        return rec
    key = (type(rec).__qualname__, rec.source, rec.n_samples, rec.n_channels, rec.fs, job.noise.tobytes())
    if _WORKER_RECORDING.get("key") != key:
        _WORKER_RECORDING.clear()
        _WORKER_RECORDING.update(key=key, rec=rec)
    return _WORKER_RECORDING["rec"]


class _ChunkJob:
    """Detection of one chunk, with everything fixed before the loop (picklable for worker processes)."""

    def __init__(self, rec, config, thr, noise, active, margin, pre, length, dead, n_snip, seed, block_stride=1):
        self.rec, self.config, self.thr, self.noise, self.active = rec, config, thr, noise, active
        self.margin, self.pre, self.length, self.dead, self.n_snip, self.seed = margin, pre, length, dead, n_snip, seed
        self.block_stride = block_stride

    def __call__(self, item: tuple[int, tuple[int, int]]):
        ci, (start, stop) = item
        rec, cfg, pre, length = _worker_recording(self), self.config, self.pre, self.length
        x, left, _ = get_chunk_with_margin(rec, start, stop, self.margin)
        t, ch = find_peaks(x, self.thr, cfg.polarity, self.dead)
        g = t - left + start
        keep = ((g >= start) & (g < stop) & (g - pre - ALIGN_PAD >= 0)
                & (g - pre + length + ALIGN_PAD <= rec.n_samples))
        t, ch = t[keep], ch[keep]
        sign = {"neg": -1.0, "pos": 1.0}
        pol = (np.full(len(t), sign[cfg.polarity]) if cfg.polarity in sign
               else np.sign(x[t, ch]).astype(np.float64))
        wf, shift = align_waveforms(x, t, ch, pre, length, cfg.upsample, pol,
                                    cfg.align_smooth_ms * 1e-3 * rec.fs, cfg.align_max_shift_ms * 1e-3 * rec.fs)
        block_len = max(int(round(NOISE_BLOCK_S * rec.fs)), 4 * length)
        nz = (_clean_noise_windows(x, cfg.threshold * self.noise, left, start, stop, length, self.n_snip, block_len,
                                   rec.n_samples, self.active, self.seed, self.block_stride)
              if self.n_snip else (np.zeros((0, length), np.float32),))
        return (t - left + start + np.round(shift).astype(np.int64), ch, wf, *nz)


def _run_batch(job: _ChunkJob, batch: list) -> list:
    """``job`` over a few chunks, in a worker process."""
    return [job(item) for item in batch]


def _filters_on_gpu(rec: Recording) -> bool:
    """Whether a stage of ``rec``'s preprocessing chain runs on a GPU (its ``device`` is not the CPU)."""
    while rec is not None:
        if getattr(rec, "device", "cpu") != "cpu":
            return True
        rec = getattr(rec, "parent", None)
    return False


def _map_chunks(job: _ChunkJob, ranges: list, n_jobs: int, progress: bool):
    """``job`` over every chunk, yielding results in order as they finish (so the caller can write each
    chunk's waveforms away before the next arrives); in ``n_jobs`` worker processes when there is
    enough work, or in ``n_jobs`` threads of this process when the band-pass runs on a GPU: each worker
    process would start its own CUDA context (~800 MB of memory and seconds of start-up each; 16 such
    workers made detection 3 times slower than on the CPU), while threads share this process's, and the
    GPU's FFTs and numpy's array work release the GIL."""
    items = list(enumerate(ranges))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="detect", unit="chunk")
    try:
        if n_jobs > 1 and len(items) >= 4 * n_jobs:
            from concurrent.futures import ThreadPoolExecutor

            from threadpoolctl import threadpool_limits

            from .execution import worker_pool

            # A bounded window of batches in flight: Executor.map would queue every chunk at once, and when
            # this process falls behind (a busy machine), finished chunks' waveforms pile up in memory.
            batches = iter([items[i:i + 2] for i in range(0, len(items), 2)])
            threads = _filters_on_gpu(job.rec)
            if threads:
                from .execution.memory import one_heap_for_threads

                one_heap_for_threads()  # what the threads free goes back to the OS between stages
            pool = ThreadPoolExecutor(n_jobs) if threads else worker_pool(n_jobs)
            with threadpool_limits(1), pool as ex:
                pending = deque(ex.submit(_run_batch, job, b) for b in islice(batches, 3 * n_jobs))
                while pending:
                    done = pending.popleft().result()
                    nxt = next(batches, None)
                    if nxt is not None:
                        pending.append(ex.submit(_run_batch, job, nxt))
                    for r in done:
                        if bar is not None:
                            bar.update()
                        yield r
        else:
            for item in items:
                r = job(item)
                if bar is not None:
                    bar.update()
                yield r
    finally:
        if bar is not None:
            bar.close()


def _order_across_borders(cols: dict, borders: np.ndarray) -> None:
    """Put the columns ``cols`` (``t``, ``ch`` and others, concatenated from chunks each already in
    (time, channel) order) in (time, channel) order, in place.

    Alignment can move a peak a sample or two across a chunk's border, so only the spikes where two
    chunks meet can be out of order: at each border, those of the earlier chunk at or after the later
    chunk's first time and those of the later chunk at or before the earlier chunk's last time are
    sorted among themselves. Nothing the length of the recording is allocated (a whole ``lexsort``
    would index every spike with int64 and copy every column). Should anything still be out of order,
    the whole is sorted.
    """
    t, ch = cols["t"], cols["ch"]
    for o in np.asarray(borders, dtype=np.int64):
        if t[o] > t[o - 1] or (t[o] == t[o - 1] and ch[o] > ch[o - 1]):
            continue
        a = int(np.searchsorted(t[:o], t[o], "left"))
        b = o + int(np.searchsorted(t[o:], t[o - 1], "right"))
        local = np.lexsort((ch[a:b], t[a:b]))
        for k in cols:
            cols[k][a:b] = cols[k][a:b][local]
    if not in_time_order(t, ch):
        from .execution.spill import take

        order = np.lexsort((ch, t))
        for k in cols:
            cols[k] = take(cols[k], order)


def detect_spikes(rec: Recording, config: DetectConfig, chunk_s: float = 1.0, progress: bool = False,
                  skip_channels=(), seed: int = 0, n_jobs: int = 1, waveform_file=None,
                  waveform_attrs: dict | None = None) -> Spikes:
    """Detect and align spikes in a (filtered) recording, chunk by chunk.

    Noise σ per channel comes from the median absolute deviation; a spike is a
    threshold crossing of ``config.threshold`` σ with the given polarity, at most one per
    dead time per channel; each is aligned to its sub-sample extremum and cut to a fixed
    window. Chunks are read with margins, and a peak belongs to the chunk that holds its
    sample, so a spike on a chunk border is detected exactly once. Flat channels
    (σ = 0) and ``skip_channels`` are skipped with a warning.

    Parameters
    ----------
    rec : Recording
        The preprocessed recording.
    config : DetectConfig
    chunk_s : float, default 1.0
        Chunk length in seconds.
    progress : bool
        Show a progress bar.
    skip_channels : sequence of int
        Channel indices not to detect on.
    seed : int
        Seed for the choice of noise snippets.
    n_jobs : int, default 1
        Worker processes over chunks (results are identical for any value).
    waveform_file : path, optional
        Stream the waveforms into this file (:mod:`spikevae.waveform_store`), chunk by chunk, and
        return Spikes whose waveforms stay on disk: memory then does not grow with the recording.
        Default: keep them in memory.
    waveform_attrs : dict, optional
        Attributes of the waveform file (the run stores its cache key there).

    Returns
    -------
    Spikes
    """
    fs = rec.fs
    length = ms_to_samples(config.window_ms, fs)
    pre = ms_to_samples(config.pre_ms, fs)
    dead = ms_to_samples(config.dead_time_ms, fs)
    if not 0 < pre < length:
        raise RecordingError(f"detect.pre_ms={config.pre_ms} must be shorter than detect.window_ms={config.window_ms}")
    chunk = max(int(chunk_s * fs), 4 * length)
    if rec.n_samples < 2 * length + 8:
        raise RecordingError(f"{rec.source}: recording too short ({rec.n_samples} samples); "
                             f"need at least {2 * length + 8} samples to detect spikes")
    noise = estimate_noise(rec, config.max_noise_chunks, int(fs // 2))
    skip = set(int(c) for c in skip_channels)
    for c in np.nonzero(noise <= 0)[0]:
        if int(c) not in skip:
            log.warning("channel %s is flat (noise σ = 0): skipped; check the electrode or exclude it with "
                        "--set input.channels=...", rec.channel_ids[c])
        skip.add(int(c))
    active = np.array([c not in skip for c in range(rec.n_channels)])
    thr = np.where(active, config.threshold * noise, np.inf).astype(np.float32)
    margin = max(dead, pre + ALIGN_PAD, length - pre + ALIGN_PAD, length) + 2  # length: noise windows at the border
    ranges = list(rec.chunks(chunk))
    n_blocks = int(np.ceil(rec.n_samples / max(int(round(NOISE_BLOCK_S * fs)), 4 * length)))
    # About noise_snippets windows per electrode whatever the length: past that many blocks (seconds),
    # windows come from every stride-th block only, so they do not grow with the recording.
    stride = max(1, int(np.ceil(n_blocks / max(1, config.noise_snippets))))
    n_per_block = int(np.ceil(config.noise_snippets / max(1, int(np.ceil(n_blocks / stride)))))
    job = _ChunkJob(rec, config, thr, noise, active, margin, pre, length, dead, n_per_block, seed, stride)
    writer = None
    if waveform_file is not None:
        from .waveform_store import WaveformWriter

        writer = WaveformWriter(waveform_file, rec.n_channels, length, waveform_attrs)
    # Per chunk, only compact per-spike columns are kept (time int64, channel int32, amplitude, and the
    # waveform's row in the file, or the waveforms themselves in memory), appended as chunks come: in the
    # run's spill folder when there is one (spikevae.execution.spill), so what this process holds does not
    # grow with the recording. Each chunk is put in (time, channel) order, so the whole is in order too
    # except, rarely, across a chunk border (alignment moves a peak by a sample or two): only there is it sorted.
    from .execution.spill import Column

    cols = {"t": Column(np.int64), "ch": Column(np.int32), "amp": Column(np.float32),
            "wf": Column(np.int32) if writer is not None else Column(np.float32, (length,))}
    parts: dict[str, list] = {k: [] for k in ("nz", "nze", "nzb", "nzd")}
    sizes: list[int] = []  # spikes of each chunk with any
    from .execution import release_memory
    from .execution.memory import return_large_arrays

    # each chunk allocates the same buffers again: the heap reuses them here and in the workers forked below
    # (20 % less CPU than glibc's default threshold, which starts low and maps and zeroes them afresh)
    return_large_arrays(False)
    try:
        for i, r in enumerate(_map_chunks(job, ranges, n_jobs, progress)):
            if i % 32 == 31:  # freed chunk buffers back to the OS, or the resident size creeps up with the recording
                release_memory()
            t_c, ch_c, wf_c, *nz_c = r
            if len(t_c):
                o = np.lexsort((ch_c, t_c))
                t_c, ch_c, wf_c = t_c[o], ch_c[o], wf_c[o]
                cols["t"].append(t_c)
                sizes.append(t_c.size)
                cols["ch"].append(ch_c)
                cols["amp"].append(wf_c[:, pre])
                cols["wf"].append(writer.append(ch_c, wf_c) if writer is not None else wf_c)
            if len(nz_c) == 4 and len(nz_c[1]):  # this chunk's first windows per block: a superset of the final ones
                keep = _first_per_block_index(nz_c[1], nz_c[2], nz_c[3], n_per_block)
                for k, v in zip(("nz", "nze", "nzb", "nzd"), nz_c):
                    parts[k].append(v[keep])
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    cols = {k: c.finish() for k, c in cols.items()}
    _order_across_borders(cols, np.cumsum(sizes)[:-1] if sizes else np.zeros(0, np.int64))
    electrode = cols.pop("ch")  # int32: Spikes' electrode dtype
    if writer is not None:
        from .waveform_store import DiskWaveforms

        wf = DiskWaveforms(waveform_file, electrode, cols.pop("wf"), length)  # shares the electrode array
    else:
        wf = cols.pop("wf")
    nz = np.concatenate(parts["nz"]).astype(np.float32) if parts["nz"] else np.zeros((0, length), np.float32)
    nze, nzb, nzd = (np.concatenate(parts[k]) if parts[k] else np.zeros(0, np.int64) for k in ("nze", "nzb", "nzd"))
    nz, nze = _first_per_block(nz, nze, nzb, nzd, n_per_block)
    spikes = Spikes(sample_index=cols.pop("t"), electrode=electrode, waveforms=wf, amplitude_uv=cols.pop("amp"),
                    noise_uv=noise, fs=fs, peak_index=pre, channel_ids=rec.channel_ids,
                    noise_snippets=nz, noise_electrode=nze)
    log.info("detected %d spikes on %d electrodes", spikes.n_spikes, int(active.sum()))
    return spikes
