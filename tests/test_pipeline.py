"""End to end: the CLI sorts a small simulated recording, resumes, scores, and reports errors in one line."""
import json

import numpy as np
import pytest

from spikevae.cli import main
from spikevae.objects import Sorting
from spikevae.synth import SimConfig, simulate_recording, write_ground_truth
from conftest import run_cli

FS = 30000.0


@pytest.fixture(scope="module")
def raw_recording(tmp_path_factory):
    """6 electrodes x 20 s written as int16 raw binary (0.25 µV/bit), with its ground truth."""
    d = tmp_path_factory.mktemp("rec")
    rec, gt = simulate_recording(SimConfig(n_electrodes=6, duration_s=20.0, units_min=1), seed=3)
    x = np.round(rec.get_traces() / 0.25).astype(np.int16)
    x.tofile(d / "rec.dat")
    write_ground_truth(d / "gt.npz", gt, rec.unit_info)
    return d


def _run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err




RAW = ["--format", "raw", "--fs", "30000", "--n-channels", "6", "--dtype", "int16", "--gain-uv", "0.25"]


def test_run_sorts_scores_and_resumes(raw_recording, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", str(raw_recording / "rec.dat"), *RAW, "-o", str(out), "--gt", str(raw_recording / "gt.npz"),
            "--no-report"]
    code, text, err = run_cli(args, capsys)
    assert code == 0, err
    s = np.load(out / "sorting.npz")
    assert s["sample_index"].dtype == np.int64 and float(s["fs"]) == FS
    assert set(s.files) >= {"sample_index", "electrode", "unit", "fs"}
    assert (out / "units.csv").read_text().startswith("unit,electrode")
    scores = json.loads((out / "scores.json").read_text())["pca"]
    assert scores["n_gt_units"] >= 6
    assert scores["mean_accuracy"] >= 0.4, scores["mean_accuracy"]  # measured 0.47 (3.5 σ, mixture + refinement)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_stages"] == []
    # the rerun reuses every stage; a changed cluster setting recomputes only clustering
    code, text, _ = run_cli(args, capsys)
    assert "reused from the run store: detect, features_pca, cluster_pca" in text
    code, text, _ = run_cli(args + ["--set", "cluster.seed=1"], capsys)
    assert "reused from the run store: detect, features_pca\n" in text
    # the resolved configuration reproduces the run
    code, _, err = run_cli(["config", "validate", "-c", str(out / "config.toml")], capsys)
    assert code == 0, err


def test_compare_command(raw_recording, tmp_path, capsys):
    gt = Sorting.load_npz(raw_recording / "gt.npz")
    # a perfect sorting, shifted by 5 samples: scored 1.0 only with the offset
    s = Sorting(gt.sample_index + 5, gt.electrode, gt.unit + 100, gt.fs)
    s.save_npz(tmp_path / "s.npz")
    code, text, _ = run_cli(["compare", str(tmp_path / "s.npz"), "--gt", str(raw_recording / "gt.npz"),
                          "--offset", "auto", "--json", str(tmp_path / "c.json")], capsys)
    assert code == 0
    assert "estimated ground-truth offset: 5 samples" in text
    r = json.loads((tmp_path / "c.json").read_text())
    assert r["mean_accuracy"] == 1.0 and r["n_well_detected"] == r["n_gt_units"]


@pytest.mark.parametrize("case", ["missing", "unknown_format", "raw_size", "nan", "too_short", "unwritable",
                                  "unknown_key", "low_rate"])
def test_errors_are_one_line(case, tmp_path, capsys):
    f = tmp_path / "x.dat"
    np.zeros((30000, 4), np.int16).tofile(f)
    args = ["run", str(f), *RAW[:-2], "-o", str(tmp_path / "o")]
    args[args.index("--n-channels") + 1] = "4"
    expect = {
        "missing": (["run", str(tmp_path / "nope.ns6")], "nope.ns6: file not found"),
        "unknown_format": (["run", str(f), "--format", "wav"], "wav"),
        "raw_size": (args[:args.index("--n-channels") + 1] + ["7"] + args[args.index("--n-channels") + 2:], "7"),
        "too_short": None,
        "nan": None,
        "unwritable": None,
        "unknown_key": (args + ["--set", "detect.thresold=3"], "did you mean detect.threshold"),
    }
    if case == "too_short":
        np.zeros((100, 4), np.int16).tofile(f)
        expect[case] = (args, "shorter than")
    if case == "nan":
        x = np.random.default_rng(0).normal(size=(30000, 4)).astype(np.float32)
        x[777, 3] = np.nan
        x.tofile(f)
        a = list(args)
        a[a.index("--dtype") + 1] = "float32"
        expect[case] = (a, "channel 3 has NaN")
    if case == "unwritable":
        (tmp_path / "blocker").write_text("")
        a = list(args)
        a[a.index("-o") + 1] = str(tmp_path / "blocker" / "out")
        expect[case] = (a, "not writable")
    if case == "low_rate":
        a = list(args)
        a[a.index("--fs") + 1] = "1000"
        expect[case] = (a, "spike sorting needs about 10 kHz")
    argv, fragment = expect[case]
    code, _, err = _run(argv, capsys)
    assert code == 1
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


