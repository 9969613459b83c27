"""Cluster-quality metrics of a sorting, the ``good`` label, and their tables.

``compute_metrics`` orchestrates; the kernels live in ``spiketrain`` (rate, presence,
refractory violations), ``amplitude`` (SNR, amplitude and noise cutoffs) and ``isolation``
(isolation distance, L-ratio, d', silhouette, nearest-neighbour rates); ``labels`` holds the
good-label presets. Each kernel's docstring cites its source.
"""
from .compute import METRIC_COLUMNS, compute_metrics, electrode_space, group_indices, match_spikes
from .io import write_metrics
from .labels import PRESETS, describe_preset, failed_rules, is_good

__all__ = ["compute_metrics", "write_metrics", "match_spikes", "group_indices", "electrode_space", "METRIC_COLUMNS",
           "PRESETS", "describe_preset", "failed_rules", "is_good"]
