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

import numpy as np  # noqa: E402
from scipy.interpolate import CubicSpline  # noqa: E402
from scipy.ndimage import gaussian_filter1d, maximum_filter1d  # noqa: E402

from .errors import RecordingError  # noqa: E402
from .objects import Spikes  # noqa: E402
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

    A sample is a spike peak when it crosses the threshold, is a local extremum, and is
    the largest within ±``dead`` samples on its channel.

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
    y = -x if polarity == "neg" else (x if polarity == "pos" else np.abs(x))
    above = y > thr[None, :]
    local = np.zeros_like(above)
    local[1:-1] = (y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:])
    cand = above & local
    if dead > 0:
        cand &= y >= maximum_filter1d(y, size=2 * dead + 1, axis=0, mode="nearest")
    t, ch = np.nonzero(cand)
    order = np.lexsort((ch, t))
    return t[order].astype(np.int64), ch[order].astype(np.int64)


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
    grid = np.arange(snips.shape[1], dtype=np.float64)
    if upsample <= 1 or len(t) == 0:
        return snips[:, pad:pad + length].astype(np.float32), np.zeros(len(t))
    spline = CubicSpline(grid, snips, axis=1)
    ref = CubicSpline(grid, gaussian_filter1d(snips, smooth, axis=1), axis=1) if smooth > 0 else spline
    half = int(round(min(max_shift, pad - 1) * upsample))
    offsets = np.arange(-half, half + 1) / upsample
    fine = ref(pre + pad + offsets)  # (n, n_offsets)
    best = np.argmax(fine * polarity[:, None], axis=1)
    out = np.empty((len(t), length), dtype=np.float32)
    base = np.arange(length, dtype=np.float64) + pad
    for k in np.unique(best):
        sel = best == k
        out[sel] = spline(base + offsets[k])[sel]
    return out, offsets[best]


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


