"""Write a Recording as a Blackrock NSx file (spec 2.3, ``NEURALCD``), chunk by chunk.

Layout (Blackrock NEV/NSx file specification, rev. 2.3; the same structures neo's
``blackrockrawio`` reads as ``NSX_BASIC_HEADER_TYPES["2.3"]`` etc.):

- basic header, 314 bytes: ``"NEURALCD"``, spec major/minor (2, 3), bytes in headers,
  group label (16), comment (256), period (samples of the 30 kHz clock per sample),
  timestamp resolution (30000), time origin (8 x uint16, Windows SYSTEMTIME, UTC),
  channel count;
- one 66-byte ``"CC"`` extended header per channel: electrode id, label (16), front-end
  connector and pin, min/max digital and analog values, analog unit ``"uV"``, and the
  amplifier's high/low corner (mHz), order and type;
- one data packet: header byte 0x01, timestamp (uint32, 0), number of samples (uint32),
  then int16 samples, channel-interleaved (sample 0 of every channel, sample 1 ...).

A reader derives µV per bit as (max_analog - min_analog) / (max_digital - min_digital), so
the extrema are chosen to make that ratio exactly ``gain_uv`` (for 0.25 µV/bit, Blackrock's
usual front-end resolution: digital ±32764, analog ±8191 µV).
"""
from __future__ import annotations

import logging
import re
import struct
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import SpikevaeError
from ..recording import Recording

log = logging.getLogger(__name__)

CLOCK_HZ = 30000  # Blackrock's sample clock; the period must be a whole number of its ticks
BASIC_HEADER_BYTES = 314
EXT_HEADER_BYTES = 66


def digital_analog_range(gain_uv: float) -> tuple[int, int]:
    """(max_digital, max_analog) with max_analog / max_digital == gain_uv exactly, both <= 32767.

    Raises
    ------
    SpikevaeError
        If no such pair of 16-bit integers exists (e.g. gain_uv = 1/3 µV).
    """
    if not 0 < gain_uv <= 32767:
        raise SpikevaeError(f"gain_uv={gain_uv}: must be positive and at most 32767 µV per bit")
    frac = Fraction(gain_uv).limit_denominator(32767)
    if abs(float(frac) - gain_uv) > 1e-9 * gain_uv or max(frac.numerator, frac.denominator) > 32767:
        raise SpikevaeError(f"gain_uv={gain_uv} is not a ratio of 16-bit integers; use e.g. 0.25 or 0.1")
    k = 32767 // max(frac.numerator, frac.denominator)
    return frac.denominator * k, frac.numerator * k


def _electrode_ids(channel_ids: np.ndarray) -> np.ndarray:
    """Integer electrode ids: the channel ids when they are all integers 1..65535, else 1..n."""
    try:
        ids = np.array([int(c) for c in channel_ids])
    except ValueError:
        ids = None
    if ids is None or ids.min() < 1 or ids.max() > 65535 or len(set(ids.tolist())) != len(ids):
        ids = np.arange(1, len(channel_ids) + 1)
    return ids


def _fixed(text: str, n: int) -> bytes:
    """ASCII text NUL-padded to n bytes (at most n - 1 characters kept)."""
    return text.encode("ascii", "replace")[:n - 1].ljust(n, b"\0")


