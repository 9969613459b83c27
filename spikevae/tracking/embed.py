"""One feature space for every session: the first session's model, or one fitted on all sessions.

A unit can only be compared across sessions in a space that does not move between them. PCA
refitted on each session (as each run does) gives each session its own axes, so the shared
space is either the first session's model (its trained VAE or VaDE when it has one, else its PCA,
refitted on its stored spikes: the PCA fit is deterministic, so this is the run's own basis)
or one fitted on all sessions pooled. Every session's waveforms are scaled by the *first*
session's noise σ per electrode, so that a change of noise level does not move the units.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..errors import SpikevaeConfigError, SpikevaeError
from ..features import FeatureExtractor
from ..objects import Spikes
from .session import Session

log = logging.getLogger(__name__)

MODELS = ("first", "all")
FEATURES = ("auto", "pca", "vae", "vade")


def reference_scaled(spikes: Spikes, noise_uv: np.ndarray) -> Spikes:
    """``spikes`` with the electrode noise σ replaced by ``noise_uv`` (the reference session's)."""
    if noise_uv.shape != spikes.noise_uv.shape:
        raise SpikevaeError(f"sessions have different electrode counts ({spikes.noise_uv.shape[0]} vs "
                            f"{noise_uv.shape[0]}); track only sessions of one array with the same channels")
    return dataclasses.replace(spikes, noise_uv=noise_uv.astype(np.float32))


def _pooled(sessions: list[Session], noise_uv: np.ndarray) -> Spikes:
    s0 = sessions[0].spikes
    parts = [reference_scaled(s.spikes, noise_uv) for s in sessions]
    snips = [p for p in parts if p.noise_snippets is not None and len(p.noise_snippets)]
    return Spikes(np.concatenate([p.sample_index for p in parts]), np.concatenate([p.electrode for p in parts]),
                  np.concatenate([p.waveforms for p in parts]), np.concatenate([p.amplitude_uv for p in parts]),
                  noise_uv, s0.fs, s0.peak_index, s0.channel_ids,
                  np.concatenate([p.noise_snippets for p in snips]) if snips else None,
                  np.concatenate([p.noise_electrode for p in snips]) if snips else None)


def _pca(session: Session, seed: int):
    from ..features import PCAFeatures, PCAParams

    f = (session.config or {}).get("features", {})
    run_seed = int((session.config or {}).get("run", {}).get("seed", seed))
    return PCAFeatures(PCAParams(n_components=int(f.get("n_components", 5)), whiten=bool(f.get("whiten", False)),
                                 seed=run_seed))


def shared_extractor(sessions: list[Session], model: str = "first", features: str = "auto",
                     seed: int = 0, progress: bool = False) -> tuple[FeatureExtractor, str]:
    """The fitted feature extractor that embeds every session, and a sentence saying which it is.

    Parameters
    ----------
    sessions : list of Session
        In session order; the first is the reference.
    model : {"first", "all"}
        Fit on (or take the trained model of) the first session, or fit on all sessions pooled.
    features : {"auto", "pca", "vae", "vade"}
        ``auto``: the first session's trained model of its run's ``features.method`` when that is
        learned, else its VAE, else its VaDE (the encoder's posterior means), else PCA.
    seed : int
        Seed of the PCA fit subsample (the run's ``run.seed`` when the run says).
    progress : bool
        Progress bars while a VAE trains (``model="all"``).

    Raises
    ------
    SpikevaeConfigError
        For an unknown ``model`` or ``features``, or ``vae``/``vade`` when the first run has no such model.
    """
    if model not in MODELS:
        raise SpikevaeConfigError(f"--model {model}: use one of {', '.join(MODELS)}")
    if features not in FEATURES:
        raise SpikevaeConfigError(f"--features {features}: use one of {', '.join(FEATURES)}")
    first = sessions[0]
    learned = _learned_model(first, features)
    noise = first.spikes.noise_uv
    if learned is not None:
        kind, folder, cls = learned
        ex = cls.load(folder, device="cpu")
        if model == "first":
            return ex, f"the trained {kind} of the first session ({folder})"
        fresh = cls(ex.config).configure_run(device="cpu", progress=progress)
        fresh.fit(_pooled(sessions, noise))
        return fresh, f"a {kind} with the first session's settings, trained on all {len(sessions)} sessions pooled"
    ex = _pca(first, seed)
    if model == "first":
        ex.fit(first.spikes)
        return ex, "PCA fitted on the first session's spikes (the run's own PCA basis)"
    ex.fit(_pooled(sessions, noise))
    return ex, f"PCA fitted on all {len(sessions)} sessions pooled"


def _learned_model(first: Session, features: str):
    """(name, folder, class) of the first session's learned model to use, or None for PCA."""
    from ..features.vade import VaDEFeatures
    from ..features.vae import VAEFeatures

    models = {"vae": ("VAE", first.vae_model, VAEFeatures), "vade": ("VaDE", first.vade_model, VaDEFeatures)}
    if features in models:
        if models[features][1] is None:
            raise SpikevaeConfigError(f"--features {features}: the first run ({first.name}) has no {features}_model/ "
                                      f"folder; sort it with --set features.method={features}, or use --features pca")
        return models[features]
    if features == "pca":
        return None
    main = (first.config or {}).get("features", {}).get("method", "pca")
    order = [main] + [m for m in ("vae", "vade") if m != main]
    return next((models[m] for m in order if m in models and models[m][1] is not None), None)


def embed_sessions(extractor: FeatureExtractor, sessions: list[Session]) -> list[np.ndarray]:
    """Features of every session's spikes in the shared space, each (n_spikes, d) float64."""
    noise = sessions[0].spikes.noise_uv
    return [np.asarray(extractor.transform(reference_scaled(s.spikes, noise)).features, dtype=np.float64)
            for s in sessions]
