"""Artefact rejection: events on many electrodes at once, or too large for a neuron.

See :mod:`spikevae.artefacts.find` for the rules and :class:`ArtefactConfig` for the settings.
"""
from .config import ArtefactConfig
from .find import ALL_ELECTRODES, KINDS, Artefacts, find_artefacts, reject_artefacts

__all__ = ["ALL_ELECTRODES", "KINDS", "ArtefactConfig", "Artefacts", "find_artefacts", "reject_artefacts"]
