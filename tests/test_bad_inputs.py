"""A catalogue of bad inputs: each gets exit code 1 and one line that names what is wrong.

Every case runs the real command line (``spikevae.cli.main``) on a real bad file, key or
folder, and checks: exit code 1, one line on stderr starting with ``error:``, no
traceback, the offending file / key / channel named in it, and, where the input was a
file, that the file is unchanged afterwards (inputs are only ever read). The README's
"Bad input" table lists the kinds.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from spikevae.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "sample.ns5"
SAMPLE_GT = ROOT / "sample_data" / "sample_gt.npz"


@dataclass
class Case:
    """One bad input: ``make(tmp) -> argv``; ``names`` must appear in the message."""

    id: str
    make: Callable[[Path], list]
    names: list = field(default_factory=list)


def _rng():
    return np.random.default_rng(0)


def _write(p: Path, data: bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _h5(p: Path, traces=None, fs=30000.0, ids=None, drop=()) -> Path:
    traces = _rng().normal(0, 10, (30000, 4)).astype(np.float32) if traces is None else traces
    with h5py.File(p, "w") as f:
        d = f.create_dataset("traces", data=traces)
        attrs = {"fs": fs, "gain_uv": 1.0, "offset_uv": 0.0}
        d.attrs.update({k: v for k, v in attrs.items() if k not in drop})
        if ids is not None:
            f.create_dataset("channel_ids", data=np.asarray(ids, dtype="S"))
    return p


def _raw(p: Path, n_ch=4, n=3000, dtype=np.int16) -> Path:
    _rng().normal(0, 30, (n, n_ch)).astype(dtype).tofile(p)
    return p


def _half(p: Path, keep=0.5) -> Path:
    data = SAMPLE.read_bytes()
    return _write(p, data[: int(len(data) * keep)] if keep < 1 else data[:int(keep)])


def _npz(p: Path, **arrays) -> Path:
    np.savez(p, **arrays)
    return p


def _toml(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def _mat(p: Path, **arrays) -> Path:
    from scipy.io import savemat

    savemat(p, arrays)
    return p


S = str
CASES = [
    # ---- recordings -----------------------------------------------------------------------------
    Case("run-missing-file", lambda t: ["run", S(t / "nope.ns5"), "-o", S(t / "o")], ["nope.ns5"]),
    Case("info-missing-file", lambda t: ["info", S(t / "nope.ns5")], ["nope.ns5"]),
    Case("detect-missing-file", lambda t: ["detect", S(t / "nope.h5"), "-o", S(t / "o")], ["nope.h5"]),
    Case("filter-missing-file", lambda t: ["filter", S(t / "nope.h5"), "-o", S(t / "f.h5")], ["nope.h5"]),
    Case("ns5-empty", lambda t: ["info", S(_write(t / "e.ns5", b""))], ["e.ns5"]),
    Case("ns5-random-bytes", lambda t: ["info", S(_write(t / "r.ns5", _rng().bytes(5000)))], ["r.ns5"]),
    Case("ns5-cut-in-half", lambda t: ["run", S(_half(t / "h.ns5")), "-o", S(t / "o")], ["h.ns5", "cut short"]),
    Case("ns5-header-only", lambda t: ["info", S(_half(t / "h.ns5", 300))], ["h.ns5"]),
    Case("ns5-upper-case", lambda t: ["info", S(_write(t / "R.NS5", SAMPLE.read_bytes()))], ["R.NS5"]),
    Case("raw-no-fs", lambda t: ["run", S(_raw(t / "r.dat")), "--n-channels", "4", "-o", S(t / "o")],
         ["r.dat", "--fs"]),
    Case("raw-no-channel-count", lambda t: ["run", S(_raw(t / "r.dat")), "--fs", "30000", "-o", S(t / "o")],
         ["r.dat", "--n-channels"]),
    Case("raw-wrong-channel-count", lambda t: ["info", S(_raw(t / "r.dat", 4, 3001)), "--fs", "30000",
                                                "--n-channels", "5"], ["r.dat", "fits"]),
    Case("raw-unknown-dtype", lambda t: ["info", S(_raw(t / "r.dat")), "--fs", "30000", "--n-channels", "4",
                                         "--dtype", "int12"], ["r.dat", "int12"]),
    Case("raw-negative-gain", lambda t: ["info", S(_raw(t / "r.dat")), "--fs", "30000", "--n-channels", "4",
                                         "--gain-uv", "-0.25"], ["r.dat", "gain"]),
    Case("raw-float32-read-as-int16", lambda t: ["info", S(_raw(t / "f.dat", 4, 30000, np.float32)), "--fs",
                                                 "30000", "--n-channels", "8"], ["f.dat", "float32"]),
    Case("raw-header-past-end", lambda t: ["info", S(_raw(t / "r.dat")), "--fs", "30000", "--n-channels", "4",
                                           "--header-bytes", "999999"], ["r.dat", "header"]),
    Case("raw-empty", lambda t: ["info", S(_write(t / "e.dat", b"")), "--fs", "30000", "--n-channels", "4"],
         ["e.dat"]),
    Case("h5-no-traces", lambda t: ["info", S(_h5_without_traces(t / "x.h5"))], ["x.h5", "traces"]),
    Case("h5-no-rate", lambda t: ["info", S(_h5(t / "x.h5", drop=("fs",)))], ["x.h5", "fs"]),
    Case("h5-random-bytes", lambda t: ["info", S(_write(t / "x.h5", _rng().bytes(4000)))], ["x.h5"]),
    Case("h5-nan-sample", lambda t: ["run", S(_h5(t / "x.h5", _with_nan())), "-o", S(t / "o")],
         ["x.h5", "NaN at sample 12345"]),
    Case("h5-all-flat", lambda t: ["run", S(_h5(t / "x.h5", np.zeros((30000, 4), np.float32))), "-o", S(t / "o")],
         ["x.h5"]),
    Case("h5-too-short", lambda t: ["run", S(_h5(t / "x.h5", np.zeros((100, 4), np.float32))), "-o", S(t / "o")],
         ["x.h5", "short"]),
    Case("h5-too-slow-rate", lambda t: ["run", S(_h5(t / "x.h5", fs=1000.0)), "-o", S(t / "o")], ["x.h5", "Hz"]),
    Case("h5-duplicate-channel-ids", lambda t: ["run", S(_h5(t / "x.h5", ids=["1"] * 4)), "-o", S(t / "o")],
         ["x.h5", "channel id"]),
    Case("mat-no-data", lambda t: ["info", S(_mat(t / "x.mat", other=np.zeros(3)))], ["x.mat"]),
    Case("mat-random-bytes", lambda t: ["info", S(_write(t / "x.mat", _rng().bytes(3000)))], ["x.mat"]),
    Case("unknown-format", lambda t: ["info", S(SAMPLE), "--format", "fooformat"], ["fooformat"]),
    Case("nev-has-no-traces", lambda t: ["filter", S(_nev(t)), "-o", S(t / "f.h5")], [".nev"]),
    Case("unknown-channel-id", lambda t: ["run", S(SAMPLE), "--set", "input.channels=[\"99\"]", "-o", S(t / "o")],
         ["99"]),
    Case("unknown-stream", lambda t: ["info", S(SAMPLE), "--stream", "nostream"], ["nostream"]),
    Case("unknown-segment", lambda t: ["info", S(SAMPLE), "--segment", "5"], ["segment"]),
    # ---- configuration --------------------------------------------------------------------------
    Case("unknown-key", lambda t: ["config", "validate", "--set", "detect.thresh=5"], ["detect.thresh"]),
    Case("wrong-type", lambda t: ["config", "validate", "--set", "detect.threshold=abc"], ["detect.threshold"]),
    Case("out-of-range", lambda t: ["config", "validate", "--set", "detect.threshold=-1"], ["detect.threshold"]),
    Case("fractional-integer", lambda t: ["config", "validate", "--set", "features.n_components=2.5"],
         ["features.n_components"]),
    Case("swapped-band", lambda t: ["config", "validate", "--set", "preprocess.freq_min=6000",
                                    "--set", "preprocess.freq_max=300"], ["freq_min"]),
    Case("unknown-choice", lambda t: ["config", "validate", "--set", "preprocess.band=foo"], ["preprocess.band"]),
    Case("set-without-equals", lambda t: ["config", "validate", "--set", "detect.threshold"], ["detect.threshold"]),
    Case("config-file-missing", lambda t: ["config", "validate", "-c", S(t / "none.toml")], ["none.toml"]),
    Case("config-file-not-toml", lambda t: ["config", "validate", "-c", S(_toml(t / "c.toml", "[detect\nx="))],
         ["c.toml"]),
    Case("config-file-unknown-section", lambda t: ["config", "validate", "-c",
                                                   S(_toml(t / "c.toml", "[detector]\nthreshold = 4\n"))],
         ["detector"]),
    Case("section-given-a-value", lambda t: ["config", "validate", "--set", "detect=5"], ["detect"]),
    Case("chunk-zero", lambda t: ["config", "validate", "--set", "run.chunk_s=0"], ["run.chunk_s"]),
    Case("jobs-zero", lambda t: ["config", "validate", "--set", "run.n_jobs=0"], ["run.n_jobs"]),
    Case("unknown-feature-method", lambda t: ["config", "validate", "--set", "features.method=foo"],
         ["features.method"]),
    Case("unknown-clusterer", lambda t: ["config", "validate", "--set", "cluster.method=foo"], ["cluster.method"]),
    Case("unknown-device", lambda t: ["run", S(SAMPLE), "-o", S(t / "o"), "--set", "run.device=tpu",
                                      "--set", "features.method=vae"], ["tpu"]),
    # ---- ground truth ---------------------------------------------------------------------------
    Case("gt-missing", lambda t: ["run", S(SAMPLE), "--gt", S(t / "gt.npz"), "-o", S(t / "o")], ["gt.npz"]),
    Case("gt-random-bytes", lambda t: ["run", S(SAMPLE), "--gt", S(_write(t / "gt.npz", _rng().bytes(999))),
                                       "-o", S(t / "o")], ["gt.npz"]),
    Case("gt-missing-arrays", lambda t: ["run", S(SAMPLE), "--gt", S(_npz(t / "gt.npz", times=np.arange(3))),
                                         "-o", S(t / "o")], ["gt.npz", "sample_index"]),
    Case("gt-other-rate", lambda t: ["run", S(SAMPLE), "--gt", S(_npz(t / "gt.npz", sample_index=np.arange(3),
                                                                       unit=np.zeros(3), fs=24000.0)),
                                     "-o", S(t / "o")], ["gt.npz", "24000 Hz"]),
    Case("gt-past-the-end", lambda t: ["run", S(SAMPLE), "--gt", S(_npz(t / "gt.npz", sample_index=np.array([10**8]),
                                                                         unit=np.zeros(1), fs=30000.0)),
                                       "-o", S(t / "o")], ["gt.npz", "past the recording's end"]),
    Case("compare-missing-sorting", lambda t: ["compare", S(t / "none.npz"), "--gt", S(SAMPLE_GT)], ["none.npz"]),
    Case("compare-bad-offset", lambda t: ["compare", S(SAMPLE_GT), "--gt", S(SAMPLE_GT), "--offset", "abc"],
         ["abc"]),
    Case("compare-folder-without-run", lambda t: ["compare", S(_dir(t / "empty")), "--gt", S(SAMPLE_GT)],
         ["empty"]),
    # ---- run folders ----------------------------------------------------------------------------
    Case("report-without-run", lambda t: ["report", S(_dir(t / "empty"))], ["empty"]),
    Case("report-damaged-store", lambda t: ["report", S(_damaged_run(t))], ["run.h5", "damaged"]),
    Case("features-without-run", lambda t: ["features", S(_dir(t / "empty"))], ["empty"]),
    Case("cluster-without-run", lambda t: ["cluster", S(_dir(t / "empty"))], ["empty"]),
    Case("export-nothing-asked", lambda t: ["export", S(_dir(t / "empty"))], ["--phy"]),
    Case("export-without-run", lambda t: ["export", S(_dir(t / "empty")), "--phy", S(t / "phy")], ["empty"]),
    Case("import-curation-not-an-export", lambda t: ["import-curation", S(_dir(t / "p")), S(_dir(t / "o"))], ["p"]),
    Case("filter-onto-itself", lambda t: ["filter", S(_h5(t / "x.h5")), "-o", S(t / "x.h5")], ["x.h5", "overwrite"]),
    Case("run-input-is-its-store", lambda t: ["run", S(_h5(_dir(t / "d") / "run.h5")), "-o", S(t / "d")],
         ["run.h5", "overwrite"]),
    Case("output-is-a-file", lambda t: ["run", S(SAMPLE), "-o", S(_write(t / "f.txt", b"x"))], ["f.txt"]),
    Case("simulate-negative-duration", lambda t: ["simulate", S(t / "s"), "--duration", "-1"], ["duration"]),
    Case("generate-missing-model", lambda t: ["generate", S(t / "model"), "-o", S(t / "g")], ["model"]),
]


def _h5_without_traces(p: Path) -> Path:
    with h5py.File(p, "w") as f:
        f.create_dataset("data", data=np.zeros((10, 2)))
    return p


def _with_nan() -> np.ndarray:
    x = _rng().normal(0, 10, (30000, 4)).astype(np.float32)
    x[12345, 2] = np.nan
    return x


def _dir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _nev(t: Path) -> Path:
    from conftest import SHARED_DATA, require_data

    return require_data(SHARED_DATA / "blackrock_limblab_utah" / "Han_20170516.nev")


def _damaged_run(t: Path) -> Path:
    d = _dir(t / "out")
    _write(d / "run.h5", b"\x89HDF\r\n\x1a\n" + _rng().bytes(2000))
    return d


def _digest(paths) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_line(case, tmp_path, capsys):
    argv = case.make(tmp_path)
    inputs = [Path(a) for a in argv if isinstance(a, str) and Path(a).is_file()]
    before = _digest(inputs)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for name in case.names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    assert _digest(inputs) == before  # inputs are only ever read


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 60
