"""The SNR benchmark pipeline: simulate, sort, score, tabulate and plot."""
import csv

import pytest

from spikevae.benchmark import load_benchmark, run_benchmark
from spikevae.errors import SpikevaeConfigError


def test_accuracy_rises_with_snr(tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text("[benchmark]\nsnr_levels = [3.0, 15.0]\n[sim]\nn_electrodes = 3\nduration_s = 20.0\n"
                   "units_min = 1\nunits_max = 1\n[pipeline.features]\nmethod = \"pca\"\n")
    rows = run_benchmark(cfg, tmp_path / "out")
    acc = {r["snr_level"]: r["mean_accuracy"] for r in rows}
    assert acc[15.0] >= 0.8 and acc[15.0] > acc[3.0] + 0.2, acc
    with open(tmp_path / "out" / "table.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    assert (tmp_path / "out" / "accuracy_vs_snr.png").stat().st_size > 1000
    assert "| 15 |" in (tmp_path / "out" / "table.md").read_text()


def test_unknown_keys_are_errors(tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text("[sim]\nn_electrode = 3\n")
    with pytest.raises(SpikevaeConfigError, match="sim.n_electrode"):
        load_benchmark(cfg)
    cfg.write_text("[simulation]\nn_electrodes = 3\n")
    with pytest.raises(SpikevaeConfigError, match="unknown section"):
        load_benchmark(cfg)
