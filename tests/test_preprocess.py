"""Bandpass physics and chunk invariance; common median reference."""
import numpy as np
import pytest

from spikevae.errors import RecordingError
from spikevae.preprocess import BandpassRecording, CommonMedianRecording, PreprocessConfig, preprocess
from spikevae.recording import ArrayRecording

FS = 30000.0


def _noise(n=3 * 30000, c=3, seed=0):
    return np.random.default_rng(seed).normal(0, 10, (n, c)).astype(np.float32)


@pytest.mark.parametrize("chunk", [997, 4096, 30000, 45001])
def test_chunked_filtering_equals_whole_trace(chunk):
    x = _noise()
    # a large spike straddling a chunk boundary
    x[4090:4102, 1] -= 300
    rec = BandpassRecording(ArrayRecording(x, FS), 300, 6000)
    whole = rec.get_traces()
    parts = np.concatenate([rec.get_traces(s, s + chunk) for s in range(0, rec.n_samples, chunk)])
    assert parts.shape == whole.shape
    m = rec.margin
    err = np.abs(parts - whole)[m:-m].max()
    assert err < 1e-3 * whole.std()


def test_passband_gain_and_stopband_attenuation():
    t = np.arange(int(FS)) / FS
    for f, lo, hi in ((1000.0, 0.97, 1.03), (50.0, 0.0, 0.01), (12000.0, 0.0, 0.05)):
        x = np.sin(2 * np.pi * f * t)[:, None].astype(np.float32)
        y = BandpassRecording(ArrayRecording(x, FS), 300, 6000).get_traces()
        gain = y[3000:-3000].std() / x[3000:-3000].std()
        assert lo <= gain <= hi, (f, gain)


def test_bands_presets():
    assert PreprocessConfig(band="card").band_hz() == (250.0, 750.0)
    assert PreprocessConfig(band="blackrock").band_hz() == (250.0, 7500.0)
    assert PreprocessConfig(band="custom", freq_min=400, freq_max=5000).band_hz() == (400, 5000)


def test_margin_is_five_periods_of_low_cutoff():
    rec = BandpassRecording(ArrayRecording(_noise(), FS), 250, 7500)
    assert rec.margin == int(np.ceil(5 * FS / 250))


def test_common_median_reference_removes_shared_signal():
    x = _noise(c=8)
    shared = 50 * np.sin(np.arange(x.shape[0]) / 30.0).astype(np.float32)
    rec = CommonMedianRecording(ArrayRecording(x + shared[:, None], FS))
    y = rec.get_traces()
    assert np.abs(np.corrcoef(y[:, 0], shared)[0, 1]) < 0.1
    assert np.allclose(rec.get_traces(100, 200, [2, 5]), y[100:200, [2, 5]])


def test_preprocess_chain_and_nan_error():
    x = _noise()
    x[5000, 2] = np.nan
    rec = preprocess(ArrayRecording(x, FS, source="bad.dat"), PreprocessConfig(cmr=True))
    with pytest.raises(RecordingError, match=r"bad.dat: channel 2 has NaN at sample 5000 \(0.1667 s\)"):
        rec.get_traces(0, 10000)


# ---- the FFT bandpass equals the sosfiltfilt reference ------------------------------------------
@pytest.mark.parametrize("band", [(300.0, 6000.0), (250.0, 7500.0), (300.0, 20000.0)])
def test_fft_bandpass_equals_sosfiltfilt_reference(band):
    """Same traces to float tolerance, at the file ends too, with a large DC offset and slow LFP-like swings
    (the third band is a high-pass: its high cutoff is above Nyquist). Float tolerance: float32 FFTs
    round relative to the largest component of the signal, here the 400 µV swing (4e-7 of it is
    1.7e-4 µV, about 5 ulps of a float32 at 400)."""
    x = _noise(n=2 * 30000 + 123, c=4, seed=3)
    t = np.arange(x.shape[0]) / FS
    x += (3000.0 + 400 * np.sin(2 * np.pi * 7 * t))[:, None].astype(np.float32)
    x[30000 - 5:30000 + 7, 2] -= 400  # a spike on a chunk boundary
    parent = ArrayRecording(x, FS)
    fast, ref = (BandpassRecording(parent, *band, engine=e) for e in ("fft", "sos"))
    scale = ref.get_traces().std()
    tol = 1e-5 * scale + 4e-7 * np.abs(x - x.mean(axis=0)).max()
    for start, stop in ((0, None), (0, 30000), (30000, 60000), (59000, None), (12345, 12346)):
        a, b = fast.get_traces(start, stop), ref.get_traces(start, stop)
        assert a.dtype == np.float32 and a.flags.c_contiguous and a.shape == b.shape
        assert np.abs(a - b).max() < tol, (band, start, stop, np.abs(a - b).max())


