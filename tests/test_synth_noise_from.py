"""``spikevae simulate --noise-from``: background taken from a continuous Blackrock NSx file.

The main tests write a small NSx (spikevae.io.nsx_write) so they run without shared data;
the real Blackrock files in ../shared/data are read through ``require_data``.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import signal

from conftest import SHARED_DATA, require_data, run_cli
from spikevae.recording import ArrayRecording
from spikevae.synth import SimConfig, read_ground_truth, simulate_recording

FS = 30000.0
SIGMA = np.array([6.0, 9.0, 12.0, 15.0])  # µV, white noise of the source's channels
SPIKE_HZ = 15.0


def bandpass(x, fs=FS):
    sos = signal.butter(3, (300.0, 6000.0), btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, float), axis=0)


def robust_sigma(x, fs=FS):
    return np.median(np.abs(bandpass(x, fs)), axis=0) / 0.6745


def source_traces(seconds=3.0, seed=11):
    """Noise (σ = SIGMA), 8 Hz LFP of 150 µV, DC offsets, and the source's own large spikes."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    noise = rng.normal(0.0, 1.0, (n, SIGMA.size)) * SIGMA
    lfp = 150.0 * np.sin(2 * np.pi * 8.0 * t)[:, None] + np.array([300.0, -200.0, 50.0, 0.0])
    k = np.arange(-15, 30)
    shape = -150.0 * np.exp(-0.5 * (k / 4.0) ** 2) + 60.0 * np.exp(-0.5 * ((k - 12) / 6.0) ** 2)
    spikes = np.zeros_like(noise)
    times = {}
    for c in range(SIGMA.size):
        times[c] = np.sort(rng.choice(np.arange(100, n - 100), int(SPIKE_HZ * seconds), replace=False))
        for s in times[c]:
            spikes[s + k, c] += shape
    return (noise + lfp + spikes).astype(np.float32), noise, times


@pytest.fixture(scope="module")
def nsx_source(tmp_path_factory):
    from spikevae.io import open_recording
    from spikevae.io.nsx_write import write_nsx

    x, noise, times = source_traces()
    path = write_nsx(tmp_path_factory.mktemp("nsx") / "background.ns5", ArrayRecording(x, FS))
    return path, open_recording(path), noise, times


def config(**kw) -> SimConfig:
    base = dict(duration_s=4.0, n_electrodes=4, block_samples=8192, units_min=1, units_max=2, snr_min=5.0,
                background_min=0, background_max=0, hard_fraction=0.0)
    base.update(kw)
    return SimConfig(**base)


def sim_noise(rec):
    return rec.get_traces().astype(np.float64) - rec.without_noise().get_traces()


def detected_fraction(rec, gt, tol=15):
    """Fraction of the ground-truth spikes with a detection on their electrode within ``tol`` samples."""
    from spikevae.detect import DetectConfig, detect_spikes
    from spikevae.preprocess import PreprocessConfig, preprocess

    spikes = detect_spikes(preprocess(rec, PreprocessConfig()), DetectConfig())
    hits = 0
    for e in np.unique(gt.electrode):
        d = np.sort(spikes.sample_index[spikes.electrode == e])
        g = gt.sample_index[gt.electrode == e]
        pos = np.clip(np.searchsorted(d, g), 1, max(1, d.size - 1))
        near = np.minimum(np.abs(d[pos - 1] - g), np.abs(d[np.minimum(pos, d.size - 1)] - g)) if d.size else g * 0 + tol + 1
        hits += int((near <= tol).sum())
    return hits / gt.sample_index.size, spikes


def test_nsx_background_keeps_each_channels_noise_level_and_drops_its_spikes(nsx_source, caplog):
    _, source, clean, times = nsx_source
    cfg = config()
    with caplog.at_level(logging.WARNING, logger="spikevae.synth.simulate"):
        rec, gt = simulate_recording(cfg, seed=4, noise_recording=source)
    assert "repeats 1.3 times" in caplog.text and "use --duration 3" in caplog.text
    noise = sim_noise(rec)
    want = robust_sigma(clean)
    got = robust_sigma(noise)
    np.testing.assert_allclose(got, want, rtol=0.08)
    np.testing.assert_allclose(rec.unit_info.noise_uv, want, rtol=0.08)  # the SNR scale follows the source
    # the source's own spikes (150 µV, 10-25 σ) are blanked: none of them reaches the simulated background
    n_src = source.n_samples
    for c in range(SIGMA.size):
        at = np.concatenate([times[c], times[c] + n_src])
        at = at[at < rec.n_samples]
        assert np.abs(noise[at, c]).max() < 1e-3
    # the LFP and offsets are gone, so the loop point leaves no step
    assert np.abs(noise.mean(axis=0)).max() < 1.0
    assert np.abs(noise[n_src - 5:n_src + 5]).max() < 6 * SIGMA.max()
    # streamed block by block: any chunking gives the same samples
    parts = np.concatenate([rec.get_traces(a, a + 7001) for a in range(0, rec.n_samples, 7001)])
    np.testing.assert_array_equal(parts, rec.get_traces())


