"""Feature extractors by name: ``make_extractor(name, features_config)``.

Each registry entry builds an extractor that obeys the contract in ``base.py``.
"""
from __future__ import annotations

from ..errors import SpikevaeConfigError
from .base import FeatureExtractor, model_input
from .pca import PCAFeatures, PCAParams


def _make_pca(cfg, seed: int = 0) -> FeatureExtractor:
    return PCAFeatures(PCAParams(n_components=cfg.n_components, whiten=cfg.whiten, seed=seed))


def _make_vae(cfg, seed: int = 0) -> FeatureExtractor:
    from .vae import VAEFeatures

    return VAEFeatures(cfg.vae)


def _make_vade(cfg, seed: int = 0) -> FeatureExtractor:
    from .vade import VaDEFeatures

    return VaDEFeatures(cfg.vade)


#: name -> builder(features_config, seed) -> FeatureExtractor
EXTRACTORS = {"pca": _make_pca, "vae": _make_vae, "vade": _make_vade}


def make_extractor(name: str, features_config, seed: int = 0) -> FeatureExtractor:
    """The extractor registered as ``name``, configured from a FeaturesConfig."""
    if name not in EXTRACTORS:
        raise SpikevaeConfigError(f"unknown feature method '{name}'; valid: {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name](features_config, seed)


__all__ = ["EXTRACTORS", "FeatureExtractor", "PCAFeatures", "PCAParams", "make_extractor", "model_input"]
