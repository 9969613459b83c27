"""``track_sessions``: the units of several sessions, linked into tracks (one per neuron).

Orchestration: embed every session with one model (:mod:`.embed`), summarise each unit
(:class:`~.match.UnitStats`), then, electrode by electrode and for each pair of consecutive
sessions, assign units one to one (:mod:`.match`). A unit that is linked to one of the
previous session continues its track; any other unit starts a new one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import param
from ..errors import SpikevaeConfigError
from .match import METHODS, UnitStats, assign, gaussian_fit, probability_matrix
from .session import Session

log = logging.getLogger(__name__)

#: Relative amplitude step and time stretch used to find the drift directions of a unit.
_AMP_STEP, _STRETCH_STEP = 0.1, 0.05


@dataclass
class TrackConfig:
    model: str = param("first", "shared feature model: the first session's, or one fitted on all sessions",
                       choices=("first", "all"))
    features: str = param("auto", "feature space: the first run's learned model (its features.method's, else "
                                  "VAE, else VaDE) when it has one (auto), or PCA, the VAE or the VaDE encoder",
                          choices=("auto", "pca", "vae", "vade"))
    method: str = param("bhattacharyya", "how two units are compared", choices=METHODS)
    drift: float = param(0.15, "allowed relative amplitude drift per session (SD; the time stretch allows half)",
                         low=0.0, high=2.0)
    min_probability: float = param(0.05, "latent methods: a link needs at least this match probability",
                                   low=0.0, high=1.0)
    min_correlation: float = param(0.9, "correlation baseline: a link needs at least this waveform correlation",
                                   low=-1.0, high=1.0)
    max_fit_spikes: int = param(5000, "spikes per unit used for its Gaussian fit (random subsample)", low=10)
    seed: int = param(0, "seed of the subsamples", low=0)


@dataclass
class TrackResult:
    """Tracks of the units of every session.

    Attributes
    ----------
    rows : list of dict
        One per sorted unit of each session: ``session``, ``unit``, ``electrode``, ``track``,
        ``match_probability`` (of the link to the previous session; NaN when the track starts),
        ``previous_unit`` (-1 when the track starts), ``n_spikes``, ``amplitude_uv``, ``run``.
    waveforms : dict
        ``(session, unit) -> ndarray (n_samples,)``: mean waveform in µV.
    model : str
        Which shared model embedded the sessions.
    config : TrackConfig
    """

    rows: list[dict]
    waveforms: dict
    model: str
    config: TrackConfig
    session_names: list[str] = field(default_factory=list)

    def tracks(self) -> dict[int, list[dict]]:
        """Rows of each track, in session order."""
        out: dict[int, list[dict]] = {}
        for r in sorted(self.rows, key=lambda r: (r["track"], r["session"])):
            out.setdefault(r["track"], []).append(r)
        return out

    def links(self) -> list[tuple[int, int, int]]:
        """``(session, previous_unit, unit)`` of every link to the previous session."""
        return [(r["session"], r["previous_unit"], r["unit"]) for r in self.rows if r["previous_unit"] >= 0]


def _drift_cov(extractor, session: Session, waveforms: np.ndarray, noise_uv: np.ndarray, electrodes: np.ndarray,
               cfg: TrackConfig) -> np.ndarray:
    """Allowed drift covariance of each unit (n_units, d, d), from its mean waveform through the model."""
    from ..synth.templates import stretch_template
    from .embed import reference_scaled

    n, peak = waveforms.shape[0], session.spikes.peak_index
    stretched = np.stack([stretch_template(w, 1 + _STRETCH_STEP, peak) * abs(w[peak]) for w in waveforms])
    probe = np.concatenate([waveforms, waveforms * (1 + _AMP_STEP), stretched])
    sp = session.spikes
    from ..objects import Spikes

    probe_spikes = reference_scaled(Spikes(np.zeros(3 * n, np.int64), np.tile(electrodes, 3), probe,
                                           probe[:, peak], sp.noise_uv, sp.fs, peak, sp.channel_ids), noise_uv)
    f = np.asarray(extractor.transform(probe_spikes).features, dtype=np.float64)
    v_amp = (f[n:2 * n] - f[:n]) / _AMP_STEP
    v_str = (f[2 * n:] - f[:n]) / _STRETCH_STEP
    return (cfg.drift ** 2 * v_amp[:, :, None] * v_amp[:, None, :]
            + (cfg.drift / 2) ** 2 * v_str[:, :, None] * v_str[:, None, :])


def unit_stats(session: Session, features: np.ndarray | None, extractor, noise_uv: np.ndarray,
               cfg: TrackConfig) -> list[UnitStats]:
    """Summaries of every unit of ``session`` (features None: waveforms only, for the correlation baseline)."""
    rng = np.random.default_rng([cfg.seed, 5])
    ids = session.unit_ids()
    wf = session.spikes.waveforms
    members = [np.flatnonzero(session.unit == u) for u in ids]
    means = np.stack([wf[m].mean(0) for m in members]).astype(np.float64) if ids.size else np.zeros((0, wf.shape[1]))
    electrodes = np.array([int(np.bincount(session.spikes.electrode[m]).argmax()) for m in members], np.int64)
    drift = _drift_cov(extractor, session, means, noise_uv, electrodes, cfg) if features is not None and ids.size \
        else None
    out = []
    for i, (u, m) in enumerate(zip(ids, members)):
        if features is not None:
            fit = m if m.size <= cfg.max_fit_spikes else rng.choice(m, cfg.max_fit_spikes, replace=False)
            mean, cov = gaussian_fit(features[fit])
            dc = drift[i]
        else:
            mean = cov = dc = np.zeros((0,))
        out.append(UnitStats(int(u), int(electrodes[i]), int(m.size), mean, cov, dc, means[i]))
    return out


def _threshold(cfg: TrackConfig) -> float:
    return cfg.min_correlation if cfg.method == "correlation" else cfg.min_probability


def link_sessions(before: list[UnitStats], after: list[UnitStats], cfg: TrackConfig) -> dict[int, tuple[int, float]]:
    """Links of the units of ``after`` to those of ``before``, electrode by electrode.

    Returns
    -------
    dict
        ``unit of after -> (unit of before, match probability)`` for the linked units.
    """
    out = {}
    for e in sorted({s.electrode for s in after} & {s.electrode for s in before}):
        a = [s for s in before if s.electrode == e]
        b = [s for s in after if s.electrode == e]
        for i, j, p in assign(probability_matrix(a, b, cfg.method), _threshold(cfg)):
            out[b[j].unit] = (a[i].unit, p)
    return out


def track_sessions(sessions: list[Session], config: TrackConfig | None = None, progress: bool = False) -> TrackResult:
    """Link the units of ``sessions`` (in order) into tracks.

    Parameters
    ----------
    sessions : list of Session
        Sorted sessions of one array (same electrodes), oldest first.
    config : TrackConfig, optional
    progress : bool
        Progress bar over sessions.

    Returns
    -------
    TrackResult

    Raises
    ------
    SpikevaeConfigError
        For fewer than two sessions or an unknown method.
    """
    cfg = config if config is not None else TrackConfig()
    if len(sessions) < 2:
        raise SpikevaeConfigError(f"tracking needs at least two sessions, got {len(sessions)}")
    if cfg.method not in METHODS:
        raise SpikevaeConfigError(f"--method {cfg.method}: use one of {', '.join(METHODS)}")
    noise = sessions[0].spikes.noise_uv
    if cfg.method == "correlation":
        extractor, description, feats = None, "none (mean waveforms, correlation baseline)", [None] * len(sessions)
    else:
        from .embed import embed_sessions, shared_extractor

        extractor, description = shared_extractor(sessions, cfg.model, cfg.features, cfg.seed, progress)
        feats = embed_sessions(extractor, sessions)
    log.info("tracking %d sessions; shared space: %s", len(sessions), description)
    items = range(len(sessions))
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="track", unit="session")
    rows, waveforms, prev, next_track = [], {}, [], 0
    track_of: dict[tuple[int, int], int] = {}
    for s in items:
        stats = unit_stats(sessions[s], feats[s], extractor, noise, cfg)
        links = link_sessions(prev, stats, cfg) if s else {}
        for st in stats:
            before, p = links.get(st.unit, (-1, float("nan")))
            if before >= 0:
                track = track_of[(s - 1, before)]
            else:
                track, next_track = next_track, next_track + 1
            track_of[(s, st.unit)] = track
            waveforms[(s, st.unit)] = st.waveform_uv
            peak = sessions[s].spikes.peak_index
            rows.append({"session": s, "unit": st.unit, "electrode": st.electrode, "track": track,
                         "match_probability": p, "previous_unit": before, "n_spikes": st.n_spikes,
                         "amplitude_uv": round(float(st.waveform_uv[peak]), 2), "run": sessions[s].name})
        prev = stats
    return TrackResult(rows, waveforms, description, cfg, [s.name for s in sessions])


def track_runs(run_dirs, out_dir, config: TrackConfig | None = None, sorting: str | None = None,
               progress: bool = False) -> TrackResult:
    """Track the units of sorted run folders; write ``units.csv``, one figure per electrode and ``report.html``.

    Parameters
    ----------
    run_dirs : list of path
        Run folders (``spikevae run ... -o RUN``), oldest session first.
    out_dir : path
        Output folder (created).
    config : TrackConfig, optional
    sorting : str, optional
        Which sorting of each run (default: its main ``features.method``).
    progress : bool

    Returns
    -------
    TrackResult
    """
    from .report import write_track_outputs
    from .session import load_session

    sessions = [load_session(r, sorting) for r in run_dirs]
    result = track_sessions(sessions, config, progress)
    write_track_outputs(Path(out_dir), result, sessions[0].spikes.channel_ids, progress, sessions[0].spikes.fs)
    return result
