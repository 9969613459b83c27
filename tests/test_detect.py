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


def test_equal_extrema_within_the_dead_time_are_one_spike():
    """A flat-bottomed spike with two equal troughs 4 samples apart (seen on 1 of 10 M spikes of a
    simulated Utah recording) was detected twice, and alignment put both on the same sample."""
    y = np.zeros((200, 1), np.float32)
    y[95:106, 0] = [-5, -20, -60, -105, -102, -102, -105, -105, -60, -20, -5]
    t, _ = find_peaks(y, np.array([5.0]), "neg", dead=15)
    assert t.tolist() == [98]
    y[160, 0] = -105.0  # the same value, past the dead time: a spike of its own
    assert find_peaks(y, np.array([5.0]), "neg", dead=15)[0].tolist() == [98, 160]
    x = np.random.default_rng(0).normal(0, 1, (3000, 1)).astype(np.float32)
    x[1000:1011, 0] = y[95:106, 0]
    s = detect_spikes(ArrayRecording(x, FS), DetectConfig(threshold=4.0))
    assert np.sum(np.abs(s.sample_index - 1004) <= 6) == 1


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


@pytest.mark.parametrize("threads", [False, True])
def test_worker_processes_give_identical_spikes(threads, monkeypatch):
    """Worker processes, and the threads used when the band-pass runs on a GPU (forced here on the CPU),
    give the serial run's spikes bit for bit."""
    import spikevae.detect as d

    rec, _ = _recording(snr=8, n_s=4)
    serial = detect_spikes(rec, DetectConfig(), chunk_s=0.25, n_jobs=1)
    monkeypatch.setattr(d, "_filters_on_gpu", lambda r: threads)
    parallel = detect_spikes(rec, DetectConfig(), chunk_s=0.25, n_jobs=2)
    assert serial.n_spikes > 50
    for k in ("sample_index", "electrode", "waveforms", "noise_snippets", "noise_electrode"):
        assert np.array_equal(getattr(serial, k), getattr(parallel, k)), k


def test_gpu_filter_is_found_in_the_preprocessing_chain():
    from spikevae.detect import _filters_on_gpu
    from spikevae.preprocess import BandpassRecording, CommonMedianRecording

    rec, _ = _recording(snr=8, n_s=1)
    bp = BandpassRecording(rec, 300, 6000)
    assert not _filters_on_gpu(rec) and not _filters_on_gpu(CommonMedianRecording(bp))
    bp.device = "cuda"  # as a BandpassRecording made with device="cuda" on a machine with a GPU
    assert _filters_on_gpu(bp) and _filters_on_gpu(CommonMedianRecording(bp))


# ---- the fast kernels against the dense formulations they replace (bit for bit) -------------------------
def _traces(seed=3, n=20000, n_ch=5):
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(seed)
    x = (gaussian_filter1d(rng.standard_normal((n, n_ch)), 1.5, axis=0) * 4).astype(np.float32)
    x[500:503, 1] = -30  # a plateau: only its first sample is a peak
    x[700:702, 1] = 30
    x[0, 2] = x[-1, 3] = -30  # extremes on the chunk's edges are never peaks
    return x


def _dense_find_peaks(x, thr, polarity, dead):
    """find_peaks as first written: every test on every sample, a running maximum for the dead time."""
    from scipy.ndimage import maximum_filter1d

    y = -x if polarity == "neg" else (x if polarity == "pos" else np.abs(x))
    local = np.zeros(y.shape, bool)
    local[1:-1] = (y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:])
    cand = (y > thr[None, :]) & local
    if dead > 0:
        cand &= y >= maximum_filter1d(y, size=2 * dead + 1, axis=0, mode="nearest")
        for k in range(1, dead + 1):  # larger than every sample of the dead time before (the edge clipped)
            cand &= y > np.concatenate([np.repeat(y[:1], k, axis=0), y[:-k]])[:y.shape[0]]
    return np.nonzero(cand)


@pytest.mark.parametrize("polarity", ["neg", "pos", "both"])
def test_find_peaks_equals_the_dense_formulation(polarity):
    for x in (_traces(), np.round(_traces())):  # rounded: many equal extrema within a dead time
        for thr in (np.array([2.0, 2.0, 2.0, 2.0, np.inf], np.float32), np.array([1.0, 3.0, 2.0, 2.5, 1.5])):
            for dead in (0, 1, 4, 15, 300, 30000):  # 300 and 30000: the running-maximum branch
                t, ch = find_peaks(x, thr, polarity, dead)
                rt, rch = _dense_find_peaks(x, thr, polarity, dead)
                assert t.dtype == ch.dtype == np.int64 and t.size > (0 if dead > 100 else 50)
                assert np.array_equal(t, rt) and np.array_equal(ch, rch), (thr, dead)
    assert find_peaks(x[:2], thr, polarity, 4)[0].size == 0


