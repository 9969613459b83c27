"""Configuration of the quality-metrics stage.

Defaults follow SpikeInterface 0.105's quality-metric defaults where a metric exists there,
so that our numbers and theirs can be compared one to one (``tests/test_quality_spikeinterface.py``).
The exceptions are ``refractory_ms`` (1.5 ms, Hill et al. 2011 and SpikeInterface's ISI default,
used here for both the ISI ratio and the Llobet contamination, where SpikeInterface uses 1.0 ms)
and ``amplitude_cutoff_bins`` (SpikeInterface's registered default, 100).
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import param


@dataclass
class QualityConfig:
    refractory_ms: float = param(1.5, "refractory period for ISI violations and rp_contamination", unit="ms", low=0.1, high=10)
    censored_ms: float = param(0.0, "censored period after each spike, where no spike can be detected", unit="ms", low=0, high=5)
    preset: str = param("spikevae", "rules for the 'good' label", choices=("spikevae", "allen", "ibl"))
    presence_bin_s: float = param(60.0, "bin length of the presence ratio", unit="s", low=1, high=3600)
    n_components: int = param(5, "principal components of the shared per-electrode feature space", low=1, high=20)
    include_unsorted: bool = param(True, "count unsorted spikes (-1) of the electrode among the 'other' spikes of distance metrics")
    nn_neighbors: int = param(5, "neighbours of the nearest-neighbour hit/miss rates", low=1, high=50)
    nn_max_spikes: int = param(10000, "spikes per electrode used by the nearest-neighbour metrics (strided subsample beyond)", low=100)
    isolation_max_spikes: int = param(50000, "spikes per electrode in the shared feature space of the distance metrics "
                                      "(a regular subsample in time beyond: memory and time stay bounded on hours of "
                                      "recording)", low=1000)
    n_jobs: int = param(1, "threads over electrodes for the isolation metrics (the same values): on 2 cores a 10-min "
                           "96-electrode run's metrics took 3.3 s with 2 instead of 5.6 s, but a 60-min run's report "
                           "peak rose by about 100 MB for no clear gain; worth it on many cores", low=1, high=256)
    amplitude_cutoff_bins: int = param(100, "histogram bins of the amplitude cutoff", low=10, high=2000)
    amplitude_cutoff_smoothing: float = param(3.0, "Gaussian smoothing of that histogram", unit="bins", low=0, high=50)
    amplitude_cutoff_min_ratio: float = param(5.0, "spikes per bin needed for the amplitude cutoff (NaN below)", low=0)
    sliding_rp_bin_ms: float = param(0.25, "autocorrelogram bin of the sliding refractory-period test", unit="ms", low=0.01, high=5)
    sliding_rp_max_ms: float = param(10.0, "longest refractory period tested", unit="ms", low=1, high=50)
    sliding_rp_exclude_ms: float = param(0.5, "refractory periods shorter than this are not tested", unit="ms", low=0, high=5)
