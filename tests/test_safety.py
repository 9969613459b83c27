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
    time.sleep(4)
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