def _clean_noise_windows(x, above, left, start, stop, length, n_per_block, block_len, n_samples, active, seed):
    """Spike-free windows of ``length`` whose start lies in the chunk ``[start, stop)``.

    Returns
    -------
    waveforms : ndarray (n, length); electrode, block, draw : ndarray (n,) int64
        Every clean candidate; the caller keeps the first ``n_per_block`` of each (block, electrode)
        in draw order, once all chunks are in.
    """
    n_draw = 4 * n_per_block
    c = np.concatenate([np.zeros((1, above.shape[1]), np.int64), np.cumsum(above, axis=0)])
    wf, el, blk, drw = [], [], [], []
    for b in range(start // block_len, (stop - 1) // block_len + 1):
        cand = _noise_candidates(b, block_len, n_samples, length, n_draw, seed)
        draw = np.flatnonzero((cand >= start) & (cand < stop))
        pos = cand[draw] - start + left
        for ch in np.nonzero(active)[0]:
            ok = (c[pos + length, ch] - c[pos, ch]) == 0
            if ok.any():
                wf.append(x[pos[ok][:, None] + np.arange(length)[None, :], ch])
                el.append(np.full(int(ok.sum()), ch, np.int64))
                blk.append(np.full(int(ok.sum()), b, np.int64))
                drw.append(draw[ok])
    if not wf:
        return np.zeros((0, length), np.float32), *(np.zeros(0, np.int64) for _ in range(3))
    return np.concatenate(wf), np.concatenate(el), np.concatenate(blk), np.concatenate(drw).astype(np.int64)


def _first_per_block(nz, nze, nzb, nzd, n_per_block):
    """The first ``n_per_block`` clean windows of each (block, electrode), in draw order."""
    if nze.size == 0:
        return nz, nze
    order = np.lexsort((nzd, nze, nzb))
    key = nzb[order] * (int(nze.max()) + 1) + nze[order]
    first = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    rank = np.arange(key.size) - np.repeat(first, np.diff(np.r_[first, key.size]))
    keep = order[rank < n_per_block]
    keep = keep[np.lexsort((nzd[keep], nze[keep], nzb[keep]))]
    return nz[keep], nze[keep]


class _ChunkJob:
    """Detection of one chunk, with everything fixed before the loop (picklable for worker processes)."""

    def __init__(self, rec, config, thr, noise, active, margin, pre, length, dead, n_snip, seed):
        self.rec, self.config, self.thr, self.noise, self.active = rec, config, thr, noise, active
        self.margin, self.pre, self.length, self.dead, self.n_snip, self.seed = margin, pre, length, dead, n_snip, seed

    def __call__(self, item: tuple[int, tuple[int, int]]):
        ci, (start, stop) = item
        rec, cfg, pre, length = self.rec, self.config, self.pre, self.length
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
        above = np.abs(x) > (cfg.threshold * self.noise)[None, :]
        block_len = max(int(round(NOISE_BLOCK_S * rec.fs)), 4 * length)
        nz = _clean_noise_windows(x, above, left, start, stop, length, self.n_snip, block_len, rec.n_samples,
                                  self.active, self.seed) if self.n_snip else (np.zeros((0, length), np.float32),)
        return (t - left + start + np.round(shift).astype(np.int64), ch, wf, *nz)


def _map_chunks(job: _ChunkJob, ranges: list, n_jobs: int, progress: bool):
    """``job`` over every chunk, yielding results in order as they finish (so the caller can write each
    chunk's waveforms away before the next arrives); in ``n_jobs`` worker processes when there is
    enough work."""
    items = list(enumerate(ranges))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="detect", unit="chunk")
    try:
        if n_jobs > 1 and len(items) >= 4 * n_jobs:
            from threadpoolctl import threadpool_limits

            from .execution import worker_pool

            with threadpool_limits(1), worker_pool(n_jobs) as ex:
                for r in ex.map(job, items, chunksize=2):
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
    n_per_block = int(np.ceil(config.noise_snippets / max(1, n_blocks)))
    job = _ChunkJob(rec, config, thr, noise, active, margin, pre, length, dead, n_per_block, seed)
    writer = None
    if waveform_file is not None:
        from .waveform_store import WaveformWriter

        writer = WaveformWriter(waveform_file, rec.n_channels, length, waveform_attrs)
    parts: dict[str, list] = {k: [] for k in ("t", "ch", "wf", "amp", "nz", "nze", "nzb", "nzd")}
    try:
        for r in _map_chunks(job, ranges, n_jobs, progress):
            t_c, ch_c, wf_c, *nz_c = r
            if len(t_c):
                parts["t"].append(t_c)
                parts["ch"].append(ch_c)
                parts["amp"].append(wf_c[:, pre].copy())
                parts["wf"].append(writer.append(ch_c, wf_c) if writer is not None else wf_c)
            for k, v in zip(("nz", "nze", "nzb", "nzd"), nz_c):
                if len(v):
                    parts[k].append(v)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    t = np.concatenate(parts["t"]) if parts["t"] else np.zeros(0, np.int64)
    ch = np.concatenate(parts["ch"]) if parts["ch"] else np.zeros(0, np.int64)
    amp = np.concatenate(parts["amp"]) if parts["amp"] else np.zeros(0, np.float32)
    order = np.lexsort((ch, t))
    if writer is not None:
        from .waveform_store import DiskWaveforms

        row = np.concatenate(parts["wf"]) if parts["wf"] else np.zeros(0, np.int64)
        wf = DiskWaveforms(waveform_file, ch[order], row[order], length)
    else:
        wf = np.concatenate(parts["wf"])[order] if parts["wf"] else np.zeros((0, length), np.float32)
    del parts["wf"]
    nz = np.concatenate(parts["nz"]).astype(np.float32) if parts["nz"] else np.zeros((0, length), np.float32)
    nze, nzb, nzd = (np.concatenate(parts[k]) if parts[k] else np.zeros(0, np.int64) for k in ("nze", "nzb", "nzd"))
    nz, nze = _first_per_block(nz, nze, nzb, nzd, n_per_block)
    spikes = Spikes(sample_index=t[order], electrode=ch[order], waveforms=wf, amplitude_uv=amp[order],
                    noise_uv=noise, fs=fs, peak_index=pre, channel_ids=rec.channel_ids,
                    noise_snippets=nz, noise_electrode=nze)
    log.info("detected %d spikes on %d electrodes", spikes.n_spikes, int(active.sum()))
    return spikes
