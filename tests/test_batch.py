"""spikevae batch: many recordings, serial / plain processes / Dask, with the same bytes as spikevae run."""
from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from spikevae.batch import SUMMARY_CSV, TaskOptions, collect_items, run_batch
from spikevae.batch.inputs import gt_from_pattern, unique_names
from spikevae.cli import main
from spikevae.errors import SpikevaeConfigError, SpikevaeError
from spikevae.params import load_config

#: fast settings for every run of this file (results do not depend on n_jobs)
FAST = ["run.n_jobs=1", "cluster.n_jobs=1"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Three simulated sessions (4 electrodes x 4 s): sess<k>/recording.h5 + ground_truth.npz."""
    from spikevae.synth import SimConfig, simulate_recording, write_ground_truth
    from spikevae.synth.export import write_recording

    root = tmp_path_factory.mktemp("sessions")
    for seed in (1, 2, 3):
        rec, gt = simulate_recording(SimConfig(n_electrodes=4, duration_s=4.0, units_min=1), seed=seed)
        write_recording(root / f"sess{seed}", rec, fmt="hdf5")
        write_ground_truth(root / f"sess{seed}" / "ground_truth.npz", gt, rec.unit_info)
    return root


@pytest.fixture(scope="module")
def serial(sessions, tmp_path_factory):
    """The three sessions sorted by the serial engine, the reference of the other engines."""
    out = tmp_path_factory.mktemp("serial")
    result = run_batch([str(sessions / "sess*" / "recording.h5")], load_config(None, FAST), out,
                       gt_pattern="{dir}/ground_truth.npz", engine="serial", options=TaskOptions(report=False))
    assert [r["status"] for r in result.rows] == ["ok"] * 3
    return result


@pytest.fixture(scope="module")
def dask_cluster():
    """A 2-worker LocalCluster of processes, as a user's cluster would be (addressed by --scheduler)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster


def _npz(row_or_dir) -> bytes:
    d = row_or_dir["output"] if isinstance(row_or_dir, dict) else row_or_dir
    return (Path(d) / "sorting.npz").read_bytes()


def _kill_first_attempt(item) -> None:
    """Task hook: the first attempt at sess2 kills its own worker process (marker file: once)."""
    marker = Path(item.output).parent / f"killed-{Path(item.output).name}"
    with open(Path(item.output).parent / "attempts.log", "a") as fh:
        fh.write(f"{Path(item.output).name}\n")
    if "sess2" in item.output and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


def test_cli_batch_matches_run_and_skips_cached(sessions, serial, tmp_path):
    rec = sessions / "sess1" / "recording.h5"
    assert _run_cli(["run", str(rec), "-o", str(tmp_path / "ref"), "--no-report", *_sets()]) == 0
    out = tmp_path / "batch"
    args = ["batch", str(sessions / "sess*" / "recording.h5"), "-o", str(out), "--no-report",
            "--gt-pattern", "{dir}/ground_truth.npz", *_sets()]
    assert _run_cli(args) == 0
    rows = list(csv.DictReader(open(out / SUMMARY_CSV)))
    assert [r["output"] for r in rows] == [str(out / f"sess{k}_recording") for k in (1, 2, 3)]
    assert _npz(tmp_path / "ref") == _npz(rows[0]), "batch and run differ"
    assert [_npz(r) for r in rows] == [_npz(r) for r in serial.rows]
    assert all(r["status"] == "ok" and float(r["accuracy"]) > 0 and int(r["n_spikes"]) > 0 for r in rows)
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["counts"] == {"ok": 3} and summary["engine"] == "serial"
    assert _run_cli(args) == 0  # same input, config and ground truth: nothing to do
    again = list(csv.DictReader(open(out / SUMMARY_CSV)))
    assert [r["status"] for r in again] == ["skipped-cached"] * 3
    assert [r["n_units"] for r in again] == [r["n_units"] for r in rows]
    assert _run_cli(args[:-4] + ["--set", "detect.threshold=5", *_sets()]) == 0  # a changed config sorts again
    assert {r["status"] for r in csv.DictReader(open(out / SUMMARY_CSV))} == {"ok"}


def test_local_cluster_gives_the_same_bytes_as_serial(serial, dask_cluster, tmp_path):
    """Recordings as Dask tasks, and each recording's electrodes as Dask tasks too."""
    cfg = load_config(None, ["run.n_jobs=1", "cluster.n_jobs=2"])  # electrodes go to Dask, not local processes
    items = collect_items([r["recording"] for r in serial.rows], tmp_path)
    result = run_batch(items=items, config=cfg, out_dir=tmp_path, scheduler=dask_cluster.scheduler_address,
                       options=TaskOptions(report=False, electrodes_on_dask=True))
    assert result.engine == "dask" and [r["status"] for r in result.rows] == ["ok"] * 3
    assert [_npz(r) for r in result.rows] == [_npz(r) for r in serial.rows]
    from distributed import Client

    with Client(dask_cluster) as client:  # the electrodes were Dask tasks of their own
        prefixes = client.run_on_scheduler(_task_prefixes)
    assert any("batch" in p for p in prefixes) and any("cluster_job" in p for p in prefixes), prefixes


def test_map_jobs_runs_on_dask_workers_in_order(dask_cluster):
    from distributed import Client

    from spikevae.execution import dask_executor, map_jobs

    with Client(dask_cluster) as client, dask_executor(client):
        out = map_jobs(_square_and_pid, list(range(12)), n_jobs=1)
    assert [x for x, _ in out] == [k * k for k in range(12)]
    assert os.getpid() not in {pid for _, pid in out}


def _sleep_then_time(seconds: float) -> tuple[float, float]:
    import time

    time.sleep(seconds)
    return seconds, time.time()


def test_local_map_jobs_keeps_workers_busy_past_a_long_job():
    """Results come in the order of the jobs, but a long first job does not hold back the others:
    the short ones all run on the other worker meanwhile (the clustering sends its largest
    electrodes first and relies on this)."""
    from spikevae.execution import map_jobs

    jobs = [1.5] + [0.02] * 10  # more short jobs than the window of jobs in flight (2 per worker)
    out = map_jobs(_sleep_then_time, jobs, n_jobs=2, spawn=False)
    assert [s for s, _ in out] == jobs
    long_end = out[0][1]
    assert all(end < long_end for _, end in out[1:]), [round(end - long_end, 2) for _, end in out]


def test_imap_jobs_gives_each_result_as_it_ends():
    """A caller that folds results in as they come (the clustering writes each electrode's labels and
    drops them) gets the short jobs' results while a long one still runs, each job's once."""
    from spikevae.execution import imap_jobs

    jobs = [1.5] + [0.02] * 10
    got = list(imap_jobs(_sleep_then_time, jobs, n_jobs=2, spawn=False))
    assert sorted(i for i, _ in got) == list(range(len(jobs)))
    assert [i for i, _ in got][-1] == 0, [i for i, _ in got]  # the long job's result comes last
    assert all(r[0] == jobs[i] for i, r in got)
    assert [i for i, _ in imap_jobs(_square_and_pid, list(range(5)))] == list(range(5))  # in this process: in order


def _square_and_pid(k: int) -> tuple[int, int]:
    return k * k, os.getpid()


def _killed_at(k: int) -> int:
    if k == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's (or a batch system's) out-of-memory killer does
    return k


