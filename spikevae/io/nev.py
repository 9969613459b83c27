"""Spikes from a Blackrock ``.nev`` file: the waveforms the acquisition system already cut.

Many Utah-array labs keep only the ``.nev`` file: for each threshold crossing, a
48-sample waveform (1.6 ms at 30 kHz) and a timestamp. :func:`read_nev` turns it into
:class:`~spikevae.objects.Spikes` without re-aligning anything:

- **Electrodes.** neo lists one spike channel per (electrode, online unit) pair
  (``ch65#0``, ``ch65#1`` ...). Online sorting is ignored: all units of one electrode go
  to that electrode. ``channel_ids`` are the electrode ids as strings (``"1"`` ... ``"96"``,
  the same ids the ``.nsX`` channels carry), in increasing order.
- **Waveforms** stay as cut (no re-alignment); neo's gain turns them into µV.
- **peak_index** is the median, over all spikes, of each waveform's extremum (largest
  absolute value) position; ``amplitude_uv`` is each waveform's value there.
- **sample_index** is the sample of that peak at the waveform rate (30 kHz):
  ``round(t * fs) - left_sweep + peak_index``, where ``t`` is neo's spike time and
  ``left_sweep`` neo's number of waveform samples before the trigger (10 for Blackrock,
  neo's documented assumption).
- **noise_uv** per electrode is the MAD σ (``median|x - median x| / 0.6745``) of the
  first :data:`NOISE_SAMPLES` samples of its waveforms across spikes. These lie before
  the threshold crossing, so they are mostly background; a neighbouring spike in that
  window inflates the estimate slightly.
- ``noise_snippets`` are None: a ``.nev`` holds no spike-free signal.
"""
from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import RecordingError
from ..objects import Spikes
from .neo import check_lowercase_extension

log = logging.getLogger(__name__)

#: Leading waveform samples used for the per-electrode noise estimate (before the
#: trigger at sample 10 of a Blackrock waveform).
NOISE_SAMPLES = 6
#: MAD to σ for Gaussian noise (Quiroga et al. 2004).
MAD_TO_SIGMA = 0.6745
#: µV per unit of the waveform units neo reports.
_UNIT_TO_UV = {"uv": 1.0, "µv": 1.0, "mv": 1e3, "v": 1e6}


def _open_nev(path: Path):
    from neo.rawio import BlackrockRawIO

    if not path.is_file():
        raise RecordingError(f"{path}: file not found; check the path")
    if path.suffix.lower() != ".nev":
        raise RecordingError(f"{path}: read_nev reads Blackrock .nev files; use open_recording for traces")
    check_lowercase_extension(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Unknown event codes found": events are not used here
            # nsx_to_load=[]: read the .nev alone, even when .nsX files sit beside it.
            rawio = BlackrockRawIO(filename=str(path), nsx_to_load=[])
            rawio.parse_header()
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad input file
        raise RecordingError(f"{path}: neo could not read this .nev file ({type(exc).__name__}: {exc})") from None
    return rawio


def _electrode_of(name: str, ident: str) -> int:
    """Electrode id of a neo Blackrock spike channel (name ``ch65#0`` or id ``Unit 65000``)."""
    m = re.fullmatch(r"ch(\d+)#\d+", name)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"Unit (\d+)", ident)
    if m:
        return int(m.group(1)) // 1000
    raise RecordingError(f"unexpected neo spike channel name {name!r} / id {ident!r}; cannot tell its electrode")


