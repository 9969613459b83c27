"""Detection: injected spikes recovered in time, chunk borders, dead time, alignment, flat channels."""
import numpy as np
import pytest

from spikevae.detect import DetectConfig, align_waveforms, detect_spikes, estimate_noise, find_peaks
from spikevae.preprocess import BandpassRecording
from spikevae.recording import ArrayRecording

FS = 30000.0


def _template(snr_sigma: float) -> np.ndarray:
    t = (np.arange(90) - 30) / FS * 1e3
    w = -np.exp(-t ** 2 / (2 * 0.12 ** 2)) + 0.35 * np.exp(-(t - 0.45) ** 2 / (2 * 0.25 ** 2))
    return w


def _recording(snr=6.0, n_s=20, seed=0, n_ch=4, chan=1):
    """Noise (σ≈10 µV after filtering) with a unit of the given SNR injected on one channel."""
    rng = np.random.default_rng(seed)
    n = int(n_s * FS)
    x = rng.normal(0, 10, (n, n_ch)).astype(np.float32)
    raw = BandpassRecording(ArrayRecording(x, FS), 300, 6000)
    sigma = float(np.median(np.abs(raw.get_traces(0, int(FS))), axis=0)[chan] / 0.6745)
    w = _template(1.0)
    filt = BandpassRecording(ArrayRecording(np.pad(w, 500)[:, None].astype(np.float32), FS), 300, 6000).get_traces()[:, 0]
    w = w * snr * sigma / abs(filt.min())
    times = np.cumsum(rng.integers(150, 1500, size=n // 800))
    times = times[(times > 200) & (times < n - 200)]
    for t in times:
        x[t - 30:t + 60, chan] += w
    true_peak = times - 30 + int(np.argmin(filt)) - 500  # trough of the filtered template
    return BandpassRecording(ArrayRecording(x, FS), 300, 6000), true_peak


@pytest.mark.parametrize("snr", [5.0, 8.0])
def test_detection_recovers_injected_spikes(snr):
    rec, truth = _recording(snr=snr)
    spikes = detect_spikes(rec, DetectConfig(threshold=4.0))
    found = spikes.sample_index[spikes.electrode == 1]
    d = np.abs(found[:, None] - truth[None, :]).min(axis=0)
    recall = np.mean(d <= 0.2e-3 * FS)
    assert recall >= 0.95, recall
    assert spikes.waveforms.shape[1] == 48 and spikes.peak_index == 15


def test_chunk_border_spike_detected_once():
    rec, truth = _recording(snr=10, n_s=4)
    whole = detect_spikes(rec, DetectConfig(), chunk_s=10)
    for chunk_s in (0.1, 0.37, 1.0):
        borders = np.arange(0, rec.n_samples, int(chunk_s * FS))
        if chunk_s == 0.1:  # the case is exercised: spikes whose window crosses a border
            assert np.sum(np.abs(truth[:, None] - borders[None, :]).min(1) <= 30) >= 3
        part = detect_spikes(rec, DetectConfig(), chunk_s=chunk_s)
        assert np.array_equal(part.sample_index, whole.sample_index)
        assert np.array_equal(part.electrode, whole.electrode)
        assert np.allclose(part.waveforms, whole.waveforms, atol=1e-3)


def test_spike_exactly_on_border_found_once():
    x = np.zeros((9000, 1), np.float32)
    x[3000, 0] = -100.0  # an unfiltered spike on the border of 0.1 s chunks
    x[3001, 0] = -60.0
    rec = ArrayRecording(x + np.random.default_rng(1).normal(0, 1, x.shape).astype(np.float32), FS)
    s = detect_spikes(rec, DetectConfig(upsample=1), chunk_s=0.1)
    assert np.sum(np.abs(s.sample_index - 3000) <= 1) == 1


def test_dead_time_keeps_the_larger_peak():
    y = np.zeros((200, 1), np.float32)
    y[100, 0], y[105, 0], y[150, 0] = -10, -12, -9
    t, ch = find_peaks(y, np.array([5.0]), "neg", dead=15)
    assert t.tolist() == [105, 150] and ch.tolist() == [0, 0]
    t, _ = find_peaks(y, np.array([5.0]), "neg", dead=2)
    assert t.tolist() == [100, 105, 150]
    t, _ = find_peaks(-y, np.array([5.0]), "pos", dead=2)
    assert t.tolist() == [100, 105, 150]
    t, _ = find_peaks(y, np.array([5.0]), "both", dead=60)
    assert t.tolist() == [105]


def test_alignment_recovers_subsample_shift():
    n, pre, length = 400, 15, 48
    grid = np.arange(n, dtype=np.float64)
    shifts = np.array([0.0, 0.25, -0.375, 0.5])
    x = np.zeros((n, len(shifts)))
    for c, s in enumerate(shifts):
        x[:, c] = -np.exp(-(grid - 200 - s) ** 2 / (2 * 2.0 ** 2))
    t = np.full(len(shifts), 200)
    t[shifts > 0.45] = 200  # the integer peak of +0.5 may be 200 or 201
    wf, _ = align_waveforms(x, t, np.arange(len(shifts)), pre, length, 8, -np.ones(len(shifts)))
    # after alignment the extremum sits at index pre and the shape is symmetric about it
    assert np.all(np.argmin(wf, axis=1) == pre)
    sym = np.abs(wf[:, pre - 3] - wf[:, pre + 3])
    assert sym.max() < 0.02
    # integer alignment leaves the asymmetry
    wf1, _ = align_waveforms(x, t, np.arange(len(shifts)), pre, length, 1, -np.ones(len(shifts)))
    assert np.abs(wf1[2, pre - 3] - wf1[2, pre + 3]) > 0.05


def test_flat_channel_is_skipped_with_warning(caplog):
    rec, _ = _recording(n_s=3, n_ch=3)
    x = rec.parent.traces.copy()
    x[:, 2] = 0.0
    rec2 = BandpassRecording(ArrayRecording(x, FS), 300, 6000)
    s = detect_spikes(rec2, DetectConfig())
    assert not np.any(s.electrode == 2)
    assert np.any(s.electrode == 1)
    assert "channel 2 is flat" in caplog.text


def test_noise_estimate_and_snippets():
    rec, _ = _recording(n_s=5)
    sigma = estimate_noise(rec)
    assert np.all(np.abs(sigma[[0, 2, 3]] / sigma[[0, 2, 3]].mean() - 1) < 0.05)
    s = detect_spikes(rec, DetectConfig(noise_snippets=50))
    assert s.noise_snippets.shape[1] == 48
    for c in range(4):
        snips = s.noise_snippets[s.noise_electrode == c]
        assert len(snips) >= 40
        # spike-free: no sample beyond the threshold
        assert np.abs(snips).max() <= 4.0 * s.noise_uv[c] + 1e-3


def test_worker_processes_give_identical_spikes():
    rec, _ = _recording(snr=8, n_s=4)
    serial = detect_spikes(rec, DetectConfig(), chunk_s=0.25, n_jobs=1)
    parallel = detect_spikes(rec, DetectConfig(), chunk_s=0.25, n_jobs=2)
    assert serial.n_spikes > 50
    for k in ("sample_index", "electrode", "waveforms", "noise_snippets", "noise_electrode"):
        assert np.array_equal(getattr(serial, k), getattr(parallel, k)), k
