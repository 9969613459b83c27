"""Configuration of artefact rejection (the ``artefact`` section of the pipeline configuration)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param


@dataclass
class ArtefactConfig:
    enabled: bool = param(True, "find artefacts (events on many electrodes at once, or too large for a neuron) and "
                                "remove their spikes before clustering")
    window_ms: float = param(0.5, "coincidence bin: crossings on many electrodes within two consecutive bins "
                                  "of this length form one event", unit="ms", low=0.05, high=10)
    min_fraction: float = param(0.5, "an event crosses threshold on at least this fraction of the electrodes "
                                     "that have spikes", low=0.01, high=1.0)
    min_electrodes: int = param(8, "and on at least this many electrodes (recordings with fewer electrodes "
                                   "only use the amplitude limit)", low=2)
    max_amplitude_uv: float = param(3000.0, "a spike larger than this (|peak|, µV) on any electrode is an artefact "
                                            "(no neuron makes it; 0 = no limit)", unit="µV", low=0.0)
    max_electrode_rate_hz: float = param(1.0, "an electrode whose spikes pass max_amplitude_uv more often than this "
                                              "(a stimulating, broken or saturating electrode) is left out entirely "
                                              "(0 = never)", unit="Hz", low=0.0)
    blank_before_ms: float = param(0.5, "spikes this long before an event's first crossing are removed too",
                                   unit="ms", low=0.0, high=100)
    blank_after_ms: float = param(2.0, "spikes this long after an event's last crossing are removed too "
                                       "(ringing, the amplifier settling)", unit="ms", low=0.0, high=1000)