def nsx_headers(recording: Recording, gain_uv: float, label: str, comment: str, time_origin: datetime,
                channel_labels=None) -> bytes:
    """The basic header, extended headers and data-packet header of an NSx 2.3 file."""
    period = CLOCK_HZ / recording.fs
    if abs(period - round(period)) > 1e-9 or round(period) < 1:
        raise SpikevaeError(f"sampling rate {recording.fs:g} Hz: NSx files need {CLOCK_HZ} Hz divided by a "
                            "whole number (30000, 15000, 10000, 2000, 1000, 500 Hz)")
    if recording.n_samples >= 2 ** 32:
        raise SpikevaeError(f"{recording.n_samples} samples do not fit one NSx data packet (< 2**32)")
    n_ch = recording.n_channels
    d_max, a_max = digital_analog_range(gain_uv)
    t = time_origin.astimezone(timezone.utc)
    basic = b"NEURALCD" + struct.pack("<BBI", 2, 3, BASIC_HEADER_BYTES + EXT_HEADER_BYTES * n_ch)
    basic += _fixed(label, 16) + _fixed(comment, 256)
    basic += struct.pack("<II8HI", int(round(period)), CLOCK_HZ, t.year, t.month, t.isoweekday() % 7, t.day,
                         t.hour, t.minute, t.second, t.microsecond // 1000, n_ch)
    ids = _electrode_ids(recording.channel_ids)
    labels = [f"chan{i}" for i in ids] if channel_labels is None else list(channel_labels)
    ext = b""
    for i in range(n_ch):
        ext += b"CC" + struct.pack("<H", int(ids[i])) + _fixed(str(labels[i]), 16)
        ext += struct.pack("<BB4h", 1 + i // 128, 1 + i % 128, -d_max, d_max, -a_max, a_max)
        # analog front end: 0.3 Hz high-pass (order 1) and 7.5 kHz low-pass (order 3), Butterworth (type 1)
        ext += _fixed("uV", 16) + struct.pack("<IIHIIH", 7500000, 3, 1, 300, 1, 1)
    assert len(basic) == BASIC_HEADER_BYTES and len(ext) == EXT_HEADER_BYTES * n_ch
    return basic + ext + struct.pack("<BII", 1, 0, recording.n_samples)


def write_nsx(path, recording: Recording, chunk_s: float = 1.0, gain_uv: float = 0.25, label: str = "30 kS/s",
              comment: str = "written by spikevae", time_origin: datetime | None = None,
              channel_labels=None) -> Path:
    """Write ``recording`` as a Blackrock NSx 2.3 file, atomically and in bounded memory.

    Parameters
    ----------
    path : str or Path
        Output file; its extension must be ``.ns1`` ... ``.ns6`` (``.ns5`` for 30 kHz,
        ``.ns6`` for unfiltered 30 kHz).
    recording : Recording
        Read with ``get_traces`` one chunk at a time.
    chunk_s : float
        Seconds per chunk (default 1.0).
    gain_uv : float
        µV per bit (default 0.25, Blackrock's front-end resolution); samples outside
        ±32767 bits are clipped with a warning.
    label : str
        Sample group label in the basic header (at most 15 characters).
    comment : str
        Basic header comment (at most 255 characters).
    time_origin : datetime, optional
        Recording start written in the header (default: now, UTC).
    channel_labels : sequence of str, optional
        Electrode labels (default ``chan<electrode id>``).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    SpikevaeError
        For a wrong extension, a sampling rate that is not 30 kHz / n, or an unrepresentable gain.
    """
    from ..store import atomic_path

    path = Path(path)
    if not re.fullmatch(r"\.ns[1-9]", path.suffix):
        raise SpikevaeError(f"{path}: an NSx file needs the extension .ns1 ... .ns9 (e.g. recording.ns5)")
    if chunk_s <= 0:
        raise SpikevaeError(f"chunk_s={chunk_s}: must be positive")
    header = nsx_headers(recording, gain_uv, label, comment, time_origin or datetime.now(timezone.utc),
                         channel_labels)
    chunk = max(1, int(round(chunk_s * recording.fs)))
    n_clipped = 0
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header)
            for start, stop in recording.chunks(chunk):
                bits = np.rint(recording.get_traces(start, stop) / np.float32(gain_uv))
                n_clipped += int(np.count_nonzero(np.abs(bits) > 32767))
                fh.write(np.clip(bits, -32767, 32767).astype("<i2").tobytes())
    if n_clipped:
        log.warning("%s: %d samples beyond ±32767 bits (±%.0f µV) were clipped", path, n_clipped, 32767 * gain_uv)
    return path
