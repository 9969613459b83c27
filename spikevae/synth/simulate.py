"""Build a simulated Utah-array recording and its ground truth from a :class:`SimConfig`.

Random streams are separated by entropy words so that each part is reproducible on its
own: ``[seed, 1]`` noise levels, ``[seed, 2]`` units and templates, ``[seed, 3, row]``
the train of unit ``row``, ``[seed, 7, block]`` the white noise of a block, ``[seed, 9]``
artefacts; the hard cases (:mod:`.hard`) ``[seed, 21, row]`` shape drift, ``[seed, 22, block]``
Student-t noise scales, ``[seed, 23]`` line noise, ``[seed, 24]`` fast units.
"""
from __future__ import annotations

import dataclasses
import logging
from functools import partial

import numpy as np

from ..errors import SpikevaeError
from ..objects import Sorting
from ..recording import Recording, utah_positions
from .artefacts import draw_artefacts
from .config import SimConfig
from .ground_truth import UnitInfo
from .hard import LineNoise, NoiseSum, shape_banks, shape_enabled, shape_levels, with_fast_units
from .noise import BackgroundRecording, BlockNoise, RecordedNoise, colouring_fir, measured_sigma
from .recording import SimulatedRecording, SpikeTable
from .templates import parametric_templates
from .trains import TrainParams, draw_train
from .units import UnitTable, design_units

log = logging.getLogger(__name__)


def electrode_positions(cfg: SimConfig) -> np.ndarray:
    """Positions (µm) of the simulated electrodes, shape (n_electrodes, 2)."""
    pos = utah_positions(cfg.n_rows, cfg.n_cols, cfg.pitch_um, drop_corners=cfg.layout == "utah")
    if cfg.n_electrodes:
        if cfg.n_electrodes > pos.shape[0]:
            raise SpikevaeError(f"sim.n_electrodes={cfg.n_electrodes} but the {cfg.layout} layout "
                                f"{cfg.n_rows} x {cfg.n_cols} has only {pos.shape[0]}; enlarge n_rows/n_cols")
        pos = pos[:cfg.n_electrodes]
    return pos


def _noise_source(cfg: SimConfig, seed: int, n_el: int, noise_recording: Recording | None):
    """The noise generator and each electrode's noise σ after the SNR bandpass (µV)."""
    band = (cfg.snr_band_low_hz, cfg.snr_band_high_hz)
    if noise_recording is None:
        sigma = np.random.default_rng([seed, 1]).uniform(cfg.noise_uv_min, cfg.noise_uv_max, n_el)
        fir = colouring_fir(cfg.fs, cfg.fir_taps, cfg.pink_exponent, cfg.pink_corner_hz, cfg.lowpass_hz, band)
        hold = int(round(cfg.noise_t_hold_ms * cfg.fs / 1e3))
        noise = BlockNoise(seed, n_el, fir, sigma, cfg.block_samples, cfg.common_noise_fraction,
                           cfg.noise_t_dof, hold)
        return _with_line_noise(cfg, seed, n_el, noise), sigma
    if abs(noise_recording.fs - cfg.fs) > 1e-6 * cfg.fs:
        raise SpikevaeError(f"the noise recording is sampled at {noise_recording.fs:g} Hz but sim.fs={cfg.fs:g}; "
                            "set sim.fs to the noise recording's rate")
    background = BackgroundRecording(noise_recording, cfg.noise_from_highpass_hz, cfg.noise_from_blank_sd,
                                     int(round(cfg.noise_from_blank_ms * cfg.fs / 1e3)))
    _warn_if_tiled(cfg, background, n_el)
    noise = RecordedNoise(background, n_el, cfg.block_samples)
    n = min(background.n_samples, int(10 * cfg.fs))
    src = np.arange(background.n_channels)
    sigma_src = np.concatenate([measured_sigma(background.get_traces(0, n, src[g:g + 16]), cfg.fs, band)
                                for g in range(0, src.size, 16)])
    return _with_line_noise(cfg, seed, n_el, noise), sigma_src[noise.channels]


