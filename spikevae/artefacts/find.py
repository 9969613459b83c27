"""Find artefacts among detected spikes and remove them before clustering.

Two kinds of event are not spikes of a neuron:

- **coincident**: threshold crossings on many electrodes at once (stimulation, movement,
  chewing, a knocked cable). A Utah array's electrodes are 400 µm apart, so a neuron is seen
  on one of them; by chance, even at 50 detections per second on every electrode, fewer than
  one event in a million puts ``min_electrodes`` of 16 electrodes in the same millisecond.
  Time is cut into bins of ``window_ms``; an event is any run of two-bin windows in which at
  least ``max(min_electrodes, ceil(min_fraction × electrodes with spikes))`` distinct
  electrodes cross. Its spikes, and every spike from ``blank_before_ms`` before its first
  crossing to ``blank_after_ms`` after its last, on every electrode, are removed.
- **amplitude**: a spike larger than ``max_amplitude_uv`` (no neuron makes it; the
  amplifier's rail is ±8.2 mV on Blackrock front ends). The spike and those within the
  blanking window on the same electrode are removed.
- **artefact electrodes**: an electrode whose spikes pass ``max_amplitude_uv`` more than
  ``max_electrode_rate_hz`` times a second (and at least 5 times) is a stimulating, broken or
  saturating electrode: what it records between its artefacts is their ringing and recovery
  (on the real stimulation session in ``../shared/data/blackrock_limblab_utah`` the spikes left
  there fall at whole multiples of 10 ms after its 100 Hz pulses). All its spikes are removed.

Works on any :class:`~spikevae.objects.Spikes`: detected from a continuous recording, or
read from a Blackrock ``.nev`` (whose acquisition system detected them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..objects import Spikes, count_values
from .config import ArtefactConfig

log = logging.getLogger(__name__)

#: ``electrode`` of an event that blanks every electrode.
ALL_ELECTRODES = -1
KINDS = ("coincident", "amplitude")


@dataclass
class Artefacts:
    """Artefact events of a recording, sorted by start.

    Attributes
    ----------
    start, end : ndarray of shape (n_events,), int64, samples
        First and last threshold crossing of the event (blanking extends beyond them).
    kind : ndarray of shape (n_events,), int64
        Index into :data:`KINDS`: 0 coincident (blanks every electrode), 1 amplitude (blanks ``electrode``).
    electrode : ndarray of shape (n_events,), int64
        The electrode an amplitude event blanks; :data:`ALL_ELECTRODES` for coincident events.
    n_electrodes : ndarray of shape (n_events,), int64
        Distinct electrodes that crossed threshold during the event.
    max_amplitude_uv : ndarray of shape (n_events,), float32, µV
        Largest |peak| of the event's crossings.
    n_removed : ndarray of shape (n_events,), int64
        Spikes removed with this event (each removed spike is counted once, at its first event).
    removed_per_electrode : ndarray of shape (n_electrodes_total,), int64
        Spikes removed on each electrode.
    n_spikes_before : int
        Spikes before removal.
    fs : float, Hz
    excluded_electrodes : ndarray of shape (k,), int64
        Artefact electrodes, all of whose spikes were removed.
    """

    start: np.ndarray
    end: np.ndarray
    kind: np.ndarray
    electrode: np.ndarray
    n_electrodes: np.ndarray
    max_amplitude_uv: np.ndarray
    n_removed: np.ndarray
    removed_per_electrode: np.ndarray
    n_spikes_before: int
    fs: float
    excluded_electrodes: np.ndarray = None

    def __post_init__(self) -> None:
        self.excluded_electrodes = np.asarray([] if self.excluded_electrodes is None else self.excluded_electrodes,
                                              dtype=np.int64)

    @property
    def n_events(self) -> int:
        return int(self.start.shape[0])

    @property
    def found(self) -> bool:
        """True when anything was found (events or artefact electrodes)."""
        return bool(self.n_events or self.excluded_electrodes.size)

    @property
    def n_spikes_removed(self) -> int:
        return int(self.removed_per_electrode.sum())

    @classmethod
    def empty(cls, n_electrodes: int, n_spikes: int, fs: float) -> "Artefacts":
        z = np.zeros(0, np.int64)
        return cls(z, z.copy(), z.copy(), z.copy(), z.copy(), np.zeros(0, np.float32), z.copy(),
                   np.zeros(n_electrodes, np.int64), int(n_spikes), float(fs))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for the run store (scalars as 0-d arrays)."""
        return {"start": self.start, "end": self.end, "kind": self.kind, "electrode": self.electrode,
                "n_electrodes": self.n_electrodes, "max_amplitude_uv": self.max_amplitude_uv,
                "n_removed": self.n_removed, "removed_per_electrode": self.removed_per_electrode,
                "n_spikes_before": np.int64(self.n_spikes_before), "fs": np.float64(self.fs),
                "excluded_electrodes": self.excluded_electrodes}

    @classmethod
    def from_arrays(cls, a: dict) -> "Artefacts":
        return cls(**{k: np.asarray(a[k]) for k in ("start", "end", "kind", "electrode", "n_electrodes",
                                                     "max_amplitude_uv", "n_removed", "removed_per_electrode")},
                   n_spikes_before=int(a["n_spikes_before"]), fs=float(a["fs"]),
                   excluded_electrodes=a.get("excluded_electrodes"))

    def rows(self, channel_ids=None) -> list[dict]:
        """One row per artefact electrode (kind "electrode": all its spikes removed) and per event:
        time (s), duration (ms), kind, electrode, crossings, amplitude, removed spikes."""
        out = [{"time_s": 0.0, "duration_ms": "", "kind": "electrode",
                "electrode": str(channel_ids[el]) if channel_ids is not None else int(el), "n_electrodes": 1,
                "max_amplitude_uv": "", "n_spikes_removed": int(self.removed_per_electrode[el])}
               for el in self.excluded_electrodes]
        for i in range(self.n_events):
            el = int(self.electrode[i])
            out.append({
                "time_s": round(float(self.start[i]) / self.fs, 6),
                "duration_ms": round(float(self.end[i] - self.start[i]) * 1e3 / self.fs, 3),
                "kind": KINDS[int(self.kind[i])],
                "electrode": "all" if el == ALL_ELECTRODES else (str(channel_ids[el]) if channel_ids is not None else el),
                "n_electrodes": int(self.n_electrodes[i]),
                "max_amplitude_uv": round(float(self.max_amplitude_uv[i]), 1),
                "n_spikes_removed": int(self.n_removed[i]),
            })
        return out

    def summary(self) -> dict:
        kinds = {k: int((self.kind == i).sum()) for i, k in enumerate(KINDS)}
        return {"n_events": self.n_events, "events_by_kind": kinds, "n_spikes_removed": self.n_spikes_removed,
                "excluded_electrodes": self.excluded_electrodes.tolist(),
                "n_spikes_before": self.n_spikes_before,
                "fraction_removed": round(self.n_spikes_removed / max(self.n_spikes_before, 1), 6)}