def test_a_worker_killed_mid_job_is_an_error_that_says_why_and_what_to_do():
    from spikevae.execution import imap_jobs
    from spikevae.execution.pool import WorkerDied

    with pytest.raises(WorkerDied, match="lack of\\s+memory.*n_jobs=1.*same -o") as err:
        list(imap_jobs(_killed_at, list(range(6)), n_jobs=2, spawn=False))
    assert isinstance(err.value, SpikevaeError)


def _task_prefixes(dask_scheduler) -> list[str]:
    return list(dask_scheduler.task_prefixes)


def _local_pool_in_worker(n: int) -> tuple[list, int]:
    from spikevae.execution import map_jobs

    return map_jobs(_square_and_pid, list(range(n)), n_jobs=2, spawn=False), os.getpid()


def test_dask_worker_can_start_local_worker_processes(dask_cluster):
    """Dask workers are daemonic processes; detection and report pools still start inside them."""
    from distributed import Client

    with Client(dask_cluster) as client:
        out, worker_pid = client.submit(_local_pool_in_worker, 6, pure=False).result()
    assert [x for x, _ in out] == [k * k for k in range(6)]
    assert worker_pid not in {pid for _, pid in out}


@pytest.mark.parametrize("engine", ["processes", "dask"])
def test_killed_worker_is_retried(engine, serial, dask_cluster, tmp_path):
    n = 1 if engine == "processes" else 2  # a fresh process per attempt: keep it short
    items = collect_items([r["recording"] for r in serial.rows], tmp_path)[1:1 + n]
    scheduler = dask_cluster.scheduler_address if engine == "dask" else None
    result = run_batch(items=items, config=load_config(None, FAST), out_dir=tmp_path, engine=engine, workers=2,
                       scheduler=scheduler, options=TaskOptions(report=False, hook=_kill_first_attempt))
    assert (tmp_path / "killed-sess2_recording").exists(), "the worker was not killed"
    attempts = (tmp_path / "attempts.log").read_text().split()
    assert attempts.count("sess2_recording") == 2 and attempts.count("sess3_recording") == n - 1
    assert [r["status"] for r in result.rows] == ["ok"] * n
    assert [_npz(r) for r in result.rows] == [_npz(r) for r in serial.rows[1:1 + n]]
    if engine == "processes":
        assert result.rows[0]["attempts"] == 2


