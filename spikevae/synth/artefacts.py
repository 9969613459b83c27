"""Artefacts shared across a simulated array: stimulation pulses, movement, cable knocks.

Each event is a biphasic pulse (0.1 ms one way, 0.1 ms the other) followed by an exponential
decay (``artefact_decay_ms``), wide-band, added to the traces before the sorter's band-pass
(which turns it into the ringing transient real recordings show). An event reaches a random
``artefact_fraction`` of the electrodes; its peak on each is the event's amplitude (drawn
log-uniform between ``artefact_amp_uv_min`` and ``artefact_amp_uv_max``) times the
electrode's coupling (fixed per electrode, 0.3 to 1) times a per-event jitter (0.8 to 1.2).
Events fall at Poisson times (``artefact_rate_hz``), from the random stream ``[seed, 9]``,
so a simulation without artefacts is unchanged by this module.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SimConfig


@dataclass
class ArtefactTrain:
    """Simulated artefacts.

    Attributes
    ----------
    onset : ndarray of shape (n_events,), int64, samples
        First sample of each event's pulse, sorted.
    amp_uv : ndarray of shape (n_events, n_channels), float32, µV
        Peak of the event on each electrode (0 where it does not reach).
    shape : ndarray of shape (length,), float64
        Unit-peak wide-band waveform of an event.
    """

    onset: np.ndarray
    amp_uv: np.ndarray
    shape: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.onset.shape[0])

    def add_block(self, b0: int, out: np.ndarray) -> None:
        """Add the events touching samples [b0, b0 + len(out)) to ``out`` (block, n_channels), µV."""
        length, block = self.shape.shape[0], out.shape[0]
        lo = np.searchsorted(self.onset, b0 - length + 1, side="left")
        hi = np.searchsorted(self.onset, b0 + block, side="left")
        for k in range(lo, hi):
            a = max(int(self.onset[k]) - b0, 0)
            s0 = a - (int(self.onset[k]) - b0)
            n = min(block - a, length - s0)
            out[a:a + n] += self.shape[s0:s0 + n, None] * self.amp_uv[k][None, :]


def artefact_shape(fs: float, decay_ms: float) -> np.ndarray:
    """Biphasic 0.1 + 0.1 ms pulse then an exponential decay of ``decay_ms``, peak 1 (wide-band)."""
    phase = max(1, int(round(1e-4 * fs)))
    tail = np.arange(int(round(6 * decay_ms * 1e-3 * fs)) + 1)
    decay = 0.3 * np.exp(-tail / (decay_ms * 1e-3 * fs))
    return np.concatenate([np.ones(phase), -np.ones(phase), decay])


def draw_artefacts(cfg: SimConfig, seed: int, n_channels: int, n_samples: int) -> ArtefactTrain | None:
    """The simulation's artefacts (None when ``cfg.artefact_rate_hz`` is 0)."""
    if cfg.artefact_rate_hz <= 0:
        return None
    rng = np.random.default_rng([seed, 9])
    shape = artefact_shape(cfg.fs, cfg.artefact_decay_ms)
    n = rng.poisson(cfg.artefact_rate_hz * n_samples / cfg.fs)
    onset = np.sort(rng.integers(0, max(n_samples - shape.shape[0], 1), n)).astype(np.int64)
    coupling = rng.uniform(0.3, 1.0, n_channels)
    peak = np.exp(rng.uniform(np.log(cfg.artefact_amp_uv_min), np.log(cfg.artefact_amp_uv_max), n))
    reach = rng.random((n, n_channels)) < cfg.artefact_fraction
    jitter = rng.uniform(0.8, 1.2, (n, n_channels))
    amp = (peak[:, None] * coupling[None, :] * jitter * reach).astype(np.float32)
    return ArtefactTrain(onset, amp, shape)