#: Spikes per block of :func:`_coincident_windows` (its temporaries are ~100 bytes per spike).
WINDOW_BLOCK = 1 << 18


def _coincident_windows(t: np.ndarray, e: np.ndarray, n_el: int, w: int, need: int,
                        block: int = WINDOW_BLOCK) -> np.ndarray:
    """Start bins b of the two-bin windows [b w, (b + 2) w) with >= ``need`` distinct electrodes.

    ``t`` sorted. Computed over blocks of about ``block`` spikes that end at a bin border, each with
    the next bin as look-ahead, so memory does not grow with the recording; the result is the same.
    """
    n, out, a = t.size, [], 0
    while a < n:
        c = min(a + block, n)
        if c < n:
            last = int(t[c - 1] // w)
            c = int(np.searchsorted(t, (last + 1) * w, "left"))  # the block ends with its last bin
            ahead = int(np.searchsorted(t, (last + 2) * w, "left"))  # and sees the next one
            wins = _coincident_windows_block(t[a:ahead], e[a:ahead], n_el, w, need)
            out.append(wins[wins <= last])
        else:
            out.append(_coincident_windows_block(t[a:], e[a:], n_el, w, need))
        a = c
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _coincident_windows_block(t: np.ndarray, e: np.ndarray, n_el: int, w: int, need: int) -> np.ndarray:
    b = t // w
    pair = np.unique(b * n_el + e)  # distinct (bin, electrode), sorted by bin
    pb, pe = pair // n_el, pair % n_el
    bins, counts = np.unique(pb, return_counts=True)
    # electrodes present in both bin b and bin b + 1: sort the pairs by (electrode, bin)
    o = np.lexsort((pb, pe))
    se, sb = pe[o], pb[o]
    both = (se[1:] == se[:-1]) & (sb[1:] == sb[:-1] + 1)
    shared = np.zeros(bins.shape[0], np.int64)
    np.add.at(shared, np.searchsorted(bins, sb[:-1][both]), 1)
    nxt = np.searchsorted(bins, bins + 1)
    has_next = (nxt < bins.shape[0]) & (bins[np.minimum(nxt, bins.shape[0] - 1)] == bins + 1)
    union = counts + np.where(has_next, counts[np.minimum(nxt, bins.shape[0] - 1)], 0) - shared
    return bins[union >= need]


def _merge(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of the closed intervals [lo, hi] (sorted by lo) as disjoint intervals."""
    if lo.size == 0:
        return lo, hi
    run_hi = np.maximum.accumulate(hi)
    new = np.r_[True, lo[1:] > run_hi[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], lo.size] - 1
    return lo[starts], run_hi[ends]


def find_artefacts(spikes: Spikes, config: ArtefactConfig | None = None,
                   duration_s: float | None = None) -> tuple[Artefacts, np.ndarray]:
    """Artefact events among ``spikes`` and which spikes they remove.

    Parameters
    ----------
    spikes : Spikes
    config : ArtefactConfig, optional
    duration_s : float, optional
        Length of the recording (for the artefact-electrode rate); default: the span of the spikes.

    Returns
    -------
    artefacts : Artefacts
    removed : ndarray of shape (n_spikes,), bool
        True for the spikes to drop (inside an event's blanking window).
    """
    cfg = config or ArtefactConfig()
    n, n_el, fs = spikes.n_spikes, spikes.n_electrodes, spikes.fs
    empty = Artefacts.empty(n_el, n, fs), np.zeros(n, bool)
    if not cfg.enabled or n == 0:
        return empty
    t, e = spikes.sample_index, spikes.electrode
    ordered = bool(np.all(t[1:] >= t[:-1]))  # detection's spikes are: no sorted copies then
    order = slice(None) if ordered else np.argsort(t, kind="stable")
    ts, es = t[order], e[order]
    amp = np.abs(spikes.amplitude_uv[order]).astype(np.float32, copy=False)  # one array, not two
    before = int(round(cfg.blank_before_ms * fs / 1e3))
    after = int(round(cfg.blank_after_ms * fs / 1e3))

    events = []  # (start, end, kind, electrode, blank_lo, blank_hi)
    n_active = int(np.count_nonzero(np.bincount(es, minlength=n_el)))  # no sorted copy of every spike's electrode
    need = max(int(cfg.min_electrodes), int(np.ceil(cfg.min_fraction * n_active - 1e-9)))
    if n_active >= cfg.min_electrodes:
        w = max(1, int(round(cfg.window_ms * fs / 1e3)))
        wins = _coincident_windows(ts, es, n_el, w, need)
        lo, hi = _merge(wins * w, wins * w + 2 * w - 1 + after)  # ringing within the blanking: the same event
        hi = hi - after
        for a, b in zip(lo, hi):
            i0, i1 = np.searchsorted(ts, a, "left"), np.searchsorted(ts, b, "right")
            if i1 > i0:
                events.append((int(ts[i0]), int(ts[i1 - 1]), 0, ALL_ELECTRODES))
    if cfg.max_amplitude_uv > 0:
        for i in np.flatnonzero(amp > cfg.max_amplitude_uv):
            events.append((int(ts[i]), int(ts[i]), 1, int(es[i])))
    excluded = np.zeros(0, np.int64)
    if cfg.max_amplitude_uv > 0 and cfg.max_electrode_rate_hz > 0:
        dur = duration_s if duration_s else max(float(ts[-1] - ts[0]) / fs, 1.0 / fs)
        big = np.bincount(es[amp > cfg.max_amplitude_uv], minlength=n_el)
        excluded = np.flatnonzero((big >= 5) & (big > cfg.max_electrode_rate_hz * dur)).astype(np.int64)
        for el in excluded:
            log.warning("electrode %s: %d spikes above artefact.max_amplitude_uv = %g µV in %.1f s (a stimulating, "
                        "broken or saturating electrode): all its spikes are left out as artefacts "
                        "(--set artefact.max_electrode_rate_hz=0 keeps them)",
                        spikes.channel_ids[el], big[el], cfg.max_amplitude_uv, dur)
    if not events and not excluded.size:
        return empty

    events.sort()
    start = np.array([ev[0] for ev in events], np.int64).reshape(-1)
    end = np.array([ev[1] for ev in events], np.int64).reshape(-1)
    kind = np.array([ev[2] for ev in events], np.int64).reshape(-1)
    elec = np.array([ev[3] for ev in events], np.int64).reshape(-1)
    # Drop amplitude events inside a coincident event's blanking window (the same event).
    coinc = kind == 0
    if coinc.any() and (~coinc).any():
        c_lo, c_hi = _merge(start[coinc] - before, end[coinc] + after)
        j = np.searchsorted(c_lo, start, "right") - 1
        inside = (~coinc) & (j >= 0) & (start <= c_hi[np.maximum(j, 0)])
        keep = ~inside
        start, end, kind, elec = start[keep], end[keep], kind[keep], elec[keep]

    removed_sorted = np.zeros(n, bool)
    first_event = np.full(n, -1, np.int32 if start.size < 2**31 else np.int64)
    n_elec = np.zeros(start.size, np.int64)
    max_amp = np.zeros(start.size, np.float32)
    for k in range(start.size):
        i0 = np.searchsorted(ts, start[k] - before, "left")
        i1 = np.searchsorted(ts, end[k] + after, "right")
        hit = np.arange(i0, i1)
        if elec[k] != ALL_ELECTRODES:
            hit = hit[es[hit] == elec[k]]
        core = (ts[hit] >= start[k]) & (ts[hit] <= end[k])
        n_elec[k] = np.unique(es[hit[core]]).size
        max_amp[k] = amp[hit[core]].max() if core.any() else 0.0
        new = hit[~removed_sorted[hit]]
        first_event[new] = k
        removed_sorted[hit] = True
    n_removed = np.bincount(first_event[first_event >= 0], minlength=start.size).astype(np.int64)
    removed = np.zeros(n, bool)
    removed[order] = removed_sorted
    for el in excluded:  # a few electrodes: no temporaries the length of the recording
        removed |= e == el
    per_el = np.bincount(e[removed], minlength=n_el).astype(np.int64)
    art = Artefacts(start, end, kind, elec, n_elec, max_amp, n_removed, per_el, n, fs, excluded)
    _warn_if_neurons(spikes, art, cfg)
    return art, removed


def _warn_if_neurons(spikes: Spikes, art: Artefacts, cfg: ArtefactConfig) -> None:
    """Warn when the amplitude limit removes a large share of one electrode's spikes: a unit
    that big is more likely a wrong gain than an artefact."""
    amp_events = art.electrode[art.kind == 1]
    if amp_events.size == 0:
        return
    per_el = np.bincount(amp_events, minlength=spikes.n_electrodes)
    total = np.maximum(count_values(spikes.electrode, spikes.n_electrodes), 1)
    bad = np.flatnonzero((per_el >= 20) & (per_el > 0.05 * total))
    for el in bad[:5]:
        log.warning("electrode %s: %d of %d spikes are above artefact.max_amplitude_uv = %g µV and were removed; "
                    "if they are a neuron's, check the gain (--gain-uv) or raise artefact.max_amplitude_uv",
                    spikes.channel_ids[el], per_el[el], total[el], cfg.max_amplitude_uv)


def reject_artefacts(spikes: Spikes, config: ArtefactConfig | None = None,
                     duration_s: float | None = None) -> tuple[Spikes, Artefacts]:
    """``spikes`` without the artefacts' spikes, and the artefacts (see :func:`find_artefacts`)."""
    art, removed = find_artefacts(spikes, config, duration_s)
    if art.found:
        log.info("artefacts: %d events removed %d of %d spikes", art.n_events, art.n_spikes_removed, spikes.n_spikes)
    return (spikes.subset(~removed) if removed.any() else spikes), art