def test_fft_bandpass_channel_subset_and_odd_lengths():
    x = _noise(n=10007, c=5, seed=4)
    rec = BandpassRecording(ArrayRecording(x, FS), 300, 6000)
    ref = BandpassRecording(ArrayRecording(x, FS), 300, 6000, engine="sos")
    for length in (1, 17, 999, 4001):  # FFT lengths with different factors, each with its own gain cache entry
        a = rec.get_traces(2000, 2000 + length, [4, 1])
        b = ref.get_traces(2000, 2000 + length, [4, 1])
        assert np.allclose(a, b, atol=1e-5 * b.std() + 1e-6)


def test_unknown_bandpass_engine_is_an_error():
    from spikevae.errors import SpikevaeConfigError

    with pytest.raises(SpikevaeConfigError, match="bandpass engine 'iir' is unknown; use one of fft, sos"):
        BandpassRecording(ArrayRecording(_noise(), FS), 300, 6000, engine="iir")


# ---- the band-pass on a GPU (torch FFTs) ------------------------------------------------------
def _offset_traces(seed=5):
    x = _noise(n=2 * 30000 + 77, c=6, seed=seed)
    t = np.arange(x.shape[0]) / FS
    x += (3000.0 + 400 * np.sin(2 * np.pi * 7 * t))[:, None].astype(np.float32)
    x[30000 - 5:30000 + 7, 3] -= 400
    return x


def test_torch_fft_filter_equals_scipy_fft_filter():
    """The GPU path's arithmetic (:func:`filtfilt_fft_torch`), run by torch on the CPU, equals the
    scipy FFT filter to float32 rounding, for FFT lengths of different factors."""
    import torch

    from spikevae.preprocess import filtfilt_fft, filtfilt_fft_torch, zero_phase_gain
    from scipy import signal

    x = _offset_traces()
    sos = signal.butter(3, [300, 6000], btype="bandpass", fs=FS, output="sos")
    for n in (x.shape[0], 30000 + 1234, 4001):
        n_fft = n + (n % 2)
        gain = zero_phase_gain(sos, n_fft, FS)
        a = filtfilt_fft(x[:n], gain, n_fft)
        b = filtfilt_fft_torch(x[:n], gain, n_fft, torch.device("cpu"))
        assert b.dtype == np.float32 and b.shape == a.shape and b.flags.c_contiguous
        assert np.abs(a - b).max() < 1e-5 * a.std() + 4e-7 * np.abs(x - x.mean(axis=0)).max(), n


def test_bandpass_device_errors_and_default():
    from spikevae.errors import SpikevaeConfigError, SpikevaeError
    import torch

    parent = ArrayRecording(_noise(), FS)
    assert BandpassRecording(parent, 300, 6000).device == "cpu"
    assert preprocess(parent, PreprocessConfig()).device == "cpu"
    with pytest.raises(SpikevaeConfigError, match="preprocess.device = 'gpu0': .*not a torch device.*"
                                                  "--set preprocess.device=cpu"):
        BandpassRecording(parent, 300, 6000, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(SpikevaeError, match="torch sees no CUDA GPU"):
            BandpassRecording(parent, 300, 6000, device="cuda")
        with pytest.raises(SpikevaeConfigError, match="preprocess.device = 'cuda'"):
            preprocess(parent, PreprocessConfig(device="cuda"))
    else:
        with pytest.raises(SpikevaeConfigError, match="runs on the CPU only"):
            BandpassRecording(parent, 300, 6000, engine="sos", device="cuda")


@pytest.mark.gpu
def test_cuda_bandpass_equals_cpu_and_pickles():
    """On a GPU: the same traces as the CPU to float32 rounding, chunked and whole, and a pickled copy
    (what a spawned detection worker gets) filters on the GPU again."""
    import pickle

    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = _offset_traces()
    parent = ArrayRecording(x, FS)
    cpu = BandpassRecording(parent, 300, 6000)
    gpu = BandpassRecording(parent, 300, 6000, device="cuda")
    assert gpu.device.startswith("cuda")
    tol = 1e-5 * cpu.get_traces().std() + 4e-7 * np.abs(x - x.mean(axis=0)).max()
    for start, stop in ((0, None), (0, 30000), (30000, 60000), (12345, 12346)):
        a, b = cpu.get_traces(start, stop), gpu.get_traces(start, stop)
        assert b.dtype == np.float32 and b.shape == a.shape
        assert np.abs(a - b).max() < tol, (start, stop, np.abs(a - b).max())
    again = pickle.loads(pickle.dumps(gpu))
    assert again._device_gains == {} and again.device == gpu.device
    assert np.abs(again.get_traces(0, 30000) - cpu.get_traces(0, 30000)).max() < tol