def _spline_align(x, t, ch, pre, length, upsample, polarity, smooth, max_shift):
    """align_waveforms as first written, on scipy's CubicSpline."""
    from scipy.interpolate import CubicSpline
    from scipy.ndimage import gaussian_filter1d

    pad = 4
    snips = x[t[:, None] + np.arange(-pre - pad, length - pre + pad)[None, :], ch[:, None]].astype(np.float64)
    grid = np.arange(snips.shape[1], dtype=np.float64)
    spline = CubicSpline(grid, snips, axis=1)
    ref = CubicSpline(grid, gaussian_filter1d(snips, smooth, axis=1), axis=1) if smooth > 0 else spline
    half = int(round(min(max_shift, pad - 1) * upsample))
    offsets = np.arange(-half, half + 1) / upsample
    best = np.argmax(ref(pre + pad + offsets) * polarity[:, None], axis=1)
    out = np.empty((len(t), length), dtype=np.float32)
    for k in np.unique(best):
        out[best == k] = spline(np.arange(length) + pad + offsets[k])[best == k]
    return out, offsets[best]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_alignment_equals_cubicspline_bit_for_bit(dtype):
    x = (_traces() * 7.3).astype(dtype)
    t, ch = find_peaks(x, np.full(5, 2.0 * 7.3), "both", 15)
    keep = (t > 20) & (t < x.shape[0] - 50)
    t, ch = t[keep], ch[keep]
    pol = np.sign(x[t, ch]).astype(np.float64)
    for upsample, smooth, max_shift in ((8, 2.0, 3.0), (8, 0.0, 0.5), (5, 1.3, 2.0)):
        wf, shift = align_waveforms(x, t, ch, 15, 48, upsample, pol, smooth, max_shift)
        ref_wf, ref_shift = _spline_align(x, t, ch, 15, 48, upsample, pol, smooth, max_shift)
        assert wf.dtype == np.float32 and wf.tobytes() == ref_wf.tobytes()
        assert np.array_equal(shift, ref_shift) and np.any(shift != 0)


def test_spline_coefficients_are_cubicsplines():
    from scipy.interpolate import CubicSpline

    from spikevae.detect import _eval_spline, _spline_coefficients

    rng = np.random.default_rng(0)
    for m in (3, 4, 5, 56):
        y = rng.standard_normal((300, m)) * 40
        ref = CubicSpline(np.arange(m, dtype=np.float64), y, axis=1)
        coef = _spline_coefficients(y)
        for k in range(4):
            assert np.ascontiguousarray(coef[k]).tobytes() == np.ascontiguousarray(ref.c[k].T).tobytes(), (m, k)
        p = np.linspace(-0.5, m - 0.5, 23)  # inside, on the knots, and extrapolated
        assert _eval_spline(coef, p).tobytes() == ref(p).tobytes()
    with pytest.raises(ValueError, match="finite"):
        _spline_coefficients(np.array([[0.0, 1.0, np.nan, 2.0, 3.0]]))


