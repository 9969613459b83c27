"""pipelines/vae_vs_pca.toml: PCA (main) and the best learned model (the VAE) on the same spikes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

PIPELINE = Path(__file__).resolve().parent.parent / "pipelines" / "vae_vs_pca.toml"
#: a small network and few epochs keep the test fast; the pipeline's own choices are left as they are
SMALL = ["features.vae.epochs=2", "features.vae.channels=4", "features.vae.hidden=16", "features.vae.patience=1",
         "features.vae.device=cpu", "run.n_jobs=1"]


def test_pipeline_file_names_pca_main_and_the_plain_vae_beside_it():
    from spikevae.params import load_config

    cfg = load_config(PIPELINE)
    assert cfg.features.method == "pca" and cfg.features.also == ["vae"]
    assert (cfg.features.vae.kind, cfg.features.vae.corruption) == ("vae", "background")


def test_pipeline_sorts_a_tiny_recording_with_both_methods(tmp_path):
    pytest.importorskip("torch")
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline
    from spikevae.synth import SimConfig, simulate_recording

    rec, gt = simulate_recording(SimConfig(n_electrodes=3, duration_s=6.0, units_min=1, snr_min=6.0,
                                           block_samples=8192), seed=1)
    cfg = load_config(PIPELINE, SMALL)
    result = run_pipeline(rec, cfg, tmp_path / "out", gt=gt, report=False)
    assert result.main_method == "pca" and set(result.sortings) == {"pca", "vae"}
    n = result.spikes.n_spikes
    for method in ("pca", "vae"):
        assert result.embeddings[method].features.shape[0] == n  # the same spikes embedded twice
        s = np.load(tmp_path / "out" / f"sorting_{method}.npz")
        assert s["sample_index"].size > 0
        assert np.isin(s["sample_index"], result.spikes.sample_index).all()
        assert 0.0 <= result.scores[method]["mean_accuracy"] <= 1.0
    main = np.load(tmp_path / "out" / "sorting.npz")
    np.testing.assert_array_equal(main["unit"], np.load(tmp_path / "out" / "sorting_pca.npz")["unit"])
    assert (tmp_path / "out" / "vae_model").is_dir()
