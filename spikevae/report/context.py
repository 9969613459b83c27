"""ReportContext: everything the HTML report shows, gathered from memory or from a run folder."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpikevaeError
from ..objects import Sorting, Spikes

log = logging.getLogger(__name__)

HISTORY_KEYS = ("train_recon", "train_kl", "train_total", "val_recon", "val_kl", "val_total")


def normalise_history(history) -> dict | None:
    """VAE training history as a dict of lists (accepts that, or a list of per-epoch dicts)."""
    if not history:
        return None
    if isinstance(history, dict):
        return {k: [float(v) for v in history[k]] for k in HISTORY_KEYS if k in history}
    return {k: [float(h[k]) for h in history if k in h] for k in HISTORY_KEYS if any(k in h for h in history)}


@dataclass
class ReportContext:
    """What the report shows.

    Parameters
    ----------
    spikes : Spikes
    sortings : dict of str -> Sorting
        One sorting per feature method, e.g. ``{"pca": ..., "vae": ...}``.
    main_method : str, optional
        The sorting the units table and waveforms show first (default: the first key).
    embeddings : dict of str -> Embedding
        Features of each method, rows in the order of ``spikes``.
    metrics : dict of str -> list of dict
        :func:`spikevae.quality.compute_metrics` output per method; missing methods are
        computed by :func:`~spikevae.report.write_report`.
    recording_info : dict
        Facts of the input (source, fs, n_channels, duration_s, ...).
    config : dict
        The resolved pipeline configuration.
    timings : dict of str -> float or dict
        Seconds per stage (or ``{"seconds": ..., "peak_rss_mb": ...}``).
    history : dict of lists or list of dicts, optional
        VAE training history (train_recon, train_kl, train_total, val_recon, val_kl, val_total).
    gt_scores : dict of str -> dict, optional
        :func:`spikevae.compare.compare_sortings` output per method.
    title : str
    max_waveforms : int
        Raw waveforms per unit drawn for mean ± sd (at most).
    max_points : int
        Spikes per electrode drawn in scatter plots (at most).
    seed : int
        Seed of those subsamples.
    artefacts : Artefacts, optional
        The artefact events whose spikes were removed (:mod:`spikevae.artefacts`).
    """

    spikes: Spikes
    sortings: dict
    main_method: str | None = None
    embeddings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    recording_info: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    history: dict | list | None = None
    gt_scores: dict | None = None
    title: str = "spikevae report"
    max_waveforms: int = 200
    max_points: int = 3000
    seed: int = 0
    artefacts: object = None

    def __post_init__(self) -> None:
        if not self.sortings:
            raise ValueError("ReportContext needs at least one sorting")
        if self.main_method is None:
            self.main_method = next(iter(self.sortings))
        if self.main_method not in self.sortings:
            raise ValueError(f"main_method {self.main_method!r} is not one of the sortings {list(self.sortings)}")
        for m, emb in self.embeddings.items():
            if emb.n_spikes != self.spikes.n_spikes:
                raise ValueError(f"embedding {m!r} has {emb.n_spikes} rows but there are {self.spikes.n_spikes} spikes")
        self.history = normalise_history(self.history)

    @property
    def duration_s(self) -> float:
        """Recording duration: from the recording info, else the last spike."""
        d = float(self.recording_info.get("duration_s") or 0.0)
        if d > 0:
            return d
        last = max([int(s.sample_index.max(initial=0)) for s in self.sortings.values()] + [0])
        return max(last + 1, 1) / float(self.spikes.fs)

    @property
    def methods(self) -> list[str]:
        """Methods, the main one first."""
        return [self.main_method] + [m for m in self.sortings if m != self.main_method]


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def context_from_run(out_dir, gt: Sorting | None = None, main_method: str | None = None) -> ReportContext:
    """Build a ReportContext from a run folder written by ``spikevae run``.

    Reads the run store (spikes, every sorting and embedding, recording info, configuration,
    timings), ``vae_model/history.json`` when present, and scores the sortings against
    ``gt`` (or reads ``scores.json`` when no ``gt`` is given). Metrics are left to
    :func:`~spikevae.report.write_report`. ``main_method`` picks the sorting shown first
    (e.g. ``"curated"``, a sorting imported from phy); default: the run's ``features.method``.

    Raises
    ------
    SpikevaeError
        When ``out_dir`` holds no run, or no sorting named ``main_method``.
    """
    from .. import store

    out = Path(out_dir)
    if not store.store_path(out).is_file():
        raise SpikevaeError(f"{out}: no run store ({store.STORE_NAME}) here; pass the output folder of 'spikevae run'")
    info = store.load_run_info(out)
    methods = [g.split("/")[-1] for g in info.get("sortings", [])]
    if not methods:
        raise SpikevaeError(f"{out}: the run has no sorting yet; finish it with 'spikevae run' first")
    cfg = _as_dict(info.get("config"))
    main = main_method or cfg.get("features", {}).get("method")
    if main_method and main_method not in methods:
        raise SpikevaeError(f"{out}: no sorting '{main_method}' in the run store (it has {', '.join(methods)}); "
                            "pass one of those to --method")
    sortings = {m: store.load_sorting(out, m) for m in methods}
    spikes, run_store = store.load_spikes(out), store.RunStore(out)
    embeddings = {}
    for g in info.get("embeddings", []):  # sharing the spikes' electrode array and, where equal, row map
        m = g.split("/")[-1]
        embeddings[m] = run_store.load_embedding(m, spikes.electrode, getattr(spikes.waveforms, "row", None))
    scores = None
    if gt is not None:
        from ..compare import compare_sortings

        scores = {m: compare_sortings(gt, s) for m, s in sortings.items()}
    else:
        scores = _read_json(out / "scores.json")
    history = _read_json(out / "vae_model" / "history.json")
    return ReportContext(spikes=spikes, sortings=sortings, artefacts=run_store.load_artefacts(),
                         main_method=main if main in sortings else None, embeddings=embeddings,
                         recording_info=_as_dict(info.get("recording")), config=cfg,
                         timings=_as_dict(info.get("timings")), history=history, gt_scores=scores,
                         title=f"spikevae report: {Path(str(_as_dict(info.get('recording')).get('source', out))).name}")


def _as_dict(v) -> dict:
    if v is None:
        return {}
    if isinstance(v, (str, bytes)):
        return json.loads(v)
    return dict(v)


def context_from_result(result) -> ReportContext:
    """Build a ReportContext from the pipeline's ``RunResult`` (its metrics included)."""
    from ..config import to_dict

    history = _read_json(Path(result.out_dir) / "vae_model" / "history.json")
    cfg = getattr(result, "config", None)
    return ReportContext(spikes=result.spikes, sortings=result.sortings, main_method=result.main_method,
                         artefacts=getattr(result, "artefacts", None),
                         embeddings=result.embeddings, metrics=result.metrics or {},
                         recording_info=result.recording_info, config=to_dict(cfg) if cfg is not None else
                         _read_json(Path(result.out_dir) / "config.json") or {},
                         timings=result.timings, history=history, gt_scores=result.scores or None,
                         title=f"spikevae report: {Path(str(result.recording_info.get('source', ''))).name}")

