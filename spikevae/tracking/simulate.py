"""Several sessions of one simulated Utah array: the same neurons, drifting, some born, some lost.

Session 0 is exactly ``spikevae.synth.simulate_recording(config, seed)``: its
:class:`~spikevae.synth.units.UnitTable` (every unit the array will ever hold, scored and
background) is then carried from session to session. Between consecutive sessions each unit's
template drifts as a random walk: its amplitude by a factor ``exp(drift * N(0, 1))`` and its
time course by a stretch of ``drift / 2 * N(0, 1)`` (:func:`spikevae.synth.templates.stretch_template`),
the slow changes that chronic Utah recordings show from day to day (Dickey et al. 2009 report
units stable for days to weeks, with amplitude changes of tens of percent). A fraction
``turnover`` of the scored units is present in only part of the sessions: half vanish after a
random session, half appear at one. Spike trains and noise are drawn afresh in every session
(its own seed); the noise level of each electrode stays the same.

The identity of a scored unit is its ground-truth id in the numbering of session 0's unit table
(scored rows in electrode order, the ids ``simulate_recording`` would give had every unit been
present): ``tracking_truth.csv`` lists, per session, each ground-truth unit and its identity.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..objects import Sorting
from ..synth import SimConfig, simulate_recording
from ..synth.noise import BlockNoise
from ..synth.recording import SimulatedRecording
from ..synth.simulate import _draw_spikes, _ground_truth
from ..synth.templates import bandpass_response, shift_bank, stretch_template
from ..synth.units import UnitTable

log = logging.getLogger(__name__)

#: Entropy word of the multi-session random streams (separate from simulate_recording's 1-7).
_STREAM = 101


@dataclass
class SessionTruth:
    """Which neuron each ground-truth unit of one session is.

    Attributes
    ----------
    session : int
        0-based session index.
    gt_unit : ndarray of shape (n_units,), int64
        Unit ids of the session's ground truth.
    identity : ndarray of shape (n_units,), int64
        Identity of each unit across sessions.
    electrode : ndarray of shape (n_units,), int64
    amplitude_factor : ndarray of shape (n_units,), float64
        Template amplitude relative to session 0 (cumulative drift).
    stretch : ndarray of shape (n_units,), float64
        Time stretch of the template relative to session 0.
    """

    session: int
    gt_unit: np.ndarray
    identity: np.ndarray
    electrode: np.ndarray
    amplitude_factor: np.ndarray
    stretch: np.ndarray


@dataclass
class SimulatedSession:
    """One simulated session: the lazy recording, its ground truth and the identities."""

    recording: SimulatedRecording
    ground_truth: Sorting
    truth: SessionTruth
    seed: int


def session_seed(seed: int, session: int) -> int:
    """Seed of session ``session`` (session 0 keeps ``seed``, so it equals a single simulation)."""
    if session == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), _STREAM, int(session)]).generate_state(1)[0] % (2**31 - 1))


def _lifetimes(scored: np.ndarray, n_sessions: int, turnover: float, rng: np.random.Generator) -> np.ndarray:
    """Presence of every unit in every session, shape (n_sessions, n_units), bool.

    Background units are always present; a scored unit vanishes (after session k-1) or appears
    (at session k, k in 1..n_sessions-1) with probability ``turnover / 2`` each.
    """
    n_units = scored.shape[0]
    present = np.ones((n_sessions, n_units), dtype=bool)
    if n_sessions < 2:
        return present
    r = rng.random(n_units)
    k = rng.integers(1, n_sessions, n_units)
    for u in np.flatnonzero(scored):
        if r[u] < turnover / 2:
            present[k[u]:, u] = False
        elif r[u] < turnover:
            present[:k[u], u] = False
    return present


def _drifted(w: np.ndarray, stretch: float, peak: int) -> np.ndarray:
    """Template ``w`` (µV) stretched in time by ``stretch`` around its peak, same peak value."""
    if stretch == 1.0:
        return w.copy()
    return stretch_template(w, stretch, peak) * np.abs(w[peak])


def drifted_units(base: UnitTable, amplitude: np.ndarray, stretch: np.ndarray, keep: np.ndarray,
                  cfg: SimConfig) -> UnitTable:
    """``base`` with each unit's template scaled by ``amplitude`` and stretched by ``stretch``, rows ``keep``.

    Parameters
    ----------
    base : UnitTable
    amplitude, stretch : ndarray of shape (base.n_units,), float64
    keep : ndarray of shape (base.n_units,), bool
    cfg : SimConfig
        For the sub-sample shifts, the sampling rate and the SNR band.

    Returns
    -------
    UnitTable
        The kept rows, with banks, filtered banks and ground-truth offsets recomputed.
    """
    rows = np.flatnonzero(keep)
    peak = base.peak_index
    temps = np.stack([_drifted(base.templates_uv[r], stretch[r], peak) * amplitude[r] for r in rows]) \
        if rows.size else np.zeros((0, base.n_samples))
    banks = np.stack([shift_bank(w, cfg.subsample_shifts) for w in temps]) if rows.size else \
        np.zeros((0, cfg.subsample_shifts, base.n_samples))
    fbanks = bandpass_response(banks, cfg.fs, (cfg.snr_band_low_hz, cfg.snr_band_high_hz))
    sign = base.sign[rows]
    gt_offset = (fbanks * sign[:, None, None]).argmax(axis=2).astype(np.int64)
    return UnitTable(electrode=base.electrode[rows], scored=base.scored[rows], hard=base.hard[rows],
                     snr_requested=base.snr_requested[rows] * amplitude[rows], rate_hz=base.rate_hz[rows],
                     templates_uv=temps, banks_uv=banks, filtered_banks_uv=fbanks, gt_offset=gt_offset,
                     sign=sign, peak_index=peak)


def simulate_sessions(config: SimConfig | None = None, n_sessions: int = 3, drift: float = 0.1, seed: int = 0, *,
                      turnover: float = 0.2, template_fn=None) -> list[SimulatedSession]:
    """Simulate ``n_sessions`` recordings of one array whose units keep their identity.

    Parameters
    ----------
    config : SimConfig, optional
        Settings of every session (defaults: 96 electrodes, 60 s).
    n_sessions : int, default 3
    drift : float, default 0.1
        Standard deviation of the log-amplitude step between consecutive sessions; the time
        stretch steps by ``drift / 2``. 0 gives identical templates in every session.
    seed : int, default 0
    turnover : float, default 0.2
        Fraction of the scored units that are present in only part of the sessions.
    template_fn : callable, optional
        Source of spike shapes, as for :func:`spikevae.synth.simulate_recording`.

    Returns
    -------
    list of SimulatedSession
        In session order.

    Raises
    ------
    SpikevaeConfigError
        For fewer than one session, a negative drift or a turnover outside [0, 1].
    """
    from ..errors import SpikevaeConfigError

    if n_sessions < 1:
        raise SpikevaeConfigError(f"--sessions {n_sessions}: simulate at least 1 session")
    if not 0 <= drift <= 2:
        raise SpikevaeConfigError(f"--drift {drift}: the drift (log-amplitude step per session) must be in [0, 2]")
    if not 0 <= turnover <= 1:
        raise SpikevaeConfigError(f"--turnover {turnover}: the fraction of units that appear or vanish "
                                  "must be in [0, 1]")
    cfg = config if config is not None else SimConfig()
    rec0, gt0 = simulate_recording(cfg, seed, template_fn=template_fn)
    base = rec0.units
    rng = np.random.default_rng([int(seed), _STREAM])
    present = _lifetimes(base.scored, n_sessions, turnover, rng)
    steps_a = rng.normal(0.0, drift, (n_sessions, base.n_units))
    steps_s = rng.normal(0.0, drift / 2, (n_sessions, base.n_units))
    steps_a[0] = steps_s[0] = 0.0
    amp, stretch = np.exp(np.cumsum(steps_a, axis=0)), 1.0 + np.cumsum(steps_s, axis=0)
    stretch = np.clip(stretch, 0.5, 2.0)
    identity_of_row = np.full(base.n_units, -1, np.int64)
    identity_of_row[base.scored] = np.arange(int(base.scored.sum()))
    sigma = np.asarray(rec0.unit_info.noise_uv, float)
    out = []
    for s in range(n_sessions):
        sseed = session_seed(seed, s)
        if s == 0 and present[0].all():
            rec, gt, units = rec0, gt0, base
        else:
            units = drifted_units(base, amp[s], stretch[s], present[s], cfg)
            noise = rec0.noise if s == 0 else BlockNoise(sseed, rec0.n_channels, rec0.noise.fir, rec0.noise.scale_uv,
                                                          rec0.noise.block, rec0.noise.common_fraction)
            spikes = _draw_spikes(cfg, units, sseed, rec0.n_samples)
            rec = SimulatedRecording(units, spikes, noise, cfg.fs, rec0.n_samples, rec0.channel_ids,
                                     rec0.positions_um, cfg.block_samples,
                                     source=f"simulated(seed={seed}, session={s})")
            gt, info = _ground_truth(cfg, units, spikes, sigma, rec0.channel_ids, sseed, rec0.n_samples)
            rec.unit_info = info
        rows = np.flatnonzero(present[s] & base.scored)  # scored rows in table order = gt ids 0..n-1
        truth = SessionTruth(s, np.arange(rows.size, dtype=np.int64), identity_of_row[rows], base.electrode[rows],
                             amp[s, rows], stretch[s, rows])
        out.append(SimulatedSession(rec, gt, truth, sseed))
    log.info("simulated %d sessions (drift %.3g, turnover %.2g): %d identities", n_sessions, drift, turnover,
             int(base.scored.sum()))
    return out


TRUTH_COLUMNS = ("session", "gt_unit", "identity", "electrode", "amplitude_factor", "stretch")


def write_tracking_truth(path, sessions: list[SimulatedSession]) -> Path:
    """Write ``tracking_truth.csv``: one row per ground-truth unit of each session (:data:`TRUTH_COLUMNS`)."""
    from ..store import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(TRUTH_COLUMNS)
            for ss in sessions:
                t = ss.truth
                for i in range(t.gt_unit.size):
                    w.writerow([t.session, int(t.gt_unit[i]), int(t.identity[i]), int(t.electrode[i]),
                                f"{t.amplitude_factor[i]:.5f}", f"{t.stretch[i]:.5f}"])
    return path


def read_tracking_truth(path) -> dict[tuple[int, int], int]:
    """``{(session, gt_unit): identity}`` from a ``tracking_truth.csv``.

    Raises
    ------
    SpikevaeError
        When the file is missing or lacks the columns session, gt_unit and identity.
    """
    from ..errors import SpikevaeError

    path = Path(path)
    if not path.is_file():
        raise SpikevaeError(f"{path}: no tracking truth; write one with `spikevae simulate --sessions N`")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"session", "gt_unit", "identity"} <= set(rows[0]):
        raise SpikevaeError(f"{path}: needs the columns session, gt_unit and identity; got {', '.join(rows[0])}")
    return {(int(r["session"]), int(r["gt_unit"])): int(r["identity"]) for r in rows}


def write_sessions(out_dir, sessions: list[SimulatedSession], config: SimConfig, fmt: str = "nsx",
                   chunk_s: float = 1.0, progress: bool = False) -> list[dict]:
    """Write ``OUT/session_<k>/`` (recording, ground_truth.npz, simulation.json) and ``OUT/tracking_truth.csv``.

    Returns
    -------
    list of dict
        The summary of each session (as :func:`spikevae.synth.export.write_simulation` returns).
    """
    from ..synth.export import write_simulation

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = sessions
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(sessions, desc="sessions", unit="session")
    summaries = []
    for ss in items:
        cfg = dataclasses.replace(config)
        summaries.append(write_simulation(out / f"session_{ss.truth.session}", ss.recording, ss.ground_truth, cfg,
                                          ss.seed, fmt, chunk_s))
    write_tracking_truth(out / "tracking_truth.csv", sessions)
    return summaries