def _always_raise(item) -> None:
    """Task hook: every attempt at sess1 fails as a bug or a lost file would (not a user error)."""
    with open(Path(item.output).parent / "attempts.log", "a") as fh:
        fh.write(f"{Path(item.output).name}\n")
    if "sess1" in item.output:
        raise OSError(f"{item.recording}: stale file handle")


@pytest.mark.parametrize("engine", ["serial", "dask"])
def test_failure_after_retries_is_named(engine, serial, dask_cluster, tmp_path):
    items = collect_items([r["recording"] for r in serial.rows[:2]], tmp_path)
    scheduler = dask_cluster.scheduler_address if engine == "dask" else None
    result = run_batch(items=items, config=load_config(None, FAST), out_dir=tmp_path, engine=engine, retries=1,
                       scheduler=scheduler, options=TaskOptions(report=False, hook=_always_raise))
    failed, ok = result.rows
    assert failed["status"] == "failed" and ok["status"] == "ok" and _npz(ok) == _npz(serial.rows[1])
    assert failed["error"].startswith("OSError:") and "stale file handle (after 2 attempts)" in failed["error"]
    assert (tmp_path / "attempts.log").read_text().split().count("sess1_recording") == 2
    rows = list(csv.DictReader(open(tmp_path / SUMMARY_CSV)))
    assert rows[0]["status"] == "failed" and "stale file handle" in rows[0]["error"]


def test_bad_recording_fails_alone(sessions, dask_cluster, tmp_path, capsys):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(np.random.default_rng(0).bytes(4000))
    good = sessions / "sess3" / "recording.h5"
    out = tmp_path / "out"
    code = _run_cli(["batch", str(good), str(bad), "-o", str(out), "--no-report",
                     "--scheduler", dask_cluster.scheduler_address, *_sets()])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "1 of 2 recordings failed: broken.h5" in err[0]
    rows = {Path(r["recording"]).name: r for r in csv.DictReader(open(out / SUMMARY_CSV))}
    assert rows["recording.h5"]["status"] == "ok" and (out / "recording" / "sorting.npz").is_file()
    assert rows["broken.h5"]["status"] == "failed" and "broken.h5" in rows["broken.h5"]["error"]
    assert rows["broken.h5"]["error"].count("broken.h5") == 1 and "after" not in rows["broken.h5"]["error"]


