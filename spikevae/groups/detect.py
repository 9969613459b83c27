"""Channel groups (tetrodes, shanks of close contacts) sorted as one "electrode".

A neuron near a tetrode is seen on all four of its contacts. Sorted channel by channel it
would be reported up to four times; sorted as a group it is one unit whose waveform is
the concatenation of the group's channels. ``input.groups`` says which channels form a
group (default: none, every channel alone, exactly as without this module).

Detection per group (:func:`detect_groups`): the channels are detected as usual
(:func:`spikevae.detect.detect_spikes`, each channel with its own threshold); crossings of
one group closer than the dead time to each other form one event, kept at the channel with
the largest peak (in noise σ). Each event's waveform is the group's channels aligned on that
peak's sub-sample extremum (one shift for all channels) and concatenated in the group's
channel order: shape
``(n, k * L)``, ``L`` samples per channel; groups with fewer than ``k`` channels are padded
with zeros. The resulting :class:`~spikevae.objects.Spikes` has one "electrode" per group
(``channel_ids`` are the group names, e.g. ``"1+2+3+4"``), ``group_channels`` (the group's
channel indices, -1 padded) and ``segment_noise_uv`` (the σ of each channel segment), so
that the noise scaling is per channel segment.

Supported downstream: PCA features, every clusterer with refinement, quality metrics,
reports, scores. Not supported for groups (refused or skipped with a message): VAE
features, the synthetic noise class and overlap resolution (both model one channel's noise).
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import SpikevaeConfigError
from ..objects import Spikes
from ..recording import Recording, get_chunk_with_margin

log = logging.getLogger(__name__)


def resolve_groups(spec, rec: Recording) -> list[list[int]] | None:
    """Channel indices of each group from ``input.groups``.

    Parameters
    ----------
    spec : list
        ``[]`` (every channel alone: returns None), ``["all"]`` (one group of every
        channel), ``["probe"]`` (the recording's ``channel_groups``, e.g. shank ids from
        an electrode map), or groups of channel ids: each item a list of ids or a string
        ``"1+2+3+4"``; channels in no group are sorted alone.
    rec : Recording

    Returns
    -------
    list of list of int, or None
        Channel indices (into ``rec.channel_ids``) of each group, in the order given.

    Raises
    ------
    SpikevaeConfigError
        For an unknown channel id, a channel in two groups, or ``probe`` without groups.
    """
    items = list(spec or [])
    if not items:
        return None
    if items in (["all"], ["probe"]):
        return _keyword_groups(items[0], rec)
    index = {cid: i for i, cid in enumerate(rec.channel_ids)}
    groups, seen = [], set()
    for item in items:
        ids = [s.strip() for s in item.split("+")] if isinstance(item, str) else [str(c) for c in item]
        missing = [c for c in ids if c not in index]
        if missing:
            raise SpikevaeConfigError(f"input.groups: no channel {', '.join(missing)} in {rec.source}; its channel ids "
                                      f"are {', '.join(rec.channel_ids[:8])}{' ...' if rec.n_channels > 8 else ''}")
        twice = [c for c in ids if index[c] in seen]
        if twice:
            raise SpikevaeConfigError(f"input.groups: channel {', '.join(twice)} is in more than one group; "
                                      "put each channel in one group")
        seen.update(index[c] for c in ids)
        groups.append([index[c] for c in ids])
    groups += [[c] for c in range(rec.n_channels) if c not in seen]
    return groups


def _keyword_groups(word: str, rec: Recording) -> list[list[int]]:
    if word == "all":
        return [list(range(rec.n_channels))]
    shank = getattr(rec, "channel_groups", None)
    if shank is None:
        raise SpikevaeConfigError(f"input.groups=probe: {rec.source} has no channel groups in its electrode map; "
                                  "list the groups (e.g. input.groups = [[\"1\",\"2\",\"3\",\"4\"]]) or use \"all\"")
    shank = np.asarray(shank)
    return [np.flatnonzero(shank == g).tolist() for g in np.unique(shank)]


def merge_events(t: np.ndarray, ch: np.ndarray, peak_sigma: np.ndarray, group_of: np.ndarray,
                 dead: int) -> tuple[np.ndarray, np.ndarray]:
    """One event per run of crossings of a group closer than ``dead`` samples.

    Parameters
    ----------
    t, ch : ndarray of shape (n,), int64
        Aligned sample and channel of every per-channel detection.
    peak_sigma : ndarray of shape (n,)
        Size of each peak in noise σ (larger wins).
    group_of : ndarray of shape (n_channels,), int64
        Group index of each channel.
    dead : int
        Dead time in samples: crossings of one group at most this far apart are one event.

    Returns
    -------
    keep : ndarray of int64
        Indices into ``t`` of the kept events (the largest peak of each run), by group then time.
    group : ndarray of int64
        Group of each kept event.
    """
    g = group_of[ch]
    if t.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((t, g))
    tg, gg = t[order], g[order]
    run = np.cumsum(np.r_[True, (gg[1:] != gg[:-1]) | (np.diff(tg) > dead)]) - 1
    by_size = np.lexsort((-peak_sigma[order], run))  # each run's largest peak first
    first = by_size[np.r_[True, run[by_size][1:] != run[by_size][:-1]]]
    keep = order[np.sort(first)]
    return keep, g[keep]


def cut_group_waveforms(rec: Recording, t: np.ndarray, group: np.ndarray, channels: np.ndarray,
                        pre: int, length: int, chunk: int, peak_channel: np.ndarray | None = None,
                        sign: np.ndarray | None = None, upsample: int = 1, smooth: float = 0.0,
                        max_shift: float = 0.5) -> np.ndarray:
    """Concatenated waveforms of every event, read chunk by chunk.

    With ``upsample > 1``, the sub-sample extremum is found on the event's ``peak_channel``
    (:func:`spikevae.detect.align_waveforms`) and every channel of the group is resampled
    by that same shift, so the channels stay in register.

    Parameters
    ----------
    rec : Recording
        The filtered recording.
    t, group : ndarray of shape (n,), int64
        Aligned peak sample and group of each event; ``t - pre - 4 >= 0``, ``t - pre + length + 4 <= n_samples``.
    channels : ndarray of shape (n_groups, k), int64
        Channel indices of each group, -1 padded.
    pre, length, chunk : int
        Samples before the peak, samples per channel, samples per read.
    peak_channel, sign : ndarray of shape (n,), optional
        Channel of each event's peak and the sign of its extremum (needed with ``upsample > 1``).
    upsample, smooth, max_shift
        As for :func:`spikevae.detect.align_waveforms` (samples).

    Returns
    -------
    ndarray of shape (n, k * length), float32, µV (zeros in padded segments)
    """
    from ..detect import ALIGN_PAD, align_waveforms

    k = channels.shape[1]
    out = np.zeros((t.size, k, length), np.float32)
    for start, stop in rec.chunks(chunk):
        sel = np.flatnonzero((t >= start) & (t < stop))
        if sel.size == 0:
            continue
        x, left, _ = get_chunk_with_margin(rec, start, stop, length + ALIGN_PAD + 2)
        tl = t[sel] - start + left
        shift = np.zeros(sel.size)
        if upsample > 1:
            shift = align_waveforms(x, tl, peak_channel[sel], pre, length, upsample, sign[sel], smooth, max_shift)[1]
        for j in range(k):
            c = channels[group[sel], j]
            ok = c >= 0
            out[sel[ok], j] = _resample(x, tl[ok], c[ok], pre, length, shift[ok])
    return out.reshape(t.size, k * length)


def _resample(x: np.ndarray, t: np.ndarray, ch: np.ndarray, pre: int, length: int, shift: np.ndarray) -> np.ndarray:
    """Waveforms of ``length`` around ``t`` on channels ``ch``, moved by ``shift`` samples (cubic spline)."""
    from scipy.interpolate import CubicSpline

    from ..detect import ALIGN_PAD

    pad = ALIGN_PAD
    snips = x[t[:, None] + np.arange(-pre - pad, length - pre + pad)[None, :], ch[:, None]].astype(np.float64)
    if not np.any(shift):
        return snips[:, pad:pad + length].astype(np.float32)
    spline = CubicSpline(np.arange(snips.shape[1], dtype=np.float64), snips, axis=1)
    out = np.empty((t.size, length), np.float32)
    base = np.arange(length, dtype=np.float64) + pad
    for v in np.unique(shift):
        m = shift == v
        out[m] = spline(base + v)[m]
    return out


def group_table(groups: list[list[int]], noise: np.ndarray, channel_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``group_channels`` (-1 padded), ``segment_noise_uv`` (0 padded) and the group names."""
    k = max(len(g) for g in groups)
    chans = np.full((len(groups), k), -1, np.int64)
    seg = np.zeros((len(groups), k), np.float32)
    for i, g in enumerate(groups):
        chans[i, :len(g)] = g
        seg[i, :len(g)] = noise[g]
    names = np.array(["+".join(str(channel_ids[c]) for c in g) for g in groups])
    return chans, seg, names


