"""Online classification with a finished run's model (issue 15): no refitting, chunk by chunk."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spikevae.errors import SpikevaeError
from spikevae.online import (Chunk, OnlineSorter, agreement_with, classify_recording, load_online_model,
                             recording_chunks)
from spikevae.params import load_config
from spikevae.pipeline import run_pipeline
from spikevae.preprocess import preprocess
from spikevae.store import RunStore
from spikevae.synth import SimConfig, simulate_recording
from spikevae.tracking.session import labels_of_spikes


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A sorted 6-electrode, 15 s simulation written as NSx, its run folder and the rebuilt model."""
    from spikevae.synth.export import write_recording

    root = tmp_path_factory.mktemp("online")
    rec, gt = simulate_recording(SimConfig(n_electrodes=6, duration_s=15), 2)
    path = write_recording(root / "sim", rec, "nsx")
    cfg = load_config(overrides=["cluster.n_jobs=1", "run.n_jobs=1"])
    result = run_pipeline(path, cfg, root / "run", report=False)
    return root, path, result, load_online_model(root / "run")


def test_model_is_rebuilt_from_the_run(run):
    _, _, result, model = run
    units = {int(u) for u in result.sorting.unit_ids}
    assert {int(c) for clf in model.classifiers.values() for c in clf.classes if c >= 0} == units
    assert "PCA, refitted" in model.description and "noise class" in model.description
    assert np.array_equal(model.noise_uv, result.spikes.noise_uv)


def test_online_labels_equal_the_offline_classifier_on_the_same_spikes(run):
    """Chunked detection finds exactly the run's spikes, and labels them as the batch classifier does."""
    from spikevae.io import open_recording

    _, path, result, model = run
    online = classify_recording(model, open_recording(path), chunk_s=0.5)
    spikes = result.spikes
    assert np.array_equal(online.sorting.sample_index, spikes.sample_index)
    assert np.array_equal(online.sorting.electrode, spikes.electrode)
    offline_units, offline_reason = model.classify_spikes(spikes)
    assert np.array_equal(online.sorting.unit, offline_units)
    assert np.array_equal(online.reason, offline_reason)
    assert (online.sorting.unit >= 0).sum() > 200


def test_classify_on_the_runs_own_recording_agrees_with_its_sorting(run):
    from spikevae.io import open_recording

    _, path, result, model = run
    online = classify_recording(model, open_recording(path), chunk_s=1.0)
    a = agreement_with(result.sorting, online.sorting)
    assert a["found"] >= 0.99  # the rest: spikes the run's overlap resolution added, not detections
    assert a["agreement"] >= 0.95, a
    # spikes of the run's units, not just any labels: the unit ids are the run's
    n = result.spikes.n_spikes
    same = labels_of_spikes(result.spikes, result.sorting) == online.sorting.unit
    assert same.mean() >= 0.95 and n == online.sorting.unit.size


def test_a_stream_of_chunks_gives_the_same_labels_whatever_the_chunk_size(run):
    from spikevae.io import open_recording

    _, path, _, model = run
    filtered = preprocess(open_recording(path), model.config.preprocess)
    sorter = OnlineSorter(model, filtered.n_samples)

    def labels(chunk_s):
        parts = list(sorter.run(recording_chunks(filtered, sorter.margin, chunk_s)))
        assert all(p.latency_s > 0 for p in parts)
        return np.concatenate([p.sample_index for p in parts]), np.concatenate([p.unit for p in parts])

    t1, u1 = labels(1.0)
    t2, u2 = labels(0.3)
    assert np.array_equal(t1, t2) and np.array_equal(u1, u2)


def test_a_spike_of_no_known_unit_stays_unsorted(run):
    _, _, result, model = run
    sp = result.spikes
    lab = labels_of_spikes(sp, result.sorting)
    biggest = max(result.sorting.unit_ids, key=lambda u: abs(sp.amplitude_uv[lab == u].mean()))
    idx = np.flatnonzero(lab == biggest)[:50]
    # the same electrode, but a neuron 3 times larger than any it had: no known unit
    alien = model.spikes(sp.sample_index[idx], sp.electrode[idx], sp.waveforms[idx] * 3.0)
    unit, reason = model.classify_spikes(alien)
    assert (unit == -1).all() and (reason == 2).all()
    unit, reason = model.classify_spikes(model.spikes(sp.sample_index[idx], sp.electrode[idx], sp.waveforms[idx]))
    assert (unit == biggest).mean() > 0.9 and (reason[unit == biggest] == 0).all()