def _read_channel(rawio, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (s) and waveforms (n, L) in µV of neo spike channel ``k``, all segments."""
    ch = rawio.header["spike_channels"][k]
    factor = _UNIT_TO_UV.get(str(ch["wf_units"]).lower())
    if factor is None:
        raise RecordingError(f"spike channel {ch['name']}: waveform units {ch['wf_units']!r} are not a voltage")
    times, waves = [], []
    for seg in range(rawio.segment_count(0)):
        ts = rawio.get_spike_timestamps(0, seg, k, None, None)
        raw = rawio.get_spike_raw_waveforms(0, seg, k, None, None)
        times.append(rawio.rescale_spike_timestamp(ts, "float64"))
        wf = rawio.rescale_waveforms_to_float(raw, "float32", k)
        waves.append(wf[:, 0, :] * np.float32(factor))
    return np.concatenate(times), np.concatenate(waves)


def _noise_sigma(waveforms: np.ndarray) -> float:
    x = waveforms[:, :NOISE_SAMPLES].ravel()
    return float(np.median(np.abs(x - np.median(x))) / MAD_TO_SIGMA) if x.size else 0.0


def read_nev(path, channels=None) -> Spikes:
    """Read the spike waveforms of a Blackrock ``.nev`` file (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The ``.nev`` file.
    channels : sequence of int or str, optional
        Electrode ids to keep (default: all electrodes with spikes).

    Returns
    -------
    Spikes
        ``waveforms`` of shape (n_spikes, 48) float32 µV, sorted by time; ``fs`` = 30000.

    Raises
    ------
    RecordingError
        When the file is missing or unreadable, holds no spikes, the waveform lengths
        differ between electrodes, or ``channels`` names electrodes that are absent.
    """
    path = Path(path)
    rawio = _open_nev(path)
    chans = rawio.header["spike_channels"]
    if len(chans) == 0:
        raise RecordingError(f"{path}: the .nev file holds no spikes")
    electrode_ids = np.array([_electrode_of(str(c["name"]), str(c["id"])) for c in chans])
    keep = np.unique(electrode_ids)
    if channels is not None and len(channels):
        try:
            wanted = np.array([int(c) for c in channels])
        except ValueError:
            raise RecordingError(f"{path}: channels={list(channels)!r}: give electrode ids as numbers, "
                                 "e.g. [1, 2, 96]") from None
        missing = sorted(set(wanted.tolist()) - set(keep.tolist()))
        if missing:
            raise RecordingError(f"{path}: no spikes on electrode(s) {missing}; electrodes with spikes: "
                                 f"{keep.min()}..{keep.max()} ({keep.size} electrodes)")
        keep = np.unique(wanted)
    times, waves, elec = [], [], []
    for k in np.flatnonzero(np.isin(electrode_ids, keep)):
        t, w = _read_channel(rawio, int(k))
        times.append(t), waves.append(w)
        elec.append(np.full(t.size, np.searchsorted(keep, electrode_ids[k]), dtype=np.int64))
    lengths = sorted({w.shape[1] for w in waves})
    if len(lengths) > 1:
        raise RecordingError(f"{path}: waveform lengths differ between electrodes ({lengths} samples); "
                             "read the electrodes of one length with channels=[...]")
    return _build_spikes(np.concatenate(times), np.concatenate(waves), np.concatenate(elec), keep, chans)


def _build_spikes(times, waves, elec, electrode_ids, chans) -> Spikes:
    fs = float(chans["wf_sampling_rate"][0])
    left_sweep = int(chans["wf_left_sweep"][0])
    order = np.argsort(times, kind="stable")
    times, waves, elec = times[order], waves[order], elec[order]
    peak_index = int(np.round(np.median(np.abs(waves).argmax(axis=1)))) if len(waves) else left_sweep
    sample_index = np.round(times * fs).astype(np.int64) - left_sweep + peak_index
    noise = np.array([_noise_sigma(waves[elec == e]) for e in range(len(electrode_ids))], dtype=np.float32)
    spikes = Spikes(sample_index=sample_index, electrode=elec, waveforms=waves,
                    amplitude_uv=waves[:, peak_index], noise_uv=noise, fs=fs, peak_index=peak_index,
                    channel_ids=electrode_ids.astype(str))
    log.info("read %d spikes on %d electrodes (%d-sample waveforms, peak at %d)",
             spikes.n_spikes, spikes.n_electrodes, spikes.n_samples, peak_index)
    return spikes


def nev_recording_info(spikes: Spikes, source, map_path="") -> dict:
    """The run's recording facts for spikes read from a ``.nev`` file.

    Parameters
    ----------
    spikes : Spikes
        From :func:`read_nev`.
    source : str or Path
        The ``.nev`` file.
    map_path : str or Path, optional
        An electrode map (``input.map``): adds ``positions_um`` (n_electrodes, 2) µm,
        ``electrode_labels`` and ``electrode_map`` for the electrodes of ``spikes``.

    Returns
    -------
    dict
        source, fs, n_channels, channel_ids, kind, n_spikes, duration_s (to the last spike).

    Raises
    ------
    RecordingError
        When the map is malformed or lacks an electrode that has spikes.
    """
    info = {"source": str(source), "fs": spikes.fs, "n_channels": spikes.n_electrodes,
            "channel_ids": spikes.channel_ids.tolist(), "kind": "nev spikes", "n_spikes": spikes.n_spikes,
            "duration_s": float(spikes.sample_index.max() / spikes.fs) if spikes.n_spikes else 0.0}
    if map_path:
        from .probe import map_channels, read_map

        info |= map_channels(spikes.channel_ids, read_map(map_path), str(source))
    return info


def describe_nev(path) -> dict:
    """Plain facts about a ``.nev`` file for ``spikevae info``: electrodes, counts, waveform shape, times."""
    path = Path(path)
    spikes = read_nev(path)
    counts = np.bincount(spikes.electrode, minlength=spikes.n_electrodes)
    t = spikes.sample_index / spikes.fs
    return {
        "source": str(path), "reader": "neo BlackrockRawIO (.nev spikes)", "fs": spikes.fs,
        "n_spikes": spikes.n_spikes, "n_electrodes": spikes.n_electrodes,
        "electrode_ids": spikes.channel_ids.tolist(), "waveform_samples": spikes.n_samples,
        "peak_index": spikes.peak_index,
        "spikes_per_electrode": {"min": int(counts.min()), "median": float(np.median(counts)), "max": int(counts.max())},
        "time_range_s": [round(float(t.min()), 6), round(float(t.max()), 6)] if t.size else [],
        "median_noise_uv": round(float(np.median(spikes.noise_uv)), 3),
        "median_peak_to_peak_uv": round(float(np.median(np.ptp(spikes.waveforms, axis=1))), 3),
    }