def detect_groups(rec: Recording, config, groups: list[list[int]], chunk_s: float = 1.0, progress: bool = False,
                  skip_channels=(), seed: int = 0, n_jobs: int = 1) -> Spikes:
    """Detect spikes per channel group; one event per group and dead time, concatenated waveforms.

    Parameters
    ----------
    rec : Recording
        The preprocessed recording.
    config : DetectConfig
    groups : list of list of int
        Channel indices of each group (:func:`resolve_groups`); every channel in at most one group.
    chunk_s, progress, skip_channels, seed, n_jobs
        As for :func:`spikevae.detect.detect_spikes`.

    Returns
    -------
    Spikes
        ``electrode`` is the group index, ``channel_ids`` the group names, waveforms
        ``(n, k * L)`` µV with the peak of each channel segment at ``peak_index`` within it,
        ``amplitude_uv`` the signed peak on the event's largest channel, ``noise_uv`` the
        median σ of the group's channels, no noise snippets.
    """
    from ..detect import ms_to_samples, detect_spikes

    per = detect_spikes(rec, config, chunk_s=chunk_s, progress=progress, skip_channels=skip_channels, seed=seed,
                        n_jobs=n_jobs)
    group_of = np.full(rec.n_channels, -1, np.int64)
    for i, g in enumerate(groups):
        group_of[g] = i
    sel = np.flatnonzero(group_of[per.electrode] >= 0)
    size = np.abs(per.amplitude_uv[sel]) / np.maximum(per.noise_uv[per.electrode[sel]], 1e-6)
    keep, grp = merge_events(per.sample_index[sel], per.electrode[sel], size, group_of,
                             ms_to_samples(config.dead_time_ms, rec.fs))
    keep = sel[keep]
    chans, seg, names = group_table(groups, per.noise_uv, rec.channel_ids)
    pre, length = per.peak_index, per.n_samples
    amp = per.amplitude_uv[keep]
    sign = {"neg": -np.ones(keep.size), "pos": np.ones(keep.size)}.get(config.polarity, np.sign(amp) + (amp == 0))
    wf = cut_group_waveforms(rec, per.sample_index[keep], grp, chans, pre, length,
                             max(int(chunk_s * rec.fs), 4 * length), per.electrode[keep], sign, config.upsample,
                             config.align_smooth_ms * 1e-3 * rec.fs, config.align_max_shift_ms * 1e-3 * rec.fs)
    noise = np.array([np.median(per.noise_uv[g]) for g in groups], np.float32)
    log.info("channel groups: %d per-channel detections -> %d events on %d groups", sel.size, keep.size, len(groups))
    return Spikes(per.sample_index[keep], grp, wf, per.amplitude_uv[keep], noise, rec.fs, pre, names,
                  group_channels=chans, segment_noise_uv=seg)
