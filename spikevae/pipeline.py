"""The pipeline, stage by stage: read -> preprocess -> detect -> features -> cluster -> outputs.

Each stage's result is kept in the run store (``OUT/run.h5``) under the hash of the
configuration that made it and of its input, so a rerun skips stages that are done
and an interrupted run resumes at the first stage that is missing or out of date.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import config_hash, to_dict
from .errors import SpikevaeError
from .execution.spill import spill_to
from .objects import Embedding, Sorting, Spikes, count_values
from .params import PipelineConfig
from .recording import Recording
from .store import (RUN_OUTPUT_PATTERNS, STORE_NAME, RunStore, check_writable, clear_outputs, record_outputs,
                    refuse_foreign_outputs, refuse_input_as_output, write_text)

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced (also in the run store and the output folder)."""

    out_dir: Path
    spikes: Spikes
    embeddings: dict
    sortings: dict
    main_method: str
    recording_info: dict
    timings: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    scores: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    artefacts: object = None  # spikevae.artefacts.Artefacts: events whose spikes were removed

    @property
    def sorting(self) -> Sorting:
        return self.sortings[self.main_method]

    def in_memory(self) -> "RunResult":
        """This result with its spikes' waveforms and its features read into memory (they stay on disk in the
        run folder otherwise): for use after the run folder is gone, e.g. a run in a temporary folder."""
        import dataclasses

        return dataclasses.replace(self, spikes=self.spikes.in_memory(),
                                   embeddings={m: e.in_memory() for m, e in self.embeddings.items()})


