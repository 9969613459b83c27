"""Reading recordings: pick a reader by name or extension, and check what it gives.

Readers (the :data:`READERS` registry, chosen with ``input.format``):

- ``blackrock``: ``.ns1``-``.ns6`` through neo's ``BlackrockRawIO`` (:mod:`.neo`);
- ``neo``: any format neo recognises by extension; any neo rawio name (``intan``,
  ``BlackrockRawIO``, ``OpenEphysBinary`` ...) is also accepted as a format;
- ``raw``: interleaved binary (:mod:`.binary`); ``hdf5``: the project layout (:mod:`.hdf5`);
- ``mat``: MATLAB traces (:mod:`.mat`): v5 loaded whole (short benchmark files), v7.3 (HDF5) lazily;
- ``auto`` (default): by extension; a folder (Open Ephys, SpikeGLX, Neuralynx ...) with the
  first neo folder reader that opens it (:func:`.neo.open_neo_folder`). A ``.nev`` file holds
  spikes, not traces: it is read with :func:`read_nev` instead.

Checks used by the later stages: :func:`validate_recording` (empty or too short),
:func:`check_finite` (NaN/inf samples in a chunk, with channel and time) and
:func:`find_dead_channels` (flat channels that detection should skip).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import RecordingError
from ..recording import ChannelSubset, Recording
from .binary import BinaryRecording
from .hdf5 import HDF5Recording, write_hdf5
from .neo import NeoRecording, blackrock_recording, open_neo_folder
from .nev import describe_nev, read_nev
from .probe import ElectrodeMap, apply_map, read_cmp, read_map, read_probeinterface
from .spikeinterface import SpikeInterfaceRecording

log = logging.getLogger(__name__)

__all__ = [
    "READERS", "open_recording", "reader_for", "select_channels", "validate_recording", "check_finite", "find_dead_channels",
    "find_clipped_channels",
    "NeoRecording", "BinaryRecording", "HDF5Recording", "read_nev", "describe_nev", "write_hdf5",
    "ElectrodeMap", "read_map", "read_cmp", "read_probeinterface", "apply_map",
    "SpikeInterfaceRecording",
]

NSX_EXTENSIONS = tuple(f".ns{i}" for i in range(1, 7))
RAW_EXTENSIONS = (".dat", ".bin", ".raw")
HDF5_EXTENSIONS = (".h5", ".hdf5")


def _nev_error(path, config=None) -> Recording:
    raise RecordingError(
        f"{path}: a .nev file holds spike waveforms, not continuous traces; read it with "
        "spikevae.io.read_nev(path), or run `spikevae run` on it (the pipeline sorts the .nev waveforms directly)")


def _open_blackrock(path, config) -> Recording:
    return blackrock_recording(path, stream=config.stream, segment=config.segment,
                               gap_tolerance_ms=config.gap_tolerance_ms, allow_truncated=config.allow_truncated)


def _open_neo(path, config, rawio_class=None) -> Recording:
    return NeoRecording(path, rawio_class, stream=config.stream, segment=config.segment)


def _open_raw(path, config) -> Recording:
    return BinaryRecording(path, fs=config.fs, n_channels=config.n_channels, dtype=config.dtype,
                           gain_uv=config.gain_uv, offset_uv=config.offset_uv, header_bytes=config.header_bytes)


def _open_hdf5(path, config) -> Recording:
    return HDF5Recording(path)


def _open_mat(path, config) -> Recording:
    from .mat import MatRecording

    return MatRecording(path, fs=config.fs, gain_uv=config.gain_uv, offset_uv=config.offset_uv)


#: Reader name -> function ``(path, InputConfig) -> Recording``.
READERS = {"blackrock": _open_blackrock, "neo": _open_neo, "raw": _open_raw, "binary": _open_raw,
           "hdf5": _open_hdf5, "mat": _open_mat, "nev": _nev_error}


def reader_for(path, fmt: str = "auto"):
    """The reader function for ``path`` and format name ``fmt`` (see the module docstring).

    Raises
    ------
    RecordingError
        For a format name that is neither a reader nor a neo rawio name (the message
        lists the valid names).
    """
    from .neo import find_rawio_class, neo_rawio_classes

    fmt = (fmt or "auto").strip()
    if fmt == "auto":
        if Path(path).is_dir():  # Open Ephys, SpikeGLX, Neuralynx ... folders: the first neo reader that opens it
            return lambda p, c: open_neo_folder(p, stream=c.stream, segment=c.segment)
        ext = Path(path).suffix.lower()
        by_ext = {**dict.fromkeys(NSX_EXTENSIONS, "blackrock"), ".nev": "nev",
                  **dict.fromkeys(RAW_EXTENSIONS, "raw"), **dict.fromkeys(HDF5_EXTENSIONS, "hdf5"),
                  ".mat": "mat"}
        return READERS[by_ext.get(ext, "neo")]
    if fmt.lower() in READERS:
        return READERS[fmt.lower()]
    cls = find_rawio_class(fmt)
    if cls is None:
        raise RecordingError(
            f"unknown input format {fmt!r}; use one of auto, {', '.join(READERS)}, "
            f"or a neo reader name: {', '.join(sorted(neo_rawio_classes()))}")
    return lambda p, c: _open_neo(p, c, cls)


def open_recording(path, config=None) -> Recording:
    """Open a recording lazily, with the reader that ``config.format`` names.

    Parameters
    ----------
    path : str or Path
        The recording file (or folder, for neo folder formats).
    config : InputConfig, optional
        How to read it (format, raw binary parameters, stream, segment, channels).
        Default: ``InputConfig()``, i.e. format ``auto``.

    Returns
    -------
    Recording
        Restricted to ``config.channels`` (channel ids) when given; electrode positions
        and labels from ``config.map`` when given (:func:`spikevae.io.probe.apply_map`).

    Raises
    ------
    RecordingError
        Missing file, unknown format, a ``.nev`` file, or any reader error (each names
        the file and the fix); unknown channel ids; a malformed map or channels it lacks.
    """
    from ..params import InputConfig

    config = config or InputConfig()
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: file not found; check the path")
    rec = reader_for(path, config.format)(path, config)
    if config.map:  # before channel selection: probeinterface wiring indexes the file's channels
        rec = apply_map(rec, read_map(config.map), require=config.channels or None)
    if config.channels:
        rec = select_channels(rec, config.channels)
    log.info("opened %r", rec)
    return rec


def select_channels(rec: Recording, channel_ids) -> Recording:
    """``rec`` restricted to the channels with these ids (str or int), in the given order."""
    wanted = [str(c) for c in channel_ids]
    index = {cid: i for i, cid in enumerate(rec.channel_ids)}
    missing = [c for c in wanted if c not in index]
    if missing:
        raise RecordingError(f"{rec.source}: no channel(s) {', '.join(missing)} in input.channels; "
                             f"the file's channel ids are {_short_list(rec.channel_ids)}")
    return ChannelSubset(rec, [index[c] for c in wanted])


def _short_list(ids, n: int = 8) -> str:
    ids = [str(i) for i in ids]
    return ", ".join(ids) if len(ids) <= n else f"{', '.join(ids[:n // 2])} ... {', '.join(ids[-n // 2:])}"


def validate_recording(rec: Recording, min_duration_s: float = 0.1) -> None:
    """Refuse recordings that cannot be sorted: no channels, no samples, or too short.

    Parameters
    ----------
    rec : Recording
    min_duration_s : float
        Shortest usable length in seconds (default 0.1 s: a few times the 20 ms
        bandpass margin, and enough samples for a noise estimate).

    Raises
    ------
    RecordingError
        Naming the source, its length and the minimum.
    """
    if rec.n_channels == 0:
        raise RecordingError(f"{rec.source}: the recording has no channels; check input.channels and the file")
    if rec.n_samples == 0:
        raise RecordingError(f"{rec.source}: the recording is empty (0 samples); check the file and its format")
    ids, counts = np.unique(rec.channel_ids, return_counts=True)
    if (counts > 1).any():
        dup = ids[counts > 1]
        raise RecordingError(
            f"{rec.source}: channel id(s) {_short_list(dup)} name more than one channel "
            f"({int(counts[counts > 1].sum())} channels share them); every output names channels by id, so "
            "give the file unique channel ids (HDF5: /channel_ids) or keep one of each with input.channels")
    if rec.duration_s < min_duration_s:
        raise RecordingError(
            f"{rec.source}: the recording is {rec.duration_s:.4f} s long ({rec.n_samples} samples at {rec.fs:g} Hz), "
            f"shorter than the {min_duration_s:g} s needed; use a longer recording, or check that input.fs is right")


def check_finite(traces: np.ndarray, rec: Recording, start: int, channels=None) -> None:
    """Raise if a chunk of traces holds NaN or infinite samples, naming channel and time.

    Parameters
    ----------
    traces : ndarray of shape (n_samples, n_channels)
        A chunk read from ``rec`` starting at sample ``start``.
    rec : Recording
        The recording it came from (for channel ids, rate and source).
    start : int
        Sample index of the chunk's first row.
    channels : array-like of int, optional
        Channel indices of the chunk's columns (default: all channels in order).

    Raises
    ------
    RecordingError
        At the first non-finite sample: channel id, sample, time, and how many others.
    """
    bad = ~np.isfinite(traces)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    first = int(np.argmin(rows))
    chans = np.arange(traces.shape[1]) if channels is None else np.asarray(channels)
    ch_ids = rec.channel_ids[chans]
    sample = int(start) + int(rows[first])
    kind = "NaN" if np.isnan(traces[rows[first], cols[first]]) else "an infinite value"
    others = sorted(set(ch_ids[np.unique(cols)].tolist()) - {ch_ids[cols[first]]})
    raise RecordingError(
        f"{rec.source}: channel {ch_ids[cols[first]]} has {kind} at sample {sample} ({sample / rec.fs:.4f} s); "
        f"{int(bad.sum())} non-finite sample(s) in this chunk"
        + (f", also on channel(s) {_short_list(others)}" if others else "")
        + ". The file may be corrupt or its gain wrong; drop the channel(s) with input.channels or repair the file")


def find_clipped_channels(rec: Recording, n_chunks: int = 10, chunk_s: float = 0.1,
                          min_fraction: float = 1e-4) -> np.ndarray:
    """Indices of channels whose integer samples sit at the ADC's rail (saturated amplifier).

    Reads the raw samples of ``n_chunks`` chunks spread across the recording (as
    :func:`find_dead_channels`). A sample at the largest magnitude the integer type holds
    (±32767 for int16; -32768 counts too) is clipped: spikes there are flattened and their
    shapes and amplitudes are wrong. Recordings stored as floats are not checked.

    Returns
    -------
    ndarray of shape (n_clipped,), int64
        Channels with at least 3 clipped samples and at least ``min_fraction`` of those read;
        a warning names them with their clipped fraction.
    """
    length = max(1, min(rec.n_samples, int(chunk_s * rec.fs)))
    starts = np.unique(np.linspace(0, rec.n_samples - length, max(1, n_chunks)).astype(np.int64))
    idx = np.arange(rec.n_channels)
    count = np.zeros(rec.n_channels, np.int64)
    total = 0
    for s in starts:
        try:
            x = rec._read_raw(int(s), min(int(s) + length, rec.n_samples), idx)
        except NotImplementedError:  # a source that only gives scaled traces: nothing to check
            return np.zeros(0, np.int64)
        if x.dtype.kind not in "iu":
            return np.zeros(0, np.int64)
        info = np.iinfo(x.dtype)
        rail = info.max if x.dtype.kind == "u" else min(info.max, -(info.min + 1))
        count += np.count_nonzero((x >= rail) | ((x <= -rail) if x.dtype.kind == "i" else (x <= info.min)), axis=0)
        total += x.shape[0]
    frac = count / max(total, 1)
    clipped = np.flatnonzero((count >= 3) & (frac >= min_fraction)).astype(np.int64)
    if clipped.size:
        log.warning("%s: %d channel(s) reach the ADC rail (clipped, the amplifier saturates; spikes there are "
                    "flattened): %s", rec.source, clipped.size,
                    _short_list([f"{rec.channel_ids[c]} ({100 * frac[c]:.2f} % of samples)" for c in clipped]))
    return clipped


def find_dead_channels(rec: Recording, n_chunks: int = 10, chunk_s: float = 0.1, tol_uv: float = 1e-3) -> np.ndarray:
    """Indices of flat channels: peak-to-peak at most ``tol_uv`` over chunks spread across the recording.

    Parameters
    ----------
    rec : Recording
        Raw or filtered (a constant channel filters to ~0, still below ``tol_uv``).
    n_chunks : int
        Chunks read, evenly spaced from start to end (deterministic; default 10).
    chunk_s : float
        Length of each chunk in seconds (default 0.1).
    tol_uv : float
        Largest peak-to-peak (µV) that still counts as flat (default 0.001 µV, far
        below any live electrode's noise).

    Returns
    -------
    ndarray of shape (n_dead,), int64
        Channel indices; a warning names their ids.
    """
    length = max(1, min(rec.n_samples, int(chunk_s * rec.fs)))
    starts = np.unique(np.linspace(0, rec.n_samples - length, max(1, n_chunks)).astype(np.int64))
    lo = np.full(rec.n_channels, np.inf)
    hi = np.full(rec.n_channels, -np.inf)
    for s in starts:
        x = rec.get_traces(int(s), int(s) + length)
        lo, hi = np.minimum(lo, np.nanmin(x, axis=0, initial=np.inf)), np.maximum(hi, np.nanmax(x, axis=0, initial=-np.inf))
    dead = np.flatnonzero(~(hi - lo > tol_uv)).astype(np.int64)
    if dead.size:
        log.warning("%s: %d flat channel(s) (peak-to-peak <= %g µV over %d chunks), skipped: %s",
                    rec.source, dead.size, tol_uv, starts.size, _short_list(rec.channel_ids[dead]))
    return dead
