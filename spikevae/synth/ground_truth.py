"""Ground truth of a simulation: the unit table and the ``ground_truth.npz`` file.

The file uses the ``compare`` layout (what :meth:`spikevae.objects.Sorting.load_npz`
reads): arrays ``sample_index`` int64, ``unit`` int64, ``electrode`` int64 and scalar
``fs``, one entry per scored spike, sorted by time. Per unit it adds ``unit_ids``,
``unit_electrode``, ``unit_snr`` (realised), ``unit_rate_hz`` (realised), and, when the
simulator wrote it, ``unit_snr_requested``, ``unit_hard`` (look-alike electrode),
``unit_templates`` (wide-band, µV) with ``template_peak_index``, ``noise_uv`` per
electrode, ``channel_ids`` and ``seed``. Background units are never in the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import SpikevaeError
from ..objects import Sorting

#: Per-unit arrays every ground-truth file holds.
REQUIRED_UNIT_KEYS = ("unit_ids", "unit_electrode", "unit_snr", "unit_rate_hz")


@dataclass
class UnitInfo:
    """What is known about each scored unit of a simulation (rows follow ``unit_ids``).

    Attributes
    ----------
    unit_ids : ndarray of shape (n_units,), int64
    unit_electrode : ndarray of shape (n_units,), int64
    unit_snr : ndarray of shape (n_units,), float64
        Realised SNR: |extremum of the bandpass-filtered mean noise-free waveform, aligned at
        the ground-truth times| / noise σ after the same bandpass.
    unit_rate_hz : ndarray of shape (n_units,), float64
        Realised rate (spikes in the ground truth / duration).
    unit_snr_requested : ndarray of shape (n_units,), float64
    unit_hard : ndarray of shape (n_units,), bool
        True for units on an electrode whose units look alike.
    unit_templates : ndarray of shape (n_units, n_samples), float64, µV
        Wide-band templates (before the sorter's bandpass), extremum at ``template_peak_index``.
    template_peak_index : int
    noise_uv : ndarray of shape (n_electrodes,), float64, µV
        Noise σ of each electrode after the SNR bandpass.
    channel_ids : ndarray of shape (n_electrodes,), str
    seed : int
    n_background_units : int
        Units added to the traces but left out of the ground truth.
    artefact_sample_index : ndarray of shape (n_artefacts,), int64
        Onsets of the simulated artefacts (empty without them).
    """

    unit_ids: np.ndarray
    unit_electrode: np.ndarray
    unit_snr: np.ndarray
    unit_rate_hz: np.ndarray
    unit_snr_requested: np.ndarray
    unit_hard: np.ndarray
    unit_templates: np.ndarray
    template_peak_index: int
    noise_uv: np.ndarray
    channel_ids: np.ndarray
    seed: int
    n_background_units: int
    artefact_sample_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fields as numpy arrays (scalars as 0-d arrays), ready for ``np.savez``."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = np.asarray(v).astype(str) if f.name == "channel_ids" else np.asarray(v)
        return out


def write_ground_truth(path, sorting: Sorting, unit_info) -> None:
    """Write a ground-truth ``.npz`` atomically (layout in the module docstring).

    Parameters
    ----------
    path : str or Path
    sorting : Sorting
        The scored spikes: ``sample_index`` at each spike's extremum after the bandpass.
    unit_info : UnitInfo or dict of array-like
        At least ``unit_ids``, ``unit_electrode``, ``unit_snr``, ``unit_rate_hz``.

    Raises
    ------
    SpikevaeError
        If ``unit_info`` lacks a required key or its arrays disagree in length, or the sorting
        holds units missing from ``unit_ids``.
    """
    from ..store import atomic_path

    info = unit_info.to_arrays() if isinstance(unit_info, UnitInfo) else {k: np.asarray(v) for k, v in unit_info.items()}
    missing = [k for k in REQUIRED_UNIT_KEYS if k not in info]
    if missing:
        raise SpikevaeError(f"unit_info lacks {', '.join(missing)}; pass the UnitInfo returned with the simulation")
    n = info["unit_ids"].shape[0]
    bad = [k for k in REQUIRED_UNIT_KEYS if info[k].shape[0] != n]
    if bad:
        raise SpikevaeError(f"unit_info arrays {', '.join(bad)} differ in length from unit_ids ({n})")
    unknown = np.setdiff1d(sorting.unit_ids, info["unit_ids"])
    if unknown.size:
        raise SpikevaeError(f"the sorting holds units {unknown[:5].tolist()} that are not in unit_info['unit_ids']")
    info["unit_ids"] = info["unit_ids"].astype(np.int64)
    info["unit_electrode"] = info["unit_electrode"].astype(np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, sample_index=sorting.sample_index.astype(np.int64), unit=sorting.unit.astype(np.int64),
                     electrode=sorting.electrode.astype(np.int64), fs=np.float64(sorting.fs), **info)


def read_ground_truth(path) -> tuple[Sorting, dict[str, np.ndarray]]:
    """Read a ground-truth ``.npz``: the Sorting and the per-unit arrays.

    Raises
    ------
    SpikevaeError
        If the file is missing, unreadable, or lacks a required key.
    """
    sorting = Sorting.load_npz(path)
    with np.load(path, allow_pickle=False) as z:
        info = {k: z[k] for k in z.files if k not in ("sample_index", "unit", "electrode", "fs")}
    missing = [k for k in REQUIRED_UNIT_KEYS if k not in info]
    if missing:
        raise SpikevaeError(f"{path}: not a ground-truth file, it lacks {', '.join(missing)} "
                            "(write it with spikevae simulate or write_ground_truth)")
    return sorting, info
