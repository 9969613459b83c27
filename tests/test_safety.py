"""Bad input and interruption: one clear line and the right exit code (issue 12)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spikevae.cli import main
from spikevae.errors import SpikevaeConfigError
from spikevae.io.binary import size_hint
from spikevae.params import load_config

ROOT = Path(__file__).resolve().parent.parent


def _exit(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


def test_swapped_band_is_refused_by_config_validate(capsys):
    code, err = _exit(["config", "validate", "--set", "preprocess.freq_min=6000",
                       "--set", "preprocess.freq_max=300"], capsys)
    assert code == 1
    assert "freq_min = 6000 Hz is not below preprocess.freq_max = 300 Hz" in err
    assert len(err.strip().splitlines()) == 1


def test_fractional_integer_is_refused_not_truncated():
    with pytest.raises(SpikevaeConfigError, match=r"features.n_components=2.5: expected a whole number"):
        load_config(overrides=["features.n_components=2.5"])
    assert load_config(overrides=["features.n_components=4.0"]).features.n_components == 4


def test_raw_size_hint_lists_every_count_that_fits():
    # 16 channels of int16 for 1000 samples: 16, 32, 64 ... fit too; 16 must not be cut off
    hint = size_hint(16 * 2 * 1000, n_channels=96, dtype=np.dtype("int16"))
    assert "16" in hint.split("fits")[1].split("channels")[0]


@pytest.mark.slow
def test_ctrl_c_exits_130_with_a_resume_hint(tmp_path):
    sim = tmp_path / "sim"
    main_args = [sys.executable, "-m", "spikevae.cli"]
    subprocess.run(main_args + ["simulate", str(sim), "--duration", "60", "--electrodes", "16", "--seed", "1"],
                   check=True, capture_output=True)
    rec = next(p for p in sim.iterdir() if p.suffix in (".ns5", ".h5"))
    proc = subprocess.Popen(main_args + ["run", str(rec), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # Interrupt once clustering has started (a fixed delay raced a run that now takes a few seconds).
    for line in proc.stderr:
        if "stage cluster_pca" in line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted; rerun the same command to resume")


def _small_h5(path: Path) -> Path:
    from spikevae.io.hdf5 import write_hdf5
    from spikevae.recording import ArrayRecording

    rng = np.random.default_rng(0)
    write_hdf5(path, ArrayRecording(rng.normal(0, 10, (30000, 4)).astype(np.float32), 30000.0), chunk_s=0.5)
    return path


def test_filter_refuses_to_overwrite_its_input(tmp_path, capsys):
    src = _small_h5(tmp_path / "x.h5")
    before = src.read_bytes()
    code, err = _exit(["filter", str(src), "-o", str(tmp_path / "." / "x.h5")], capsys)
    assert code == 1 and "the output would overwrite this input" in err
    assert src.read_bytes() == before


# ---- the run store checks itself --------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A sorted 8-electrode, 8 s simulation (the folder is copied by tests that damage it)."""
    from spikevae.pipeline import run_pipeline
    from spikevae.synth import simulate_recording

    d = tmp_path_factory.mktemp("safety")
    rec, _gt = _simulate(simulate_recording)
    run_pipeline(rec, load_config(), d / "out", report=False)
    return rec, d / "out"


def _simulate(simulate_recording):
    from spikevae.synth.config import SimConfig

    return simulate_recording(SimConfig(duration_s=8.0, n_electrodes=8, units_min=1), seed=3)


def test_damaged_store_is_set_aside_and_rebuilt(small_run, tmp_path, caplog):
    import shutil

    from spikevae.pipeline import run_pipeline

    rec, out = small_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    good = np.load(work / "sorting.npz")["unit"]
    store = work / "run.h5"
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])  # truncated, as by a crash
    (work / ".run.h5.abcd1234.tmp").write_bytes(b"partial")  # left by a kill -9 during a store write
    with caplog.at_level("WARNING"):
        run_pipeline(rec, load_config(), work, report=False)
    assert "is damaged" in caplog.text and "set aside as run.h5.damaged-1" in caplog.text
    assert (work / "run.h5.damaged-1").exists()
    assert not list(work.glob(".*.tmp"))
    np.testing.assert_array_equal(np.load(work / "sorting.npz")["unit"], good)


