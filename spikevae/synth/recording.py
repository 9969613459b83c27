"""A lazy simulated recording: spike templates added onto coloured noise, block by block.

Spike trains (window start, unit, sub-sample shift, amplitude factor) are drawn up front
and kept sorted; traces are made on demand in fixed blocks, each from the spikes whose
window touches it plus that block's noise. A block is always computed the same way, so
``get_traces(a, b)`` returns the same float32 samples whatever the chunking, and memory
stays bounded by a couple of blocks (about 25 MB for 96 electrodes) plus the spike table
(about 20 bytes per spike). Spikes are added, not placed exclusively, so overlaps happen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..recording import Recording
from .units import UnitTable


@dataclass
class SpikeTable:
    """All simulated spikes, sorted by window start.

    Attributes
    ----------
    onset : ndarray of shape (n,), int64
        First sample of the spike's template window.
    row : ndarray of shape (n,), int32
        Row of the unit in the UnitTable.
    shift : ndarray of shape (n,), int16
        Sub-sample delay index (delay = shift / n_shifts samples).
    amp : ndarray of shape (n,), float32
        Amplitude factor (jitter, burst decay, drift).
    level : ndarray of shape (n,), int16, optional
        Shape level of each spike (:mod:`.hard`); None when shapes do not change.
    """

    onset: np.ndarray
    row: np.ndarray
    shift: np.ndarray
    amp: np.ndarray
    level: np.ndarray | None = None

    def subset(self, mask: np.ndarray) -> "SpikeTable":
        level = None if self.level is None else self.level[mask]
        return SpikeTable(self.onset[mask], self.row[mask], self.shift[mask], self.amp[mask], level)


class SimulatedRecording(Recording):
    """Simulated multichannel traces in µV, generated lazily (see module docstring).

    Parameters
    ----------
    units : UnitTable
    spikes : SpikeTable
    noise : object with ``block`` and ``add_block_uv(j, out)`` (adds block j's noise in µV), or None
        None gives noise-free traces.
    fs : float, Hz
    n_samples : int
    channel_ids : ndarray of shape (n_channels,), str
    positions_um : ndarray of shape (n_channels, 2), µm
    block : int
        Samples per generated block (must equal the noise's block).
    artefacts : ArtefactTrain, optional
        Artefacts shared across the array (:mod:`.artefacts`), added to the traces.
    shape_banks : ndarray of shape (n_units, n_levels, n_shifts, n_samples), optional
        Templates at each shape level (:func:`.hard.shape_banks`), used with ``spikes.level``.
    """

    def __init__(self, units: UnitTable, spikes: SpikeTable, noise, fs: float, n_samples: int,
                 channel_ids, positions_um, block: int, source: str = "simulated", artefacts=None,
                 shape_banks=None):
        if noise is not None and noise.block != block:
            raise ValueError(f"noise block {noise.block} differs from the recording block {block}")
        self.units, self.spikes, self.noise, self.block = units, spikes, noise, int(block)
        self.artefacts = artefacts
        self.shape_banks = shape_banks if spikes.level is not None else None
        self._init_meta(fs, channel_ids, n_samples, 1.0, 0.0, positions_um, source)
        self._cache: dict[int, np.ndarray] = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}  # generated blocks are not sent to other processes
        return state

    def without_noise(self) -> "SimulatedRecording":
        """The same spikes with no noise (for tests and measurements)."""
        return SimulatedRecording(self.units, self.spikes, None, self.fs, self.n_samples, self.channel_ids,
                                  self.positions_um, self.block, self.source + " (noise-free)", self.artefacts,
                                  self.shape_banks)

    def scored_only(self) -> "SimulatedRecording":
        """The same recording without the background units."""
        keep = self.units.scored[self.spikes.row]
        return SimulatedRecording(self.units, self.spikes.subset(keep), self.noise, self.fs, self.n_samples,
                                  self.channel_ids, self.positions_um, self.block,
                                  self.source + " (no background)", self.artefacts, self.shape_banks)

    def _spike_block(self, b0: int) -> np.ndarray:
        """Sum of the templates of all spikes touching samples [b0, b0 + block), float64 µV."""
        n_ch, length = self.n_channels, self.units.n_samples
        s = self.spikes
        lo = np.searchsorted(s.onset, b0 - length + 1, side="left")
        hi = np.searchsorted(s.onset, b0 + self.block, side="left")
        if hi <= lo:
            return np.zeros((self.block, n_ch))
        rows, shifts = s.row[lo:hi], s.shift[lo:hi]
        bank = self.units.banks_uv[rows, shifts] if self.shape_banks is None else \
            self.shape_banks[rows, s.level[lo:hi], shifts]
        vals = s.amp[lo:hi, None].astype(np.float64) * bank
        pos = s.onset[lo:hi, None] - b0 + np.arange(length)
        flat = pos * n_ch + self.units.electrode[rows][:, None]
        ok = (pos >= 0) & (pos < self.block)
        out = np.bincount(flat[ok], weights=vals[ok], minlength=self.block * n_ch)
        return out.reshape(self.block, n_ch)

    def _block(self, j: int) -> np.ndarray:
        """Block j of the traces, (block, n_channels) float32 µV; the last two are cached."""
        if j not in self._cache:
            x = self._spike_block(j * self.block)
            if self.artefacts is not None:
                self.artefacts.add_block(j * self.block, x)
            if self.noise is not None:
                self.noise.add_block_uv(j, x)
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[j] = x.astype(np.float32)
        return self._cache[j]

    def _read_raw(self, start: int, stop: int, channels: np.ndarray) -> np.ndarray:
        parts = []
        for j in range(start // self.block, (stop - 1) // self.block + 1):
            b0 = j * self.block
            parts.append(self._block(j)[max(start, b0) - b0:min(stop, b0 + self.block) - b0][:, channels])
        return np.concatenate(parts, axis=0)

    def __repr__(self) -> str:
        n_scored = int(self.units.scored.sum())
        return (f"SimulatedRecording({self.n_channels} channels, {self.fs:g} Hz, {self.duration_s:.2f} s, "
                f"{n_scored} scored + {self.units.n_units - n_scored} background units, "
                f"{self.spikes.onset.shape[0]} spikes)")
