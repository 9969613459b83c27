"""Configuration of synthetic Utah-array recordings with ground truth (:class:`SimConfig`).

Defaults describe a Utah array: 96 electrodes (10 x 10 without corners, 400 µm pitch),
30 kHz, 0-3 scored units per electrode with SNR 3-20, 2-20 Hz Poisson firing with a
1.5 ms refractory period, and 0-2 background units below SNR 2 that are not scored.
SNR is |extremum of the template after the 300-6000 Hz bandpass| / σ of the noise
after the same bandpass.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param


@dataclass
class SimConfig:
    fs: float = param(30000.0, "sampling rate", unit="Hz", low=1000, high=100000)
    duration_s: float = param(60.0, "length of the recording", unit="s", low=0.01, high=86400)
    layout: str = param("utah", "electrode layout: utah (rows x cols without corners) or grid (all rows x cols)",
                        choices=("utah", "grid"))
    n_rows: int = param(10, "rows of the electrode grid", low=1, high=64)
    n_cols: int = param(10, "columns of the electrode grid", low=1, high=64)
    pitch_um: float = param(400.0, "electrode spacing", unit="µm", low=1)
    n_electrodes: int = param(0, "keep the first n electrodes of the layout (0 = all)", low=0)
    units_min: int = param(0, "fewest scored units on an electrode", low=0, high=10)
    units_max: int = param(3, "most scored units on an electrode", low=0, high=10)
    snr_min: float = param(3.0, "lowest SNR of a scored unit (drawn log-uniform)", low=0.1)
    snr_max: float = param(20.0, "highest SNR of a scored unit", low=0.1)
    rate_min_hz: float = param(2.0, "lowest mean firing rate", unit="Hz", low=0.01)
    rate_max_hz: float = param(20.0, "highest mean firing rate", unit="Hz", low=0.01, high=200)
    refractory_ms: float = param(1.5, "absolute refractory period", unit="ms", low=0.0, high=20)
    burst_prob: float = param(0.05, "probability that a spike starts a burst (0 = no bursts)", low=0.0, high=1.0)
    burst_max_spikes: int = param(4, "most extra spikes in a burst (1 to this, uniform)", low=1, high=20)
    burst_isi_ms_min: float = param(2.5, "shortest inter-spike interval inside a burst", unit="ms", low=0.1)
    burst_isi_ms_max: float = param(8.0, "longest inter-spike interval inside a burst", unit="ms", low=0.1)
    burst_decay: float = param(0.85, "amplitude factor from one burst spike to the next", low=0.1, high=1.0)
    amp_jitter: float = param(0.07, "per-spike amplitude jitter (standard deviation, fraction)", low=0.0, high=0.5)
    drift_frac: float = param(0.0, "slow sinusoidal amplitude drift (fraction; 0 = none)", low=0.0, high=0.9)
    drift_period_s: float = param(600.0, "shortest period of the amplitude drift (longest is 3x)", unit="s", low=1)
    hard_fraction: float = param(0.4, "fraction of electrodes with 2+ units whose units look alike", low=0.0, high=1.0)
    hard_amp_step_min: float = param(0.1, "least peak-amplitude step between look-alike units (fraction)", low=0.0, high=1.0)
    hard_amp_step_max: float = param(0.2, "largest peak-amplitude step between look-alike units (fraction)", low=0.0, high=1.0)
    hard_stretch: float = param(0.08, "largest time stretch between look-alike units (fraction)", low=0.0, high=0.5)
    background_min: int = param(0, "fewest unscored background units per electrode", low=0, high=20)
    background_max: int = param(2, "most unscored background units per electrode", low=0, high=20)
    background_snr_min: float = param(0.5, "lowest SNR of a background unit", low=0.0)
    background_snr_max: float = param(2.0, "highest SNR of a background unit", low=0.0)
    noise_uv_min: float = param(6.0, "lowest noise σ of an electrode after the 300-6000 Hz bandpass", unit="µV", low=0.0)
    noise_uv_max: float = param(12.0, "highest noise σ of an electrode after the 300-6000 Hz bandpass", unit="µV", low=0.0)
    pink_exponent: float = param(1.0, "exponent of the 1/f^a part of the noise spectrum", low=0.0, high=3.0)
    pink_corner_hz: float = param(1000.0, "frequency where the 1/f part equals the white part", unit="Hz", low=0.0)
    lowpass_hz: float = param(7500.0, "first-order roll-off of the noise (amplifier anti-aliasing)", unit="Hz", low=10)
    common_noise_fraction: float = param(0.0, "fraction of the noise variance shared by all electrodes", low=0.0, high=1.0)
    fir_taps: int = param(2049, "length of the noise colouring filter", unit="samples", low=3, high=16385)
    template_ms: float = param(3.0, "length of a template (wide-band)", unit="ms", low=0.5, high=10)
    template_pre_ms: float = param(1.0, "template time before the trough", unit="ms", low=0.1, high=5)
    subsample_shifts: int = param(8, "sub-sample spike time positions (1 = on the sample grid)", low=1, high=64)
    block_samples: int = param(32768, "samples per lazily generated block", low=4096, high=1048576)
    artefact_rate_hz: float = param(0.0, "artefacts shared across the array (stimulation pulses, cable knocks) per "
                                         "second, at random times (0 = none)", unit="Hz", low=0.0, high=200)
    artefact_amp_uv_min: float = param(300.0, "smallest peak of an artefact on its strongest electrode (wide-band, "
                                              "drawn log-uniform)", unit="µV", low=1.0)
    artefact_amp_uv_max: float = param(3000.0, "largest peak of an artefact on its strongest electrode", unit="µV",
                                       low=1.0)
    artefact_fraction: float = param(0.9, "fraction of the electrodes each artefact reaches", low=0.0, high=1.0)
    artefact_decay_ms: float = param(0.5, "time constant of an artefact's decay after its biphasic pulse",
                                     unit="ms", low=0.01, high=20)
    snr_band_low_hz: float = param(300.0, "low cutoff of the bandpass that defines SNR", unit="Hz", low=1)
    snr_band_high_hz: float = param(6000.0, "high cutoff of the bandpass that defines SNR", unit="Hz", low=10)
    # hard cases for linear features (all off by default; each draws from its own random stream)
    shape_burst: float = param(0.0, "shape change of burst spikes: spike k of a burst changes by k x this "
                                    "(capped at 1 = the full change; 0 = none)", low=0.0, high=1.0)
    shape_drift: float = param(0.0, "slow sinusoidal drift of every unit's shape over the session (fraction of "
                                    "the full change, 0 = none)", low=0.0, high=1.0)
    shape_drift_period_s: float = param(300.0, "shortest period of the shape drift (longest is 3x)", unit="s", low=1)
    shape_width: float = param(0.3, "time widening of a spike at the full shape change (fraction)", low=0.0, high=1.0)
    shape_repol: float = param(0.6, "shrinking of the repolarisation lobe (after the extremum) at the full shape "
                                    "change (fraction)", low=0.0, high=1.0)
    shape_levels: int = param(16, "distinct shapes between none and the full change (quantisation)", low=2, high=256)
    noise_t_dof: float = param(0.0, "Student-t innovations of the background noise with this many degrees of "
                                    "freedom (heavy tails, smaller = heavier; 0 = Gaussian)", low=0.0, high=1000)
    noise_t_hold_ms: float = param(1.0, "time over which one Student-t scale is held (the tails survive the "
                                        "spike band's filtering)", unit="ms", low=0.01, high=100)
    line_noise_uv: float = param(0.0, "amplitude of the mains fundamental, wide-band (0 = no line noise)",
                                 unit="µV", low=0.0)
    line_freq_hz: float = param(60.0, "mains frequency (50 or 60)", unit="Hz", low=40, high=70)
    line_harmonics: int = param(5, "mains harmonics 2f..(n+1)f added, amplitude falling as 1/k", low=0, high=50)
    noise_from_highpass_hz: float = param(250.0, "--noise-from: high-pass the source recording at this cutoff before "
                                                 "using it (removes LFP and offsets, so tiling leaves no steps; "
                                                 "0 = the source as it is)", unit="Hz", low=0.0)
    noise_from_blank_sd: float = param(5.0, "--noise-from: blank (set to 0) the source around samples beyond this many "
                                            "robust σ of its channel, removing its own spikes (0 = keep them)",
                                       low=0.0)
    noise_from_blank_ms: float = param(1.0, "--noise-from: samples blanked on each side of a sample beyond the "
                                            "threshold", unit="ms", low=0.0, high=20)
    overlap_fraction: float = param(0.0, "fraction of the electrodes whose scored units fire fast, so that "
                                         "their spikes overlap often (0 = none)", low=0.0, high=1.0)
    overlap_rate_hz_min: float = param(30.0, "lowest rate of a fast unit", unit="Hz", low=0.01, high=200)
    overlap_rate_hz_max: float = param(80.0, "highest rate of a fast unit", unit="Hz", low=0.01, high=200)

    def check(self) -> None:
        """Raise SpikevaeConfigError for inconsistent ranges (each bound is checked on its own by param)."""
        from ..errors import SpikevaeConfigError

        pairs = [("units_min", "units_max"), ("snr_min", "snr_max"), ("rate_min_hz", "rate_max_hz"),
                 ("burst_isi_ms_min", "burst_isi_ms_max"), ("hard_amp_step_min", "hard_amp_step_max"),
                 ("background_min", "background_max"), ("background_snr_min", "background_snr_max"),
                 ("noise_uv_min", "noise_uv_max"), ("snr_band_low_hz", "snr_band_high_hz"),
                 ("artefact_amp_uv_min", "artefact_amp_uv_max"), ("overlap_rate_hz_min", "overlap_rate_hz_max")]
        for lo, hi in pairs:
            if getattr(self, lo) > getattr(self, hi):
                raise SpikevaeConfigError(
                    f"sim.{lo}={getattr(self, lo)} is above sim.{hi}={getattr(self, hi)}; make {lo} <= {hi}")
        if self.template_pre_ms >= self.template_ms:
            raise SpikevaeConfigError(
                f"sim.template_pre_ms={self.template_pre_ms} must be shorter than sim.template_ms={self.template_ms}")
        if self.fir_taps >= self.block_samples:
            raise SpikevaeConfigError(
                f"sim.fir_taps={self.fir_taps} must be below sim.block_samples={self.block_samples}")
        if 0 < self.noise_t_dof <= 2:
            raise SpikevaeConfigError(
                f"sim.noise_t_dof={self.noise_t_dof}: Student-t noise needs more than 2 degrees of freedom "
                "(finite variance); use e.g. 3, or 0 for Gaussian noise")
        if 0 < self.noise_from_highpass_hz and self.noise_from_highpass_hz >= 0.45 * self.fs:
            raise SpikevaeConfigError(
                f"sim.noise_from_highpass_hz={self.noise_from_highpass_hz} must be below {0.45 * self.fs:g} Hz "
                "(0.45 x sim.fs), or 0 to use the source unfiltered")
        if self.snr_band_high_hz >= self.fs / 2:
            raise SpikevaeConfigError(
                f"sim.snr_band_high_hz={self.snr_band_high_hz} must be below Nyquist ({self.fs / 2:g} Hz)")