def _warn_if_tiled(cfg: SimConfig, background: "BackgroundRecording", n_el: int) -> None:
    """Say when the noise recording repeats in time or over electrodes, and how to avoid it."""
    name = background.origin.source
    if background.n_channels < n_el:
        log.warning("the noise recording %s has %d channels for %d electrodes: electrode e takes channel "
                    "e mod %d, so electrodes %d.. repeat the noise of channels 1..; use --electrodes %d or a "
                    "recording with more channels", name, background.n_channels, n_el, background.n_channels,
                    background.n_channels + 1, background.n_channels)
    n_samples = int(round(cfg.duration_s * cfg.fs))
    if background.n_samples < n_samples:
        log.warning("the noise recording %s lasts %.3g s, shorter than the %.3g s simulated: its background "
                    "repeats %.1f times; use --duration %.3g or a longer recording", name,
                    background.n_samples / cfg.fs, cfg.duration_s, n_samples / background.n_samples,
                    background.n_samples / cfg.fs)
    if background.blanked_fraction > 0.1:
        log.warning("the noise recording %s: %.1f%% of its first 10 s is blanked as spikes (beyond %g σ); "
                    "raise sim.noise_from_blank_sd or set it to 0 to keep them",
                    name, 100 * background.blanked_fraction, cfg.noise_from_blank_sd)


def _with_line_noise(cfg: SimConfig, seed: int, n_el: int, noise):
    if cfg.line_noise_uv <= 0:
        return noise
    return NoiseSum([noise, LineNoise(cfg, seed, n_el)])


def _draw_spikes(cfg: SimConfig, units: UnitTable, seed: int, n_samples: int) -> SpikeTable:
    """Trains of every unit as a SpikeTable sorted by window start (windows inside the recording)."""
    parts = []
    s = cfg.subsample_shifts
    shaped = shape_enabled(cfg)
    for row in range(units.n_units):
        rng = np.random.default_rng([seed, 3, row])
        p = TrainParams(rate_hz=units.rate_hz[row], refractory_s=cfg.refractory_ms / 1e3,
                        burst_prob=cfg.burst_prob, burst_max_spikes=cfg.burst_max_spikes,
                        burst_isi_s=(cfg.burst_isi_ms_min / 1e3, cfg.burst_isi_ms_max / 1e3),
                        burst_decay=cfg.burst_decay, amp_jitter=cfg.amp_jitter, drift_frac=cfg.drift_frac,
                        drift_period_s=cfg.drift_period_s * rng.uniform(1, 3),
                        drift_phase=rng.uniform(0, 2 * np.pi))
        t, amp, burst = draw_train(p, n_samples / cfg.fs, rng, with_burst_index=True)
        tau = t * cfg.fs
        whole = np.floor(tau).astype(np.int64)
        shift = np.round((tau - whole) * s).astype(np.int64)
        whole += shift // s
        shift %= s
        onset = whole - units.peak_index
        ok = (onset >= 0) & (onset + units.n_samples <= n_samples)
        level = shape_levels(cfg, seed, row, t[ok], burst[ok]) if shaped else np.zeros(ok.sum(), np.int16)
        parts.append((onset[ok], np.full(ok.sum(), row, np.int32), shift[ok].astype(np.int16),
                      amp[ok].astype(np.float32), level))
    if not parts:
        return SpikeTable(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int16), np.zeros(0, np.float32),
                          np.zeros(0, np.int16) if shaped else None)
    onset, row, shift, amp, level = (np.concatenate(x) for x in zip(*parts))
    order = np.argsort(onset, kind="stable")
    return SpikeTable(onset[order], row[order], shift[order], amp[order], level[order] if shaped else None)


def realised_snr(units: UnitTable, spikes: SpikeTable, row: int, sigma_uv: float) -> float:
    """|extremum of the filtered mean noise-free waveform aligned at the GT times| / σ (NaN without spikes)."""
    sel = spikes.row == row
    if not sel.any():
        return float("nan")
    fb, off = units.filtered_banks_uv[row], units.gt_offset[row]
    weights = np.bincount(spikes.shift[sel], weights=spikes.amp[sel], minlength=fb.shape[0])
    ref = int(off[0])
    mean = sum(w * np.roll(fb[k], ref - off[k]) for k, w in enumerate(weights)) / sel.sum()
    return float(units.sign[row] * mean[ref] / sigma_uv)