def test_noise_windows_equal_the_cumulative_mask_formulation():
    from spikevae.detect import _clean_noise_windows, _noise_candidates

    x = _traces(n=12000, n_ch=6)
    level = np.full(6, 4.0, np.float32)  # about 2.3 σ: some windows clean, some not
    active = np.array([True, True, False, True, True, True])
    start, stop, left, length, n_per, block_len, n_samples = 3000, 9000, 60, 48, 40, 2500, 20000
    got = _clean_noise_windows(x, level, left, start, stop, length, n_per, block_len, n_samples, active, 7)
    # reference: a cumulative count of supra-threshold samples over the whole chunk
    c = np.concatenate([np.zeros((1, 6), np.int64), np.cumsum(np.abs(x) > level, axis=0)])
    ref, drawn = [[], [], [], []], []
    for b in range(start // block_len, (stop - 1) // block_len + 1):
        cand = _noise_candidates(b, block_len, n_samples, length, 4 * n_per, 7)
        draw = np.flatnonzero((cand >= start) & (cand < stop))
        drawn.append(draw)
        pos = cand[draw] - start + left
        for e in np.flatnonzero(active):
            ok = (c[pos + length, e] - c[pos, e]) == 0
            for lst, v in zip(ref, (x[pos[ok][:, None] + np.arange(length), e], np.full(ok.sum(), e),
                                    np.full(ok.sum(), b), draw[ok])):
                lst.append(v)
    ref = [np.concatenate(r) for r in ref]
    n_cand = 5 * sum(len(d) for d in drawn)  # candidate windows x active channels
    assert 20 < len(ref[1]) < 0.9 * n_cand, (len(ref[1]), n_cand)  # some windows are clean, some are not
    for g, r in zip(got, ref):
        assert g.tobytes() == r.astype(g.dtype).tobytes()
    assert got[1].dtype == got[2].dtype == got[3].dtype == np.int64 and 2 not in got[1]


def _worker_recording_probe(pickled_jobs):
    """In a worker process: which unpickled jobs get the same recording object back."""
    import pickle

    from spikevae.detect import _worker_recording

    recs = [_worker_recording(pickle.loads(b)) for b in pickled_jobs]
    return [r is recs[0] for r in recs]


def test_worker_keeps_one_recording_per_job():
    """Each batch a process pool sends carries a fresh copy of the job; a worker reuses the first copy's
    recording (its reader already opened) for the same job only, and the main process never keeps one."""
    import pickle

    from spikevae.detect import _ChunkJob, _worker_recording
    from spikevae.execution import worker_pool

    rec, _ = _recording(n_s=1)
    noise = estimate_noise(rec)
    args = (DetectConfig(), 3.5 * noise, noise, np.ones(4, bool), 50, 15, 48, 15, 3, 0)
    job = _ChunkJob(rec, *args)
    other = _ChunkJob(rec, DetectConfig(), 3.5 * noise, noise * 2, np.ones(4, bool), 50, 15, 48, 15, 3, 0)
    assert _worker_recording(job) is rec and _worker_recording(pickle.loads(pickle.dumps(job))) is not rec
    with worker_pool(1) as ex:
        same = ex.submit(_worker_recording_probe, [pickle.dumps(j) for j in (job, job, other, job)]).result()
    assert same == [True, True, False, False]


def test_noise_snippets_do_not_grow_with_the_recording_and_ignore_the_chunking():
    """Past ``noise_snippets`` seconds, windows come from every k-th block only: about ``noise_snippets``
    per electrode whatever the length, the same for any chunk length."""
    from spikevae.detect import DetectConfig, detect_spikes
    from spikevae.preprocess import PreprocessConfig, preprocess
    from spikevae.synth import SimConfig, simulate_recording

    rec, _ = simulate_recording(SimConfig(n_electrodes=3, duration_s=24.0, units_min=1), seed=2)
    filt = preprocess(rec, PreprocessConfig())
    cfg = DetectConfig(noise_snippets=6)
    runs = [detect_spikes(filt, cfg, chunk_s=c, seed=0) for c in (1.0, 0.7, 2.5)]
    per_electrode = np.bincount(runs[0].noise_electrode, minlength=3)
    assert (per_electrode >= 4).all() and (per_electrode <= 6).all(), per_electrode  # not 24 (one per second)
    for r in runs[1:]:  # the same windows (the band-pass of other chunks differs at float rounding only)
        np.testing.assert_array_equal(r.noise_electrode, runs[0].noise_electrode)
        np.testing.assert_allclose(r.noise_snippets, runs[0].noise_snippets, rtol=1e-4, atol=1e-3)


def test_chunks_meeting_out_of_order_are_put_in_time_then_channel_order():
    """Alignment can move a peak across a chunk border; the concatenated chunks end up in the order
    one lexsort of every spike gives (fixed where the chunks meet, else sorted whole)."""
    from spikevae.detect import _order_across_borders

    rng = np.random.default_rng(0)
    n_checked = 0
    for _ in range(300):
        t_parts, c_parts = [], []
        for c in range(int(rng.integers(1, 8))):
            m = int(rng.integers(0, 30))  # a chunk of 100 samples, its peaks moved up to 3 samples back
            key = np.unique((100 * c + rng.integers(-3, 100, m)) * 4 + rng.integers(0, 4, m))  # (time, channel) order
            if key.size:
                t_parts.append(key // 4)
                c_parts.append(key % 4)
        if not t_parts:
            continue
        t, ch = np.concatenate(t_parts), np.concatenate(c_parts)
        if np.unique(t * 4 + ch).size != t.size:
            continue
        wf = np.arange(2 * t.size).reshape(-1, 2)
        cols = {"t": t.copy(), "ch": ch.copy(), "wf": wf.copy()}
        _order_across_borders(cols, np.cumsum([p.size for p in t_parts])[:-1])
        o = np.lexsort((ch, t))
        for k, v in (("t", t), ("ch", ch), ("wf", wf)):
            np.testing.assert_array_equal(cols[k], v[o])
        n_checked += int(not np.array_equal(o, np.arange(t.size)))
    assert n_checked > 20  # many cases had spikes out of order