def test_classify_command_writes_the_sorting_contract_and_summary(run, tmp_path):
    from spikevae.cli import main
    from spikevae.objects import Sorting

    root, path, result, _ = run
    out = tmp_path / "cls"
    main(["-q", "classify", str(root / "run"), str(path), "-o", str(out), "--chunk-s", "1",
          "--offline", str(root / "run" / "sorting.npz")])
    s = Sorting.load_npz(out / "sorting.npz")
    assert s.sample_index.size == result.spikes.n_spikes and s.fs == result.spikes.fs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_chunks"] == 15 and summary["spikes_per_s"] > 0
    assert summary["chunk_latency_ms"]["p95"] >= summary["chunk_latency_ms"]["median"] > 0
    assert summary["agreement_with_offline"]["agreement"] >= 0.95
    per_el = summary["electrodes"]
    assert sum(v["unsorted"] for v in per_el.values()) == summary["n_unsorted"] == int((s.unit < 0).sum())


def test_a_recording_of_another_array_is_refused(run):
    _, _, _, model = run
    rec, _ = simulate_recording(SimConfig(n_electrodes=4, duration_s=1), 0)
    with pytest.raises(SpikevaeError, match="4 channels but the model's run had 6"):
        classify_recording(model, rec)


def test_not_a_run_folder_is_one_line(tmp_path):
    with pytest.raises(SpikevaeError, match="not a run folder"):
        load_online_model(tmp_path)


def test_chunk_from_a_live_stream(run):
    """A stream hands over filtered blocks with margins; the sorter needs nothing else."""
    from spikevae.io import open_recording

    _, path, result, model = run
    filtered = preprocess(open_recording(path), model.config.preprocess)
    sorter = OnlineSorter(model)  # open-ended: no recording length
    start, stop = 30000, 60000
    x = filtered.get_traces(start - sorter.margin, stop + sorter.margin)
    out = sorter.classify_chunk(Chunk(start, stop, x, sorter.margin))
    sel = (result.spikes.sample_index >= start) & (result.spikes.sample_index < stop)
    assert np.array_equal(out.sample_index, result.spikes.sample_index[sel])
    assert RunStore(path.parent.parent / "run").has("spikes")


VAE_SETTINGS = ["features.method=vae", "features.vae.epochs=2", "features.vae.channels=8", "features.vae.hidden=32",
                "features.vae.latent_dim=4", "features.vae.device=cpu", "cluster.n_jobs=1", "run.n_jobs=1"]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, run):
    """The same recording sorted with (tiny) VAE features."""
    root = tmp_path_factory.mktemp("online_vae")
    _, path, _, _ = run
    result = run_pipeline(path, load_config(overrides=VAE_SETTINGS), root / "run", report=False)
    return root / "run", path, result


def test_a_vae_run_classifies_with_its_trained_encoder(vae_run):
    from spikevae.io import open_recording

    run_dir, path, result = vae_run
    model = load_online_model(run_dir)
    assert "VAE" in model.description and model.n_features == 4
    online = classify_recording(model, open_recording(path), chunk_s=1.0)
    offline_units, _ = model.classify_spikes(result.spikes)
    assert np.array_equal(online.sorting.unit, offline_units)
    assert agreement_with(result.sorting, online.sorting)["agreement"] >= 0.9


def test_tracking_uses_the_first_runs_vae_when_it_has_one(vae_run):
    import dataclasses

    from spikevae.tracking.session import load_session
    from spikevae.tracking.track import TrackConfig, track_sessions

    run_dir, _, _ = vae_run
    s0 = load_session(run_dir)
    assert s0.vae_model is not None
    scaled = dataclasses.replace(s0.spikes, waveforms=np.asarray(s0.spikes.waveforms) * 1.1)
    s1 = dataclasses.replace(s0, name="scaled", spikes=scaled)
    result = track_sessions([s0, s1], TrackConfig())
    assert "trained VAE of the first session" in result.model
    links = {(prev, unit) for _, prev, unit in result.links()}
    assert len(links & {(int(u), int(u)) for u in s0.unit_ids()}) >= 0.8 * s0.unit_ids().size
    pooled = track_sessions([s0, s1], TrackConfig(features="pca", model="all"))
    assert "PCA fitted on all 2 sessions pooled" in pooled.model
    retrained = track_sessions([s0, s1], TrackConfig(model="all"))  # a VAE trained on both sessions
    assert "trained on all 2 sessions pooled" in retrained.model and retrained.links()


VADE_SETTINGS = ["features.method=vade", "features.vade.net.epochs=2", "features.vade.net.channels=8",
                 "features.vade.net.hidden=32", "features.vade.net.latent_dim=4", "features.vade.net.device=cpu",
                 "features.vade.epochs=2", "features.vade.max_components=3", "cluster.n_jobs=1", "run.n_jobs=1"]


@pytest.fixture(scope="module")
def vade_run(tmp_path_factory, run):
    """The same recording sorted with (tiny) VaDE features: the run saves vade_model/."""
    root = tmp_path_factory.mktemp("online_vade")
    _, path, _, _ = run
    result = run_pipeline(path, load_config(overrides=VADE_SETTINGS), root / "run", report=False)
    return root / "run", path, result