def test_reading_a_damaged_store_is_one_line(small_run, tmp_path, capsys):
    import shutil

    _rec, out = small_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    (work / "run.h5").write_bytes(b"\0garbage" * 100)
    code, err = _exit(["report", str(work)], capsys)
    assert code == 1 and "the run store is damaged" in err and "rerun `spikevae run`" in err
    assert len(err.strip().splitlines()) == 1


def test_failed_store_write_is_one_line_and_keeps_the_old_store(small_run, tmp_path):
    """A write that the file system refuses (here a file-size limit, like a full disk) ends in one line."""
    import shutil

    _rec, out = small_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    before = (work / "run.h5").read_bytes()
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) // 2}, {len(before) // 2}))\n"
        "from spikevae.cli import main\n"
        f"main(['cluster', {str(work)!r}, '--set', 'cluster.refine.n_rounds=1'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "could not write the run store" in lines[-1]
    assert "Traceback" not in proc.stderr
    assert (work / "run.h5").read_bytes() == before


# ---- workers die with their parent --------------------------------------------------------------
def _marked_pids(marker: str) -> list[int]:
    """Processes whose environment holds ``SPIKEVAE_TEST_MARK=marker``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if f"SPIKEVAE_TEST_MARK={marker}".encode() in (d / "environ").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    subprocess.run([sys.executable, "-m", "spikevae.cli", "simulate", str(d / "sim"), "--duration", "40",
                    "--electrodes", "16", "--seed", "2"], check=True, capture_output=True)
    return next(p for p in (d / "sim").iterdir() if p.suffix in (".ns5", ".h5"))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_a_killed_run(long_recording, tmp_path, sig):
    marker = f"{os.getpid()}-{int(sig)}"
    proc = subprocess.Popen([sys.executable, "-m", "spikevae.cli", "run", str(long_recording), "-o",
                             str(tmp_path / "out"), "--no-report", "--set", "run.n_jobs=2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "SPIKEVAE_TEST_MARK": marker})
    deadline = time.time() + 90
    while time.time() < deadline and len(_children(proc.pid)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it started its workers"
    assert len(_children(proc.pid)) >= 2
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and _marked_pids(marker):
        time.sleep(0.1)
    assert _marked_pids(marker) == []


# ---- inputs that should not be accepted -------------------------------------------------------------
def test_nan_is_reported_at_its_own_sample_not_in_the_filter_margin():
    from spikevae.errors import RecordingError
    from spikevae.preprocess import preprocess
    from spikevae.recording import ArrayRecording

    x = np.random.default_rng(0).normal(0, 10, (30000, 3)).astype(np.float32)
    x[500, 1] = np.nan
    filtered = preprocess(ArrayRecording(x, 30000.0), load_config().preprocess)
    with pytest.raises(RecordingError, match=r"channel 1 has NaN at sample 500 \(0.0167 s\)"):
        filtered.get_traces(0, 10000)


def test_negative_gain_is_refused(tmp_path):
    from spikevae.errors import RecordingError
    from spikevae.io.binary import BinaryRecording

    p = tmp_path / "r.dat"
    np.random.default_rng(0).normal(0, 50, (3000, 4)).astype(np.int16).tofile(p)
    with pytest.raises(RecordingError, match=r"gain_uv = -0.195 .*must be positive"):
        BinaryRecording(p, 30000, 4, gain_uv=-0.195)


def test_float32_read_as_int16_is_refused(tmp_path, capsys):
    p = tmp_path / "f.dat"
    np.random.default_rng(0).normal(0, 20, (30000, 4)).astype(np.float32).tofile(p)
    code, err = _exit(["info", str(p), "--fs", "30000", "--n-channels", "8", "--dtype", "int16"], capsys)
    assert code == 1 and "near the limits of int16" in err and "float32?" in err
    # the same file read as what it is opens fine
    from spikevae.io.binary import BinaryRecording

    assert BinaryRecording(p, 30000, 4, dtype="float32").n_samples == 30000


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only message")
def test_vae_device_setting_is_not_silently_ignored(small_run, tmp_path):
    from spikevae.errors import SpikevaeError
    from spikevae.pipeline import run_pipeline

    rec, _ = small_run
    cfg = load_config(overrides=["features.method=vae", "features.vae.device=cuda"])
    with pytest.raises(SpikevaeError, match=r"device 'cuda': torch sees no CUDA GPU"):
        run_pipeline(rec, cfg, tmp_path / "out", report=False)


def test_ground_truth_of_another_recording_stops_the_run_before_sorting(small_run, tmp_path):
    from spikevae.errors import SpikevaeError
    from spikevae.objects import Sorting
    from spikevae.pipeline import run_pipeline

    rec, _ = small_run
    late = Sorting(np.array([100, rec.n_samples + 3000]), np.zeros(2), np.zeros(2), rec.fs)
    with pytest.raises(SpikevaeError, match=r"1 of 2 ground-truth spikes lie past the recording's end"):
        run_pipeline(rec, load_config(), tmp_path / "out", gt=late, report=False)
    assert not (tmp_path / "out" / "run.h5").exists()  # stopped before detection
    other_fs = Sorting(np.array([100]), np.zeros(1), np.zeros(1), 24000.0)
    with pytest.raises(SpikevaeError, match=r"ground truth at 24000 Hz but the recording at 30000 Hz"):
        run_pipeline(rec, load_config(), tmp_path / "out", gt=other_fs, report=False)


def test_a_ground_truth_file_is_checked_first_and_read_again_for_the_scores(small_run, tmp_path, monkeypatch):
    """A --gt file is read before the sort (a wrong one stops the run at once), not held through it (24 bytes a
    spike over hours), and read again, a block at a time, for the scores, which equal those of the same ground
    truth in memory."""
    import json

    import spikevae.compare as compare
    from spikevae.pipeline import run_pipeline

    rec, out = small_run
    gt = _simulate(__import__("spikevae.synth", fromlist=["simulate_recording"]).simulate_recording)[1]
    gt.save_npz(tmp_path / "gt.npz")
    reads, opened = [], []
    real = compare.open_ground_truth
    monkeypatch.setattr(compare, "open_ground_truth",
                        lambda *a, **k: reads.append(a[0]) or opened.append(real(*a, **k)) or opened[-1])
    from_file = run_pipeline(rec, load_config(), tmp_path / "file", gt=tmp_path / "gt.npz", report=False)
    assert reads == [tmp_path / "gt.npz"] * 2  # checked at the start, scored at the end
    assert all(isinstance(g, compare.SortingFile) for g in opened)  # read a block at a time, never held whole
    in_memory = run_pipeline(rec, load_config(), tmp_path / "mem", gt=gt, report=False)
    assert from_file.scores == in_memory.scores
    assert json.loads((tmp_path / "file" / "scores.json").read_text()) == from_file.scores
    assert from_file.scores["pca"]["mean_accuracy"] > 0.3


def test_duplicate_channel_ids_are_refused():
    from spikevae.errors import RecordingError
    from spikevae.io import validate_recording
    from spikevae.recording import ArrayRecording

    rec = ArrayRecording(np.zeros((30000, 16), np.float32), 30000.0, channel_ids=["1"] * 16)
    with pytest.raises(RecordingError, match=r"channel id\(s\) 1 name more than one channel \(16 channels"):
        validate_recording(rec)


# ---- a recording cut short ----------------------------------------------------------------------------
SAMPLE = ROOT / "sample_data" / "sample.ns5"


@pytest.fixture
def half_ns5(tmp_path) -> Path:
    p = tmp_path / "half.ns5"
    data = SAMPLE.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def test_truncated_nsx_says_how_much_is_readable(half_ns5, capsys):
    code, err = _exit(["info", str(half_ns5)], capsys)
    assert code == 1
    assert "the file is cut short: its header promises 8.00 s (240000 samples) but only 4.00 s" in err
    assert "--set input.allow_truncated=true" in err and len(err.strip().splitlines()) == 1


def test_truncated_nsx_sorts_its_readable_part(half_ns5):
    from spikevae.io import open_recording

    full = open_recording(SAMPLE)
    part = open_recording(half_ns5, load_config(overrides=["input.allow_truncated=true"]).input)
    assert 0 < part.n_samples < full.n_samples and part.n_samples == 119978  # (7681379 // 2 - 1379-byte header) // 32 bytes a sample
    np.testing.assert_array_equal(part.get_traces(part.n_samples - 3000, part.n_samples),
                                  full.get_traces(part.n_samples - 3000, part.n_samples))
    np.testing.assert_array_equal(part.channel_ids, full.channel_ids)


def test_failed_filter_leaves_no_partial_file(tmp_path, capsys):
    import h5py

    src = tmp_path / "nan.h5"
    x = np.random.default_rng(0).normal(0, 10, (90000, 2)).astype(np.float32)
    x[70000, 1] = np.nan
    with h5py.File(src, "w") as f:
        f.create_dataset("traces", data=x).attrs.update({"fs": 30000.0, "gain_uv": 1.0, "offset_uv": 0.0})
    code, err = _exit(["filter", str(src), "-o", str(tmp_path / "f.h5")], capsys)
    assert code == 1 and "has NaN at sample 70000" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.h5"]


# ---- the chunking does not change the result --------------------------------------------------------
def test_chunk_length_does_not_change_the_noise_snippets_or_the_sorting(small_run, tmp_path):
    from spikevae.detect import detect_spikes
    from spikevae.pipeline import run_pipeline
    from spikevae.preprocess import preprocess

    rec, out = small_run
    cfg = load_config()
    filtered = preprocess(rec, cfg.preprocess)
    a = detect_spikes(filtered, cfg.detect, chunk_s=1.0)
    b = detect_spikes(filtered, cfg.detect, chunk_s=0.37)
    np.testing.assert_array_equal(a.sample_index, b.sample_index)
    np.testing.assert_array_equal(a.noise_electrode, b.noise_electrode)
    np.testing.assert_allclose(a.noise_snippets, b.noise_snippets, atol=1e-3)
    run_pipeline(rec, load_config(overrides=["run.chunk_s=0.37"]), tmp_path / "out", report=False)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "sorting.npz")["unit"],
                                  np.load(out / "sorting.npz")["unit"])


# ---- outputs of one run only ----------------------------------------------------------------------
def test_rerun_removes_the_outputs_it_does_not_rewrite(small_run, tmp_path):
    import json
    import shutil

    from spikevae.pipeline import run_pipeline

    rec, out = small_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    gt = _simulate(__import__("spikevae.synth", fromlist=["simulate_recording"]).simulate_recording)[1]
    run_pipeline(rec, load_config(), work, gt=gt, report=True)
    assert {"report.html", "metrics.json", "scores.json", "manifest.json"} <= {p.name for p in work.iterdir()}
    run_pipeline(rec, load_config(overrides=["detect.threshold=4.5"]), work, report=False)
    names = {p.name for p in work.iterdir()}
    assert not ({"report.html", "metrics.json", "scores.json"} & names)  # not rewritten, so removed
    doc = json.loads((work / "manifest.json").read_text())
    store_files = ("run.h5", "waveforms.h5", "features_pca.h5", "manifest.json")  # the run store, not outputs
    assert set(doc["files"]) == {n for n in names if n not in store_files and not n.startswith(".")}
    assert json.loads((work / "summary.json").read_text())["run_id"] == doc["run_id"]


def test_a_sorting_from_another_run_is_refused(small_run, tmp_path, capsys):
    import shutil

    from spikevae.pipeline import run_pipeline

    rec, out = small_run
    other = tmp_path / "other"
    run_pipeline(rec, load_config(overrides=["detect.threshold=4.5"]), other, report=False)
    work = tmp_path / "out"
    shutil.copytree(out, work)
    shutil.copy(other / "sorting.npz", work / "sorting.npz")
    code, err = _exit(["compare", str(work), "--gt", str(work / "sorting_pca.npz")], capsys)
    assert code == 1 and "sorting.npz: this file is not the one the run in" in err
    assert "its content changed since" in err


def test_a_recording_named_like_a_run_output_is_never_overwritten(tmp_path, capsys):
    d = tmp_path / "d"
    src = _small_h5(d / "run.h5") if d.mkdir() is None else None
    before = src.read_bytes()
    for cmd in (["run", str(src), "-o", str(d)], ["detect", str(src), "-o", str(d)]):
        code, err = _exit(cmd, capsys)
        assert code == 1 and "the output would overwrite this input" in err
    assert src.read_bytes() == before


def test_failing_commands_create_no_output_folder(tmp_path, capsys):
    for cmd in (["run", str(tmp_path / "missing.ns5"), "-o", str(tmp_path / "o1")],
                ["run", str(SAMPLE), "-o", str(tmp_path / "o2"), "--gt", str(tmp_path / "nogt.npz")],
                ["filter", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "o3" / "f.h5")]):
        code, _ = _exit(cmd, capsys)
        assert code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_random_bytes_as_npz_get_no_unsafe_advice(tmp_path):
    from spikevae.errors import SpikevaeError
    from spikevae.objects import Sorting

    p = tmp_path / "gt.npz"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(SpikevaeError, match=r"not an .npz file \(an .npz is a zip archive") as exc:
        Sorting.load_npz(p)
    assert "allow_pickle" not in str(exc.value)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_at_any_point_then_rerun_gives_the_same_bytes(long_recording, tmp_path):
    """kill -9 at three points spread over a whole run (detection, clustering, the report), then
    resume: no worker is left behind, and the resumed run's sorting is byte-identical to an
    uninterrupted one."""
    cmd = [sys.executable, "-m", "spikevae.cli", "run", str(long_recording), "--set", "run.n_jobs=2"]
    t0 = time.time()
    subprocess.run(cmd + ["-o", str(tmp_path / "ref")], check=True, capture_output=True)
    wall = time.time() - t0
    reference = (tmp_path / "ref" / "sorting.npz").read_bytes()
    for k, frac in enumerate((0.2, 0.5, 0.85)):
        out = tmp_path / f"k{k}"
        marker = f"{os.getpid()}-kill-{k}"
        proc = subprocess.Popen(cmd + ["-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "SPIKEVAE_TEST_MARK": marker})
        time.sleep(frac * wall)
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.time() + 10
        while time.time() < deadline and _marked_pids(marker):
            time.sleep(0.1)
        assert _marked_pids(marker) == [], f"workers left after a kill at {frac:.0%} of the run"
        rerun = subprocess.run(cmd + ["-o", str(out)], capture_output=True, text=True)
        assert rerun.returncode == 0, f"rerun after a kill at {frac:.0%}: {rerun.stderr[-2000:]}"
        assert (out / "sorting.npz").read_bytes() == reference, f"kill at {frac:.0%}"
        assert not list(out.glob(".*.tmp"))


def test_files_spikevae_did_not_write_are_never_overwritten(tmp_path, capsys):
    src = _small_h5(tmp_path / "x.h5")
    mine = tmp_path / "notes.h5"
    mine.write_bytes(b"a person's own file")
    code, err = _exit(["filter", str(src), "-o", str(mine)], capsys)
    assert code == 1 and "was not written by spikevae" in err and str(mine) in err
    assert mine.read_bytes() == b"a person's own file"
    # a file spikevae wrote may be replaced by a new filter run
    for _ in range(2):
        main(["filter", str(src), "-o", str(tmp_path / "f.h5")])  # returns: no SystemExit on success
        assert (tmp_path / "f.h5").is_file()
    # a folder of someone's own results: the run stops before touching them
    d = tmp_path / "results"
    d.mkdir()
    (d / "units.csv").write_text("my hand-sorted units\n")
    code, err = _exit(["run", str(src), "-o", str(d)], capsys)
    assert code == 1 and "units.csv, not written by spikevae" in err
    assert (d / "units.csv").read_text() == "my hand-sorted units\n" and sorted(p.name for p in d.iterdir()) == ["units.csv"]