def near_fraction(detected, electrode, times_by_channel, n_src, n_samples, tol=15):
    """Fraction of the source's own spike times (tiled) with a detection on that electrode within ``tol``."""
    hits = total = 0
    for c, t in times_by_channel.items():
        t = np.concatenate([t + k * n_src for k in range(-(-n_samples // n_src))])
        t = t[t < n_samples]
        d = np.sort(detected[electrode == c])
        pos = np.clip(np.searchsorted(d, t), 1, d.size - 1)
        hits += int((np.minimum(np.abs(d[pos - 1] - t), np.abs(d[pos] - t)) <= tol).sum())
        total += t.size
    return hits / total


def test_ground_truth_spikes_are_recovered_over_nsx_background(nsx_source):
    _, source, _, times = nsx_source
    rec, gt = simulate_recording(config(), seed=4, noise_recording=source)
    recall, spikes = detected_fraction(rec, gt)
    assert recall >= 0.9, recall
    src_hits = near_fraction(spikes.sample_index, spikes.electrode, times, source.n_samples, rec.n_samples)
    # without blanking, the source's own spikes come through as unscored detections
    raw, gt_raw = simulate_recording(config(noise_from_blank_sd=0.0), seed=4, noise_recording=source)
    recall_raw, spikes_raw = detected_fraction(raw, gt_raw)
    raw_hits = near_fraction(spikes_raw.sample_index, spikes_raw.electrode, times, source.n_samples, raw.n_samples)
    assert recall_raw >= 0.9 and raw_hits > 0.9 and src_hits < 0.05, (src_hits, raw_hits)


def test_fewer_channels_than_electrodes_repeats_channels_with_a_warning(nsx_source, caplog):
    _, source, clean, _ = nsx_source
    with caplog.at_level(logging.WARNING, logger="spikevae.synth.simulate"):
        rec, _ = simulate_recording(config(n_electrodes=6, duration_s=1.0), seed=1, noise_recording=source)
    assert "has 4 channels for 6 electrodes" in caplog.text and "--electrodes 4" in caplog.text
    assert "repeats" not in caplog.text  # 1 s of a 3 s source is not tiled in time
    noise = sim_noise(rec)
    np.testing.assert_allclose(noise[:, 4:], noise[:, :2], atol=1e-4)
    np.testing.assert_allclose(rec.unit_info.noise_uv, robust_sigma(clean)[[0, 1, 2, 3, 0, 1]], rtol=0.08)


def test_simulate_command_with_an_ns5_noise_source(nsx_source, tmp_path, capsys):
    from spikevae.io import open_recording

    path, _, clean, _ = nsx_source
    out = tmp_path / "sim"
    code, stdout, _ = run_cli(["simulate", str(out), "--duration", "2", "--electrodes", "4", "--seed", "2",
                               "--noise-from", str(path), "--set", "sim.snr_min=5"], capsys)
    assert code == 0 and "recording.ns5" in stdout
    rec = open_recording(out / "recording.ns5")
    gt, info = read_ground_truth(out / "ground_truth.npz")
    np.testing.assert_allclose(info["noise_uv"], robust_sigma(clean), rtol=0.08)
    assert rec.n_channels == 4 and gt.sample_index.size > 0


def test_real_blackrock_nsx_is_streamed_and_a_rate_mismatch_says_how_to_fix(tmp_path, capsys):
    from spikevae.io import open_recording
    from spikevae.synth.noise import BackgroundRecording

    path = require_data(SHARED_DATA / "blackrock_limblab_utah" / "TEST_UN001.ns2")
    code, _, err = run_cli(["simulate", str(tmp_path / "sim"), "--duration", "1", "--electrodes", "4",
                            "--noise-from", str(path)], capsys)
    assert code != 0 and "sampled at 1000 Hz" in err and "sim.fs" in err
    source = open_recording(path)
    bg = BackgroundRecording(source, highpass_hz=10.0, blank_sd=5.0, blank=2)
    whole = bg.get_traces(0, 20000)
    parts = np.concatenate([bg.get_traces(a, min(a + 3000, 20000)) for a in range(0, 20000, 3000)])
    np.testing.assert_allclose(parts, whole, atol=1e-3 * np.abs(whole).max())
    assert np.abs(whole.mean(axis=0)).max() < 0.05 * np.abs(source.get_traces(0, 20000)).mean()
    assert bg.blanked_fraction < 0.05
