"""What an input *is*, from its content: the identity the run store's cache keys are built on.

A stage's result is reused when its input's identity and its configuration are unchanged, so
the identity must change when the data change, and should not change when they do not:

- :func:`file_identity`: sha256 over a file's size, its first and last 64 KiB and 16 blocks of
  64 KiB at fixed, evenly spaced offsets (files up to 1.125 MiB are hashed whole); a folder
  (neo folder formats) hashes its files' names and identities in sorted order. The path, the
  name and the modification time are left out on purpose: a moved or copied recording
  reuses its results, and one replaced by other data of the same size and time
  (``cp -p``, ``rsync -a``) does not.
- :func:`recording_identity`: any Recording (in memory, wrapped, from SpikeInterface):
  rate, channel ids, length, gains and offsets, and the µV samples of all channels in 16
  evenly spaced blocks of 4096 samples (short recordings are read whole).
- :func:`spikes_identity`: every array of a :class:`~spikevae.objects.Spikes`.

Both sampled hashes cost milliseconds on a 20 GB file. They see any change of size, header,
metadata, or of data anywhere the samples fall; a change confined to bytes between the sampled
blocks of a large file goes unseen: rerun with ``--force`` after editing a file in place.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .errors import SpikevaeError

#: Bytes per sampled file block.
BLOCK_BYTES = 64 * 1024
#: Sampled blocks between the first and the last one (files and recordings alike).
N_BLOCKS = 16
#: Samples per sampled block of traces.
TRACE_BLOCK = 4096


def block_starts(length: int, block: int, n_blocks: int = N_BLOCKS) -> np.ndarray:
    """Start of the first block, ``n_blocks`` evenly spaced ones and the last (``[0]`` when it fits whole).

    Parameters
    ----------
    length : int
        Length of what is sampled (bytes or samples).
    block : int
        Length of one block, in the same unit.

    Returns
    -------
    ndarray of shape (n_blocks + 2,) or (1,), int64
        ``[0]`` means: read everything (``length <= (n_blocks + 2) * block``).
    """
    if length <= (n_blocks + 2) * block:
        return np.zeros(1, dtype=np.int64)
    return np.round(np.linspace(0, length - block, n_blocks + 2)).astype(np.int64)


def _hash_file(path: Path, h) -> None:
    size = path.stat().st_size
    h.update(f"size={size};".encode())
    starts = block_starts(size, BLOCK_BYTES)
    with open(path, "rb") as fh:
        if starts.size == 1:
            h.update(fh.read())
            return
        for s in starts:
            fh.seek(int(s))
            h.update(fh.read(BLOCK_BYTES))


def _folder_files(folder: Path) -> list[Path]:
    """Files under ``folder`` in sorted order, without hidden ones (temporaries, OS litter) and
    without spikevae run folders written inside it."""
    from .store import STORE_NAME

    runs = {p.parent for p in folder.rglob(STORE_NAME)} - {folder}
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts) and not (set(p.parents) & runs):
            out.append(p)
    return out


def file_identity(path) -> str:
    """Content hash of a file or folder: size and sampled blocks (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A recording file, or a folder (hashed over its files in sorted order).

    Returns
    -------
    str
        Hex sha256; equal for equal content wherever it lies, whatever its mtime.

    Raises
    ------
    SpikevaeError
        When ``path`` does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise SpikevaeError(f"{p}: file not found; check the path")
    h = hashlib.sha256()
    if p.is_dir():
        for f in _folder_files(p):
            h.update(f"{f.relative_to(p).as_posix()}:".encode())
            _hash_file(f, h)
    else:
        _hash_file(p, h)
    return h.hexdigest()


def recording_identity(rec) -> str:
    """Content hash of a Recording: its metadata and its µV samples at evenly spaced blocks.

    Parameters
    ----------
    rec : Recording
        Any Recording; a wrapper is hashed by what it returns, never by its source's name.

    Returns
    -------
    str
        Hex sha256 over ``fs``, channel ids, ``n_samples``, gains and offsets (µV), and the
        float32 traces (all channels) of ``N_BLOCKS + 2`` blocks of ``TRACE_BLOCK`` samples.
    """
    meta = {"fs": float(rec.fs), "channel_ids": [str(c) for c in rec.channel_ids], "n_samples": int(rec.n_samples),
            "gain_uv": [float(g) for g in rec.gain_uv], "offset_uv": [float(o) for o in rec.offset_uv]}
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    starts = block_starts(rec.n_samples, TRACE_BLOCK)
    length = rec.n_samples if starts.size == 1 else TRACE_BLOCK
    for s in starts:
        x = np.ascontiguousarray(rec.get_traces(int(s), int(s) + length), dtype=np.float32)
        h.update(x.tobytes())
    return h.hexdigest()


def spikes_identity(spikes) -> str:
    """Content hash of every field of a Spikes (arrays and scalars), for in-memory Spikes given to a run.

    Returns
    -------
    str
        Hex sha256.
    """
    from dataclasses import fields

    h = hashlib.sha256()
    for f in fields(spikes):
        v = getattr(spikes, f.name)
        if isinstance(v, np.ndarray):
            h.update(f"{f.name}:{v.dtype.str}{v.shape};".encode())
            h.update(np.ascontiguousarray(v).tobytes())
        else:
            h.update(f"{f.name}={v!r};".encode())
    return h.hexdigest()
