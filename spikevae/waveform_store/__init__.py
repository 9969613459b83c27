"""Spike waveforms kept on disk, per electrode, and read where they are used.

:class:`WaveformWriter` streams detection's waveforms into ``OUT/waveforms.h5`` (one chunked
dataset per electrode); :class:`DiskWaveforms` stands in for the ``(n_spikes, n_samples)``
array of :class:`~spikevae.objects.Spikes` and reads rows on demand. See :mod:`.array`.
"""
from .array import READ_BLOCK_ROWS, DiskWaveforms, dataset_name
from .writer import WaveformWriter, file_attrs, write_waveforms

#: Name of the waveform file in a run folder.
WAVEFORM_FILE = "waveforms.h5"

__all__ = ["DiskWaveforms", "WaveformWriter", "write_waveforms", "file_attrs", "dataset_name", "READ_BLOCK_ROWS",
           "WAVEFORM_FILE", "is_lazy"]


def is_lazy(waveforms) -> bool:
    """True for waveforms read from disk on demand (not a numpy array)."""
    return isinstance(waveforms, DiskWaveforms)
