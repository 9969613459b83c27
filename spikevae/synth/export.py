"""Write a simulated (or any) recording and its ground truth to a folder, chunk by chunk.

Formats: ``nsx`` (Blackrock ``recording.ns5``, int16 at 0.25 µV/bit), ``raw``
(``recording.dat`` int16 interleaved at 0.25 µV/bit, with a ``recording.json`` sidecar
whose keys are the ``input.*`` settings that read it back) and ``hdf5`` (``recording.h5``
in the layout of :mod:`spikevae.io.hdf5`, float32 µV).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from ..errors import SpikevaeError
from ..recording import Recording
from .ground_truth import write_ground_truth

log = logging.getLogger(__name__)

FORMATS = ("nsx", "raw", "hdf5")
RAW_GAIN_UV = 0.25  # same resolution as the NSx files


def write_binary(path, recording: Recording, chunk_s: float = 1.0, gain_uv: float = RAW_GAIN_UV) -> Path:
    """Write int16 interleaved samples (µV / gain_uv, clipped to ±32767) and a JSON sidecar.

    The sidecar ``<path>.json`` holds ``format``, ``fs``, ``n_channels``, ``dtype``, ``gain_uv``,
    ``offset_uv``, ``header_bytes`` and ``channel_ids``.

    Returns
    -------
    Path of the binary file.
    """
    from ..store import atomic_path

    path = Path(path)
    step = max(1, int(round(chunk_s * recording.fs)))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            for start, stop in recording.chunks(step):
                bits = np.rint(recording.get_traces(start, stop) / np.float32(gain_uv))
                fh.write(np.clip(bits, -32767, 32767).astype("<i2").tobytes())
    meta = {"format": "raw", "fs": recording.fs, "n_channels": recording.n_channels, "dtype": "int16",
            "gain_uv": gain_uv, "offset_uv": 0.0, "header_bytes": 0,
            "channel_ids": recording.channel_ids.tolist()}
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return path


def write_recording(out_dir, recording: Recording, fmt: str = "nsx", chunk_s: float = 1.0) -> Path:
    """Write ``recording`` into ``out_dir`` as ``recording.ns5``, ``recording.dat`` or ``recording.h5``.

    Raises
    ------
    SpikevaeError
        For an unknown format name.
    """
    from datetime import datetime, timezone

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "nsx":
        from ..io.nsx_write import write_nsx

        return write_nsx(out / "recording.ns5", recording, chunk_s=chunk_s, comment="spikevae simulation",
                         time_origin=datetime(2000, 1, 1, tzinfo=timezone.utc))
    if fmt == "raw":
        return write_binary(out / "recording.dat", recording, chunk_s)
    if fmt == "hdf5":
        from ..io.hdf5 import write_hdf5

        return write_hdf5(out / "recording.h5", recording, chunk_s=chunk_s, dtype="float32")
    raise SpikevaeError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def write_simulation(out_dir, recording, ground_truth, config, seed: int, fmt: str = "nsx",
                     chunk_s: float = 1.0) -> dict:
    """Write the recording, ``ground_truth.npz`` and ``simulation.json`` (seed, config, summary).

    Returns
    -------
    dict
        The summary written to ``simulation.json`` (paths, counts, SNR range).
    """
    from ..store import atomic_path

    out = Path(out_dir)
    rec_path = write_recording(out, recording, fmt, chunk_s)
    gt_path = out / "ground_truth.npz"
    info = recording.unit_info
    write_ground_truth(gt_path, ground_truth, info)
    snr = info.unit_snr[np.isfinite(info.unit_snr)]
    summary = {
        "recording": rec_path.name, "ground_truth": gt_path.name, "format": fmt, "seed": int(seed),
        "n_electrodes": recording.n_channels, "duration_s": recording.duration_s, "fs": recording.fs,
        "n_units": int(len(info.unit_ids)), "n_spikes": int(ground_truth.sample_index.shape[0]),
        "n_background_units": int(info.n_background_units), "n_hard_units": int(info.unit_hard.sum()),
        "snr_range": [float(snr.min()), float(snr.max())] if snr.size else [],
        "config": dataclasses.asdict(config),
    }
    with atomic_path(out / "simulation.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    log.info("wrote %s and %s", rec_path, gt_path)
    return summary