def test_a_vade_run_classifies_with_its_encoders_posterior_means(vade_run):
    from spikevae.features.vade import VaDEFeatures
    from spikevae.io import open_recording

    run_dir, path, result = vade_run
    assert (run_dir / "vade_model" / "vade.json").is_file() and not (run_dir / "vae_model").exists()
    model = load_online_model(run_dir)
    assert isinstance(model.extractor, VaDEFeatures) and "VaDE" in model.description and model.n_features == 4
    online = classify_recording(model, open_recording(path), chunk_s=1.0)
    offline_units, _ = model.classify_spikes(result.spikes)
    assert np.array_equal(online.sorting.unit, offline_units)
    a = agreement_with(result.sorting, online.sorting)
    assert a["found"] >= 0.99 and a["agreement"] >= 0.95, a


def test_tracking_uses_the_first_runs_vade_model(vade_run):
    import dataclasses

    from spikevae.tracking.session import load_session
    from spikevae.tracking.track import TrackConfig, track_sessions

    run_dir, _, _ = vade_run
    s0 = load_session(run_dir)
    assert s0.vade_model == run_dir / "vade_model" and s0.vae_model is None
    scaled = dataclasses.replace(s0.spikes, waveforms=np.asarray(s0.spikes.waveforms) * 1.1)
    s1 = dataclasses.replace(s0, name="scaled", spikes=scaled)
    result = track_sessions([s0, s1], TrackConfig())
    assert "trained VaDE of the first session" in result.model
    links = {(prev, unit) for _, prev, unit in result.links()}
    assert len(links & {(int(u), int(u)) for u in s0.unit_ids()}) >= 0.8 * s0.unit_ids().size
    assert "VaDE" in track_sessions([s0, s1], TrackConfig(features="vade")).model
    with pytest.raises(SpikevaeError, match="no vae_model/"):
        track_sessions([s0, s1], TrackConfig(features="vae"))


@pytest.mark.parametrize("polarity", ["neg", "pos", "both"])
def test_sparse_alignment_equals_the_offline_detector(polarity):
    """The online detector's shortcut must cut exactly what detect.py does (peaks: the same find_peaks)."""
    from scipy.ndimage import gaussian_filter1d

    from spikevae.detect import align_waveforms, find_peaks
    from spikevae.online.stream import align_sparse

    rng = np.random.default_rng(3)
    x = (gaussian_filter1d(rng.standard_normal((20000, 5)), 1.5, axis=0) * 4).astype(np.float32)
    x[500:503, 1] = -30  # a plateau
    x[0, 2] = x[-1, 3] = -30  # extremes on the chunk's edges are never peaks
    thr = np.array([2.0, 2.0, 2.0, 2.0, np.inf], np.float32)  # channel 4 skipped
    t, ch = find_peaks(x, thr, polarity, 15)
    keep = (t > 20) & (t < x.shape[0] - 50)
    t, ch = t[keep], ch[keep]
    pol = np.sign(x[t, ch]).astype(np.float64)
    a, b = align_waveforms(x, t, ch, 15, 48, 8, pol, 2.0, 3.0), align_sparse(x, t, ch, 15, 48, 8, pol, 2.0, 3.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_stacked_classifiers_equal_the_per_electrode_rule(run):
    _, _, result, model = run
    x = model.features(result.spikes)
    unit, reason = model.classify_features(x, result.spikes.electrode)
    refine = model.config.cluster.refine
    for e, clf in model.classifiers.items():
        sel = result.spikes.electrode == e
        u, r = clf.classify(x[sel], refine.min_posterior, model.gate_d2)
        assert np.array_equal(unit[sel], u) and np.array_equal(reason[sel], r)
    assert set(np.unique(reason)) >= {0, 1}


def test_artefacts_are_dropped_online_as_the_run_dropped_them(tmp_path):
    from spikevae.synth.export import write_recording

    rec, _ = simulate_recording(SimConfig(n_electrodes=12, duration_s=8.0, artefact_rate_hz=6.0), seed=3)
    onsets = rec.unit_info.artefact_sample_index
    path = write_recording(tmp_path / "sim", rec, "nsx")
    result = run_pipeline(path, load_config(overrides=["run.n_jobs=1"]), tmp_path / "run", report=False)
    assert result.artefacts.n_events >= 30
    from spikevae.io import open_recording

    online = classify_recording(load_online_model(tmp_path / "run"), open_recording(path), chunk_s=1.0)
    summary = online.summary(result.spikes.channel_ids)
    assert summary["n_artefact_spikes"] >= 0.8 * result.artefacts.n_spikes_removed
    s = online.sorting
    t = s.sample_index[s.unit >= 0]
    j = np.searchsorted(onsets, t, "right") - 1
    at_artefacts = (j >= 0) & (t - onsets[np.maximum(j, 0)] <= 60)
    assert at_artefacts.sum() <= 3  # (chunk borders may cut an event's blanking short)
    assert agreement_with(result.sorting, s)["agreement"] >= 0.95
