"""Channel groups (tetrodes, shanks of close contacts) sorted as one "electrode".

See :mod:`spikevae.groups.detect` for how a group's events are found and cut.
"""
from .detect import cut_group_waveforms, detect_groups, group_table, merge_events, resolve_groups

__all__ = ["cut_group_waveforms", "detect_groups", "group_table", "merge_events", "resolve_groups"]
