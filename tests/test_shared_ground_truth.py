"""The public ground truths in ../shared/data load, sort and score through the CLI."""
import json

import numpy as np
import pytest

from conftest import SHARED_DATA, require_data
from spikevae.cli import main
from spikevae.compare import load_ground_truth
from spikevae.io import open_recording

pytestmark = pytest.mark.data

QUIROGA = SHARED_DATA / "quiroga2004_cbp_excerpt" / "C_Easy1_noise015_5sec.mat"
HARRIS = SHARED_DATA / "harris2000_hc1_d533101"


def test_mat_recording_and_ground_truths_load():
    rec = open_recording(require_data(QUIROGA))
    assert rec.fs == 10000.0 and rec.n_channels == 1 and rec.n_samples == 50000
    gt = load_ground_truth(QUIROGA)
    assert gt.fs == 10000.0 and gt.sample_index.size == 121
    assert np.bincount(gt.unit).tolist() == [0, 44, 47, 30]
    h = load_ground_truth(require_data(HARRIS / "harris_d533101_5sec.mat"))
    assert h.sample_index.size == 11
    cell = load_ground_truth(HARRIS / "d533101_tetrode_spikes_gt.mat", fs=10000.0)
    assert cell.sample_index.size == 786  # only the intracellularly identified cell


def test_mat_ground_truth_without_rate_needs_one():
    from spikevae.errors import RecordingError

    with pytest.raises(RecordingError, match="--gt-fs"):
        load_ground_truth(require_data(HARRIS / "d533101_tetrode_spikes_gt.mat"))


def test_quiroga_easy1_sorts_above_floor(tmp_path, capsys):
    """Quiroga 2004 Easy1 (noise 0.15), 3 units: measured 0.967 mean accuracy with PCA."""
    q = require_data(QUIROGA)
    main(["-q", "run", str(q), "--set", "detect.polarity=pos", "-o", str(tmp_path), "--no-report"])
    main(["-q", "compare", str(tmp_path), "--gt", str(q), "--offset", "auto", "--json", str(tmp_path / "s.json")])
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["offset_samples"] == 22  # the file marks spike onsets, 2.2 ms before the peak
    assert s["mean_accuracy"] >= 0.9 and s["n_well_detected"] == 3


def test_harris_rare_unit_survives_refinement(tmp_path, capsys):
    """Harris 2000 d533101, 5 s tetrode: the intracellularly identified cell fires 11 times.
    Its spikes form an isolated cluster that refinement must not dissolve for being small
    (measured 1.000 accuracy; 0.000 before small isolated units were kept)."""
    h = require_data(HARRIS / "harris_d533101_5sec.mat")
    main(["-q", "run", str(h), "-o", str(tmp_path), "--no-report"])
    main(["-q", "compare", str(tmp_path), "--gt", str(h), "--offset", "auto", "--json", str(tmp_path / "s.json")])
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["mean_accuracy"] >= 0.9 and s["n_well_detected"] == 1