def test_table_applies_per_recording_settings(sessions, serial, tmp_path):
    table = tmp_path / "sessions.tsv"
    table.write_text("recording\tsubject\toutput\tdetect.threshold\tgt\n"
                     f"{sessions / 'sess1' / 'recording.h5'}\tM1\tstrict\t6\t{sessions / 'sess1' / 'ground_truth.npz'}\n"
                     f"{sessions / 'sess2' / 'recording.h5'}\tM2\tplain\t\t\n")
    result = run_batch(table=table, config=load_config(None, FAST), out_dir=tmp_path / "out",
                       options=TaskOptions(report=False))
    strict, plain = result.rows
    assert strict["output"] == str(tmp_path / "out" / "strict") and strict["accuracy"] is not None
    assert json.loads((tmp_path / "out" / "strict" / "config.json").read_text())["detect"]["threshold"] == 6
    assert strict["n_spikes"] < serial.rows[0]["n_spikes"]
    assert plain["accuracy"] is None and _npz(plain) == _npz(serial.rows[1])
    summary = list(csv.DictReader(open(tmp_path / "out" / SUMMARY_CSV)))
    assert list(summary[0])[:3] == ["recording", "subject", "output"]  # note columns follow the recording
    assert [r["subject"] for r in summary] == ["M1", "M2"]


def test_bad_table_stops_before_sorting(sessions, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(f"recording,detect.treshold\n{sessions / 'sess1' / 'recording.h5'},5\n")
    with pytest.raises(SpikevaeConfigError, match="threshold"):
        run_batch(table=table, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "u.csv").write_text("file\nx.h5\n")
    with pytest.raises(SpikevaeError, match="'recording' column"):
        collect_items(table=tmp_path / "u.csv")
    with pytest.raises(SpikevaeError, match="matches no file"):
        collect_items([str(tmp_path / "nothing*.ns6")])


def test_names_and_ground_truth_pattern(sessions, tmp_path):
    assert unique_names(["a/rec.ns6", "b/rec.ns6", "c/other.ns6"]) == ["a_rec", "b_rec", "other"]
    assert unique_names(["a/x.ns6", "a/x.ns5"]) == ["a_x", "a_x-2"]
    rec = sessions / "sess1" / "recording.h5"
    assert gt_from_pattern("{dir}/ground_truth.npz", str(rec)) == str(sessions / "sess1" / "ground_truth.npz")
    assert gt_from_pattern("ground_truth.npz", str(rec)) == str(sessions / "sess1" / "ground_truth.npz")
    assert gt_from_pattern("{stem}_gt.npz", str(rec)) is None
    with pytest.raises(SpikevaeConfigError, match="placeholder"):
        gt_from_pattern("{session}.npz", str(rec))


def _sets() -> list[str]:
    return [x for s in FAST for x in ("--set", s)]


def _run_cli(args) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_engine_choice(monkeypatch):
    from spikevae.batch import engines

    assert engines.choose_engine("auto", None, 1) == "serial"
    assert engines.choose_engine("auto", "tcp://h:8786", 1) == "dask"
    with pytest.raises(SpikevaeError, match="cannot be combined"):
        engines.choose_engine("processes", "tcp://h:8786", 2)
    monkeypatch.setattr(engines, "dask_available", lambda: False)  # an install without the dask extra
    assert engines.choose_engine("auto", None, 2) == "processes"
    with pytest.raises(SpikevaeError, match=r"pip install 'spikevae\[dask\]'"):
        engines.choose_engine("auto", "tcp://h:8786", 1)