class _Timer:
    """Wall time and peak resident memory of each stage."""

    def __init__(self):
        self.timings: dict[str, dict] = {}

    def stage(self, name: str):
        timer = self

        class _Ctx:
            def __enter__(self):
                from .execution.memory import return_large_arrays

                if name != "detect":  # detection reuses its chunk buffers (detect_spikes); the others hold
                    return_large_arrays()  # few large arrays, whose memory goes back to the OS when freed
                self.t0 = time.perf_counter()
                log.info("stage %s ...", name)

            def __exit__(self, *exc):
                from .execution import release_memory

                release_memory()  # what the stage freed goes back to the OS: the next stage starts low
                peak_mb = peak_rss_mb()
                timer.timings[name] = {"seconds": round(time.perf_counter() - self.t0, 3), "peak_rss_mb": round(peak_mb, 1)}
                return False

        return _Ctx()


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (NaN where the platform does not say, e.g. Windows)."""
    try:
        import resource  # POSIX only: Blackrock Central and many rig PCs run Windows
    except ImportError:
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def input_identity(source, data=None) -> dict:
    """What identifies an input for caching, from its content (:mod:`spikevae.identity`).

    Parameters
    ----------
    source : str, Path, Recording or Spikes
        A file or folder path (hashed by content: size and sampled blocks), or an in-memory
        Recording (metadata and sampled traces) or Spikes (all arrays).
    data : Recording or Spikes, optional
        What ``source`` (a path) opened as: a Recording's sampled traces are hashed too, so a
        sibling file the reader depends on (an NSx 2.1's ``.nev`` scale) counts.

    Returns
    -------
    dict
        ``path`` (for display only: :func:`spikes_key` leaves it out, so a moved or copied
        file reuses its results), ``file`` and/or ``recording``/``spikes`` content hashes.
    """
    from .identity import file_identity, recording_identity, spikes_identity

    if isinstance(source, Spikes):
        return {"path": "", "spikes": spikes_identity(source)}
    if isinstance(source, Recording):
        ident = {"path": source.source, "recording": recording_identity(source)}
        try:  # a Recording read from a file: the file counts too (its samples are hashed all the same)
            on_disk = bool(source.source) and Path(source.source).exists()
        except OSError:  # a wrapper chain's description, too long to be a path
            on_disk = False
        return ident | ({"file": file_identity(source.source)} if on_disk else {})
    ident = {"path": str(Path(source).resolve()), "file": file_identity(source)}
    return ident | ({"recording": recording_identity(data)} if isinstance(data, Recording) else {})


def feature_methods(config: PipelineConfig) -> list[str]:
    """The main feature method first, then the others of ``features.also``."""
    out = [config.features.method]
    out += [m for m in config.features.also if m not in out]
    return out


# -- stage cache keys: the one place that says what each stage's result depends on --------
def spikes_key(ident: dict, config: PipelineConfig) -> str:
    """Cache key of the detected spikes: the input's identity and the configuration that reads,
    filters and detects."""
    d = to_dict(config)
    d["input"].pop("map", None)  # the electrode map places electrodes; it changes no spike
    content = {k: v for k, v in ident.items() if k != "path"}  # a moved or copied input reuses its results
    key = {"input": content, "in": d["input"], "pre": d["preprocess"], "det": d["detect"],
           "chunk": config.run.chunk_s, "seed": config.run.seed}
    if config.artefact.enabled:  # the stored spikes are those left after artefact rejection
        key["artefact"] = d["artefact"]
    return config_hash(key)


def features_section(config: PipelineConfig, method: str) -> dict:
    """The feature settings that ``method`` uses (the VAE or VaDE section only for that method)."""
    fcfg = to_dict(config)["features"] | {"method": method}
    for learned in ("vae", "vade"):
        if method != learned:
            fcfg.pop(learned, None)
    return fcfg


def embedding_key(spikes_hash: str, method: str, config: PipelineConfig) -> str:
    """Cache key of an embedding: the spikes it embeds and the feature settings."""
    return config_hash({"spikes": spikes_hash, "features": features_section(config, method), "seed": config.run.seed})


def sorting_key(embedding_hash: str, config: PipelineConfig) -> str:
    """Cache key of a sorting: the embedding it clusters and the cluster settings."""
    return config_hash({"embedding": embedding_hash, "cluster": to_dict(config)["cluster"]})


def open_input(path, config: PipelineConfig) -> Recording | Spikes:
    """A Recording for trace files, or Spikes for a Blackrock ``.nev`` file."""
    from .io import open_recording

    p = Path(path)
    if not p.exists():
        raise SpikevaeError(f"{p}: file not found; check the path (spikevae info FILE tells what a file holds)")
    if config.input.format == "nev" or (config.input.format == "auto" and p.suffix.lower() == ".nev"):
        from .io.nev import read_nev

        return read_nev(p, channels=config.input.channels or None)
    return open_recording(p, config.input)


def _detect_stage(rec: Recording, config: PipelineConfig, progress: bool, waveform_file=None,
                  spike_hash: str = "") -> Spikes:
    """Spikes of ``rec``; with ``waveform_file``, their waveforms are streamed to it and stay on disk."""
    from .detect import detect_spikes
    from .io import find_dead_channels
    from .preprocess import preprocess

    dead = find_dead_channels(rec)
    filtered = preprocess(rec, config.preprocess)
    if config.input.groups:  # tetrodes / shanks: one event per group, concatenated waveforms
        from .groups import detect_groups, resolve_groups

        return detect_groups(filtered, config.detect, resolve_groups(config.input.groups, rec),
                             chunk_s=config.run.chunk_s, progress=progress, skip_channels=dead,
                             seed=config.run.seed, n_jobs=config.run.n_jobs)
    return detect_spikes(filtered, config.detect, chunk_s=config.run.chunk_s, progress=progress,
                         skip_channels=dead, seed=config.run.seed, n_jobs=config.run.n_jobs,
                         waveform_file=waveform_file, waveform_attrs={"hash": spike_hash})


def _artefact_stage(spikes: Spikes, config: PipelineConfig, source: str, duration_s: float | None = None):
    """Remove the artefacts' spikes (:mod:`spikevae.artefacts`); returns ``(spikes, artefacts)``.

    Raises
    ------
    SpikevaeError
        When no spikes were detected, or every spike was an artefact.
    """
    from .artefacts import reject_artefacts

    if spikes.n_spikes == 0:
        raise SpikevaeError(f"{source}: no spikes detected at {config.detect.threshold} σ; "
                            "check the polarity (--set detect.polarity=both) or lower detect.threshold")
    clean, artefacts = reject_artefacts(spikes, config.artefact, duration_s)
    if clean.n_spikes == 0:
        raise SpikevaeError(f"{source}: all {spikes.n_spikes} spikes were removed as artefacts "
                            f"({artefacts.n_events} events); if they are neurons, raise artefact.min_fraction or "
                            "artefact.max_amplitude_uv, or --set artefact.enabled=false")
    return clean, artefacts


def _features_stage(spikes: Spikes, method: str, config: PipelineConfig, out_dir: Path, progress: bool,
                    feature_file=None, feature_attrs: dict | None = None) -> Embedding:
    """The features of ``spikes``; with ``feature_file``, written there block by block as they are made
    (:func:`~spikevae.features.base.transform_to_file`) and read from there: no stage holds them all."""
    from .features import make_extractor
    from .features.base import embed_noise_class, transform_to_file

    if spikes.group_channels is not None and method in ("vae", "vade"):
        raise SpikevaeError(f"input.groups: {method.upper()} features do not support channel groups (concatenated "
                            f"waveforms); use --set features.method=pca (and no '{method}' in features.also)")
    ex = make_extractor(method, config.features, seed=config.run.seed)
    if method in ("vae", "vade"):
        # run.device, when set, wins; else the network's own device setting (never silently ignored)
        own = config.features.vae.device if method == "vae" else config.features.vade.net.device
        device = config.run.device if config.run.device != "auto" else own
        ex.configure_run(out_dir=out_dir, device=device, progress=progress)
    from .execution import release_memory
    from .execution.memory import heap_kept

    with heap_kept():  # a network's training steps allocate the same tensors again: they keep the heap
        ex.fit(spikes)
    release_memory()  # what the fit freed (the PCA's fit sample: 90 MB left resident at 120 min) goes now
    emb = ex.transform(spikes) if feature_file is None else transform_to_file(ex, spikes, feature_file, feature_attrs)
    d = config.detect
    emb = embed_noise_class(ex, spikes, emb, config.features.noise_crossings, d.threshold, d.polarity,
                            d.dead_time_ms, config.run.seed)
    if method in ("vae", "vade") and hasattr(ex, "save"):
        ex.save(out_dir / f"{method}_model")
    return emb


def _cluster_stage(spikes: Spikes, emb: Embedding, config: PipelineConfig, progress: bool) -> Sorting:
    from .cluster import cluster_spikes

    return cluster_spikes(spikes, emb, config.cluster, progress=progress)


def run_pipeline(source, config: PipelineConfig, out_dir, *, gt=None, progress: bool = False,
                 force: bool = False, report: bool = True) -> RunResult:
    """Sort a recording (path or Recording) with ``config``; write results into ``out_dir``.

    Parameters
    ----------
    source : str, Path or Recording
        A recording file (any supported format, or a Blackrock ``.nev``), or a Recording.
    config : PipelineConfig
    out_dir : path
        Output folder (created). Holds ``run.h5``, ``sorting.npz``, ``units.csv``,
        ``config.json``/``config.toml``, ``summary.json`` and the report.
    gt : path or Sorting, optional
        Ground truth to score against (``scores.json``).
    progress : bool
        Progress bars.
    force : bool
        Recompute every stage even when the store has it.
    report : bool
        Write quality metrics and the HTML report.

    Returns
    -------
    RunResult
    """
    timer = _Timer()
    skipped: list[str] = []
    cfg_dict = to_dict(config)
    if not isinstance(source, (Recording, Spikes)):
        refuse_input_as_output(source, out_dir, out_is_dir=True)

    with timer.stage("read"):  # the input and --gt are checked before the output folder is made
        data = source if isinstance(source, (Recording, Spikes)) else open_input(source, config)
        ident = input_identity(source, data)
        if isinstance(data, Recording):
            from .io import find_clipped_channels

            _validate_recording(data, config)
            rec_info = data.describe()
            clipped = find_clipped_channels(data)  # a warning names them; the summary lists them
            if clipped.size:
                rec_info["clipped_channels"] = [str(data.channel_ids[c]) for c in clipped]
        else:
            from .io.nev import nev_recording_info

            rec_info = nev_recording_info(data, source, config.input.map)
        rec_info["duration_s"] = float(rec_info.get("duration_s", 0.0))
        if gt is not None:  # read before the sort, so a wrong file stops the run at once; a file is read
            check_ground_truth(gt, rec_info)  # again for the scores, not held through the sort (24 bytes a spike)
    refuse_foreign_outputs(out_dir)
    out = check_writable(out_dir)
    store = RunStore(out).recover()

    # per-spike arrays past a few MB live in files of the output folder, memory-mapped
    # (spikevae.execution.spill): what the run holds does not grow with the recording
    with spill_to(out):
        spike_hash = spikes_key(ident, config)
        with timer.stage("detect"):
            if not force and store.has("spikes", spike_hash) and store.has("artefacts", spike_hash):
                spikes, artefacts = store.load_spikes(), store.load_artefacts()
                skipped.append("detect")
            else:
                from .waveform_store import WAVEFORM_FILE

                spikes = data if isinstance(data, Spikes) else _detect_stage(data, config, progress, out / WAVEFORM_FILE,
                                                                             spike_hash)
                spikes, artefacts = _artefact_stage(spikes, config, rec_info["source"], rec_info["duration_s"])
                store.save_artefacts(artefacts, spike_hash)
                store.save_spikes(spikes, {k: cfg_dict[k] for k in ("input", "preprocess", "detect", "artefact")},
                                  spike_hash)

        embeddings, sortings = {}, {}
        for method in feature_methods(config):
            fcfg = features_section(config, method)
            emb_hash = embedding_key(spike_hash, method, config)
            with timer.stage(f"features_{method}"):
                # the features stay on disk (features_<method>.h5, per electrode): the clustering reads each
                # electrode's in its worker, the report a subsample; no stage holds them all
                if not force and store.has(f"embedding/{method}", emb_hash):
                    emb = store.load_embedding(method, spikes.electrode, getattr(spikes.waveforms, "row", None))
                    skipped.append(f"features_{method}")
                else:
                    emb = _features_stage(spikes, method, config, out, progress, store.feature_path(method),
                                          {"hash": emb_hash})
                    emb = store.save_embedding(emb, fcfg, emb_hash, spikes.electrode)
            embeddings[method] = emb
            clu_hash = sorting_key(emb_hash, config)
            with timer.stage(f"cluster_{method}"):
                if not force and store.has(f"sorting/{method}", clu_hash):
                    sorting = store.load_sorting(method)
                    skipped.append(f"cluster_{method}")
                else:
                    sorting = _cluster_stage(spikes, emb, config, progress)
                    store.save_sorting(sorting, method, cfg_dict["cluster"], clu_hash)
            sortings[method] = sorting
            if method == config.features.method:
                spikes, embeddings = share_detected_columns(spikes, embeddings, sorting)
                emb = embeddings[method]  # the copies it replaced go now

        main = config.features.method
        result = RunResult(out, spikes, embeddings, sortings, main, rec_info, timer.timings, skipped,
                           artefacts=artefacts)
        run_id = config_hash({"spikes": spike_hash, "sortings": {m: store.hash_of(f"sorting/{m}") for m in sortings},
                              "main": main})
        with timer.stage("outputs"):
            clear_outputs(out)  # a rerun leaves no file of the previous run beside its own
            if store.root_attrs().get("run_id") not in (None, run_id):
                store.drop_group("sorting/curated")  # a curation of another sorting (its file stays, unlisted)
            write_outputs(result, config)
            if gt is not None:
                from .execution import release_memory

                release_memory()  # units.csv's freed groups (56 MB resident at 60 min) before the scoring's
                result.scores = score_run(result, gt)
        if report:
            with timer.stage("report"):
                _write_quality_and_report(result, config)
        store.set_root_attrs(recording=rec_info, config=cfg_dict, timings=timer.timings, run_id=run_id)
        write_text(out / "summary.json", json.dumps(summary(result) | {"run_id": run_id}, indent=2))
        record_outputs(out, run_id, sorted(p.name for p in out.iterdir()
                                           if p.is_file() and any(p.match(pat) for pat in RUN_OUTPUT_PATTERNS)
                                           and p.name != STORE_NAME and not p.name.startswith("sorting_curated")))
        return result


def share_detected_columns(spikes: Spikes, embeddings: dict, sorting: Sorting) -> tuple[Spikes, dict]:
    """``spikes`` and ``embeddings`` whose time and electrode arrays are the first entries of ``sorting``'s.

    A run's sorting starts with the detected spikes, in their order (overlap extras follow), so its
    ``sample_index`` and ``electrode`` repeat the spikes' own: 12 bytes a spike, held twice for the
    rest of the run. Where they are equal, the spikes (and the row maps of their waveforms and
    features on disk, which share the electrode array) are given views of the sorting's arrays and
    their own copies can go. Anything else is returned as it is.
    """
    import dataclasses

    from .waveform_store import DiskWaveforms, is_lazy

    n = spikes.n_spikes
    t, e = sorting.sample_index[:n], sorting.electrode[:n]
    if e.dtype != spikes.electrode.dtype or not sorting.starts_with(spikes):
        return spikes, embeddings

    def repoint(a):
        return DiskWaveforms(a.path, e, a.row, a.n_samples) if is_lazy(a) and a.electrode is spikes.electrode else a

    shared = dataclasses.replace(spikes, sample_index=t, electrode=e, waveforms=repoint(spikes.waveforms))
    return shared, {m: dataclasses.replace(x, features=repoint(x.features)) for m, x in embeddings.items()}


def _validate_recording(rec: Recording, config: PipelineConfig) -> None:
    from .io import validate_recording

    validate_recording(rec, min_duration_s=0.1)
    window = int(round(config.detect.window_ms * 1e-3 * rec.fs))
    if window < 8:
        raise SpikevaeError(f"{rec.source}: sampling rate {rec.fs:g} Hz gives {window} samples per "
                            f"{config.detect.window_ms:g} ms spike window; spike sorting needs about 10 kHz or more. "
                            "Is this the continuous neural stream? choose another with --set input.stream=...")
    lo, _ = config.preprocess.band_hz()
    if lo >= rec.fs / 2:
        raise SpikevaeError(f"{rec.source}: sampling rate {rec.fs:g} Hz is too low for a {lo:g} Hz high-pass; "
                            "is this a continuous neural stream? choose one with --set input.stream=...")


def units_table(sorting: Sorting, spikes: Spikes, duration_s: float, positions_um=None) -> list[dict]:
    """One row per unit: unit, electrode, channel id, electrode position x_um/y_um (µm; NaN
    when ``positions_um``, (n_electrodes, 2), is not given), spike count, firing rate (Hz),
    median amplitude (µV)."""
    from .recording import electrode_positions

    pos = electrode_positions(positions_um, spikes.n_electrodes)
    from .quality.compute import SpikeMatch, group_indices

    spike_of = SpikeMatch(spikes, sorting)  # each sorted spike's detected spike, or -1 (overlap extras)
    rows = []
    for u, sel in group_indices(sorting.unit).items():
        if u < 0:
            continue
        e = int(np.bincount(sorting.electrode[sel]).argmax())  # Sorting.unit_electrode, without a second grouping
        idx = spike_of[sel]
        idx = idx[idx >= 0]
        amp = float(np.median(spikes.amplitude_uv[idx])) if idx.size else float("nan")
        n = int(sel.size)
        rows.append({"unit": u, "electrode": e, "channel_id": str(spikes.channel_ids[e]),
                     "x_um": float(pos[e, 0]), "y_um": float(pos[e, 1]), "n_spikes": n,
                     "firing_rate_hz": round(n / max(duration_s, 1e-9), 4), "amplitude_uv": round(amp, 2)})
    return rows


def write_csv(path, rows: list[dict]) -> None:
    """Write dict rows as CSV, atomically."""
    import csv
    import io

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_text(path, buf.getvalue())


def to_toml(d: dict, prefix: str = "") -> str:
    """A nested dict of scalars and lists as TOML (enough for a resolved PipelineConfig)."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{k}"
        text += f"\n[{name}]\n" + to_toml(v, name + ".")
    return text


def write_outputs(result: RunResult, config: PipelineConfig) -> None:
    """sorting.npz (main method), sorting_<method>.npz, units.csv and the resolved configuration."""
    out = result.out_dir
    for method, s in result.sortings.items():
        s.save_npz(out / f"sorting_{method}.npz")
    result.sorting.save_npz(out / "sorting.npz")
    write_csv(out / "units.csv", units_table(result.sorting, result.spikes, result.recording_info["duration_s"],
                                            result.recording_info.get("positions_um")))
    if result.artefacts is not None and result.artefacts.found:
        write_csv(out / "artefacts.csv", result.artefacts.rows(result.spikes.channel_ids))
    cfg = to_dict(config)
    write_text(out / "config.json", json.dumps(cfg, indent=2))
    write_text(out / "config.toml", to_toml(cfg))


def check_ground_truth(gt, rec_info: dict):
    """Open the ground truth (path or Sorting) and check that it can belong to this recording.

    Returns the Sorting, or for a ``.npz`` file a :class:`~spikevae.objects.SortingFile` that scoring
    reads a block at a time (a ground truth of hours is not held in memory).

    Raises
    ------
    SpikevaeError
        When its sampling rate differs from the recording's, or its spikes lie past the
        recording's end (the ground truth of another recording scores 0 without a word).
    """
    from .compare import open_ground_truth, spike_times_past

    fs = float(rec_info["fs"])
    g = gt if isinstance(gt, Sorting) else open_ground_truth(gt, fs)
    name = gt if not isinstance(gt, Sorting) else "the ground truth"
    if abs(g.fs - fs) > 1e-6 * fs:
        raise SpikevaeError(f"{name}: ground truth at {g.fs:g} Hz but the recording at {fs:g} Hz; "
                            "is it the ground truth of another recording?")
    n_samples = rec_info.get("n_samples") or int(round(rec_info["duration_s"] * fs)) + 1
    late, n, last = spike_times_past(g, n_samples)
    if late:
        raise SpikevaeError(f"{name}: {late} of {n} ground-truth spikes lie past the recording's "
                            f"end ({last / fs:.2f} s > {n_samples / fs:.2f} s); "
                            "is it the ground truth of another recording?")
    return g


def score_run(result: RunResult, gt) -> dict:
    """Score every sorting of the run against ground truth; writes ``scores.json``."""
    from .compare import compare_sortings, open_ground_truth

    gt_sorting = gt if isinstance(gt, Sorting) else open_ground_truth(gt, result.sorting.fs)
    scores = {m: compare_sortings(gt_sorting, s) for m, s in result.sortings.items()}
    write_text(result.out_dir / "scores.json", json.dumps(scores, indent=2))
    return scores


def _write_quality_and_report(result: RunResult, config: PipelineConfig) -> None:
    try:
        from . import report as report_mod
        from .quality import compute_metrics, write_metrics
    except ImportError as exc:  # the report needs matplotlib; the sorting does not
        log.warning("quality report skipped: %s", exc)
        return
    dur = result.recording_info["duration_s"]
    pos = result.recording_info.get("positions_um")
    result.metrics = {m: compute_metrics(result.spikes, s, config.quality, dur, positions_um=pos)
                      for m, s in result.sortings.items()}
    write_metrics(result.out_dir, result.metrics[result.main_method], preset=config.quality.preset)
    report_mod.write_run_report(result)


def summary(result: RunResult) -> dict:
    """Counts and seconds per stage, for the terminal and ``summary.json``."""
    s = result.sorting
    out = {
        "input": result.recording_info.get("source"),
        "duration_s": result.recording_info.get("duration_s"),
        "electrodes": int(result.spikes.n_electrodes),
        "electrodes_with_spikes": int(np.count_nonzero(count_values(result.spikes.electrode))),
        "spikes": int(result.spikes.n_spikes),
        "sorted_spikes": int((s.unit >= 0).sum()),
        "units": int(len(s.unit_ids)),
        "feature_method": result.main_method,
        "units_per_method": {m: int(len(x.unit_ids)) for m, x in result.sortings.items()},
        "artefacts": result.artefacts.summary() if result.artefacts is not None else None,
        "clipped_channels": result.recording_info.get("clipped_channels", []),
        "stages": result.timings,
        "skipped_stages": result.skipped,
    }
    if result.scores:
        out["ground_truth"] = {m: {k: v[k] for k in ("mean_accuracy", "n_well_detected", "n_gt_units")}
                               for m, v in result.scores.items()}
    return out