def test_flat_electrode_is_skipped_others_sort(tmp_path, capsys):
    rec, gt = simulate_recording(SimConfig(n_electrodes=3, duration_s=20.0, units_min=1, snr_min=8), seed=5)
    x = np.round(rec.get_traces() / 0.25).astype(np.int16)
    x[:, 1] = 0
    x.tofile(tmp_path / "r.dat")
    argv = ["run", str(tmp_path / "r.dat"), *RAW, "-o", str(tmp_path / "o"), "--no-report"]
    argv[argv.index("--n-channels") + 1] = "3"
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    s = np.load(tmp_path / "o" / "sorting.npz")
    assert not np.any(s["electrode"] == 1)
    assert {0, 2} <= set(np.unique(s["electrode"][s["unit"] >= 0]).tolist())


def test_sample_data_sorts_above_floor(tmp_path, capsys):
    """The default job: `spikevae run` on sample_data (8 s; measured 0.509 mean accuracy, 9/24 well detected)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "sample_data"
    code, _, err = run_cli(["-q", "run", str(root / "sample.ns5"), "--gt", str(root / "sample_gt.npz"),
                         "-o", str(tmp_path), "--no-report"], capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "scores.json").read_text())["pca"]
    assert s["n_gt_units"] == 24
    assert s["mean_accuracy"] >= 0.48, s["mean_accuracy"]
    assert s["n_well_detected"] >= 8


def test_stage_commands_and_run_share_the_store(raw_recording, tmp_path, capsys, monkeypatch):
    """detect / features / cluster leave results that `run` with the same configuration reuses; like `run`,
    they stream waveforms and features into their files as they are made (never held whole and written after)."""
    import spikevae.waveform_store as ws

    def held_whole(*a, **k):
        raise AssertionError("waveforms or features were held in memory and written whole")

    out = str(tmp_path / "o")
    rec = str(raw_recording / "rec.dat")
    with monkeypatch.context() as m:
        m.setattr(ws, "write_waveforms", held_whole)
        for argv in (["detect", rec, *RAW, "-o", out], ["features", out], ["cluster", out]):
            code, _, err = run_cli(["-q", *argv], capsys)
            assert code == 0, err
    assert not (tmp_path / "o" / ".spill.tmp").exists()
    code, text, err = run_cli(["run", rec, *RAW, "-o", out, "--no-report"], capsys)
    assert code == 0, err
    assert "reused from the run store: detect, features_pca, cluster_pca" in text


def test_a_loop_trims_the_heap_only_once_it_holds_enough_free_memory(monkeypatch):
    """In-loop trims (``release_memory(min_free)``) skip while the heap's free memory is below ``min_free``
    (each trim hands back pages the next iteration faults in again); a plain call always trims."""
    import spikevae.execution.memory as mem

    if mem.heap_free_bytes() is None:
        pytest.skip("the allocator cannot say how much of its heap is free (glibc >= 2.33 only)")
    calls = []
    monkeypatch.setattr(mem, "_malloc_trim", lambda: calls.append)
    monkeypatch.setattr(mem, "heap_free_bytes", lambda: 10 << 20)
    assert mem.release_memory(mem.LOOP_TRIM_BYTES) and calls == []
    assert mem.release_memory(8 << 20) and calls == [0]
    assert mem.release_memory() and calls == [0, 0]


def test_large_arrays_go_back_to_the_os_when_freed_outside_detection():
    """Under ``return_large_arrays`` a freed 8 MB array leaves the process at once; with the heap kept
    (detection, and a feature method's fit under ``heap_kept``) it stays resident for reuse, and after
    ``heap_kept`` the previous mode is back. Each mode runs in a fresh interpreter (glibc only)."""
    import subprocess
    import sys
    import textwrap

    from spikevae.execution.memory import return_large_arrays

    if not return_large_arrays(False):
        pytest.skip("not glibc: the allocator's threshold cannot be set")
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from spikevae.execution.memory import heap_kept, return_large_arrays, release_memory

        def anon_kb():
            return int(next(l for l in open("/proc/self/status") if l.startswith("RssAnon")).split()[1])

        def freed_kb():
            release_memory()
            a = np.ones(1 << 20)            # 8 MB, touched
            pin = np.ones(1 << 14)          # 128 kB from the heap, after it: the heap's top cannot shrink past it
            before = anon_kb()
            del a
            return before - anon_kb()

        assert return_large_arrays(sys.argv[1] != "off")
        if sys.argv[1] == "kept":  # off inside (a network's training), on again after
            with heap_kept():
                print(freed_kb())
        print(freed_kb())
    """)
    freed = {mode: [int(v) for v in subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                                                   text=True, check=True).stdout.split()]
             for mode in ("on", "off", "kept")}
    assert freed["on"][0] > 7000  # kB: the array's pages are gone
    assert freed["off"][0] < 1000  # kept in the heap
    assert freed["kept"][0] < 1000 and freed["kept"][1] > 7000