def simulate_recording(config: SimConfig | None = None, seed: int = 0, *, template_fn=None,
                       noise_recording: Recording | None = None) -> tuple[SimulatedRecording, Sorting]:
    """A lazy simulated Utah-array recording and its ground truth.

    Parameters
    ----------
    config : SimConfig, optional
        Defaults: 96 electrodes, 60 s at 30 kHz.
    seed : int
        Base seed; the same seed and config give bit-identical traces.
    template_fn : callable ``(n_templates, n_samples, rng) -> ndarray (n_templates, n_samples)``, optional
        Source of spike shapes (default: the parametric family of :mod:`.templates`); each
        row is moved so its extremum sits at ``template_pre_ms`` and scaled to the unit's SNR.
    noise_recording : Recording, optional
        Take the noise from this recording instead of the 1/f + white model: high-passed at
        ``sim.noise_from_highpass_hz``, its own spikes blanked (``sim.noise_from_blank_sd``,
        see :class:`.noise.BackgroundRecording`), streamed block by block, electrode ``e``
        taking channel ``e mod n_channels``, and tiled in time when shorter than the
        simulation (both with a warning). Its σ after the SNR bandpass is measured (MAD) on
        its first 10 s and sets the units' SNR scale.

    Returns
    -------
    recording : SimulatedRecording
        Traces in µV; ``recording.unit_info`` is the :class:`UnitInfo` of the scored units
        (with ``artefact_sample_index``, the onsets of the simulated artefacts, when
        ``config.artefact_rate_hz`` > 0).
    ground_truth : Sorting
        One entry per scored spike (background units excluded), sorted by time.
        ``sample_index`` is the sample of the spike's extremum after the SNR bandpass
        (the trough for negative spikes), which is where the detector aligns spikes.
        Unit ids are 0 .. n_units - 1 in electrode order.
    """
    cfg = config if config is not None else SimConfig()
    cfg.check()
    seed = int(seed)
    pos = electrode_positions(cfg)
    n_el, n_samples = pos.shape[0], int(round(cfg.duration_s * cfg.fs))
    noise, sigma = _noise_source(cfg, seed, n_el, noise_recording)
    fn = template_fn or partial(parametric_templates, fs=cfg.fs, peak_index=int(round(cfg.template_pre_ms * cfg.fs / 1e3)))
    units = design_units(cfg, n_el, sigma, np.random.default_rng([seed, 2]), fn)
    units = with_fast_units(cfg, units, seed, n_el)
    spikes = _draw_spikes(cfg, units, seed, n_samples)
    banks = shape_banks(cfg, units) if shape_enabled(cfg) else None
    channel_ids = np.array([str(i + 1) for i in range(n_el)])
    artefacts = draw_artefacts(cfg, seed, n_el, n_samples)
    rec = SimulatedRecording(units, spikes, noise, cfg.fs, n_samples, channel_ids, pos, cfg.block_samples,
                             source=f"simulated(seed={seed})", artefacts=artefacts, shape_banks=banks)
    gt, info = _ground_truth(cfg, units, spikes, sigma, channel_ids, seed, n_samples)
    if artefacts is not None:
        info.artefact_sample_index = artefacts.onset
    rec.unit_info = info
    log.info("simulated %d electrodes, %.1f s: %d scored units (%d spikes), %d background units",
             n_el, cfg.duration_s, len(info.unit_ids), gt.sample_index.shape[0], info.n_background_units)
    return rec, gt


def _ground_truth(cfg, units: UnitTable, spikes: SpikeTable, sigma, channel_ids, seed, n_samples):
    scored_rows = np.flatnonzero(units.scored)
    unit_id = np.full(units.n_units, -1, np.int64)
    unit_id[scored_rows] = np.arange(scored_rows.size)
    sel = units.scored[spikes.row]
    rows, shifts = spikes.row[sel], spikes.shift[sel]
    t = spikes.onset[sel] + units.gt_offset[rows, shifts]
    order = np.argsort(t, kind="stable")
    gt = Sorting(t[order], units.electrode[rows][order], unit_id[rows][order], cfg.fs,
                 params={"simulator": "spikevae.synth", "seed": seed, "sim": dataclasses.asdict(cfg)})
    counts = np.bincount(rows, minlength=units.n_units)[scored_rows]
    info = UnitInfo(
        unit_ids=np.arange(scored_rows.size, dtype=np.int64), unit_electrode=units.electrode[scored_rows],
        unit_snr=np.array([realised_snr(units, spikes, r, sigma[units.electrode[r]]) for r in scored_rows]),
        unit_rate_hz=counts / (n_samples / cfg.fs), unit_snr_requested=units.snr_requested[scored_rows],
        unit_hard=units.hard[scored_rows], unit_templates=units.templates_uv[scored_rows],
        template_peak_index=units.peak_index, noise_uv=np.asarray(sigma, float), channel_ids=channel_ids,
        seed=seed, n_background_units=int((~units.scored).sum()),
    )
    return gt, info
