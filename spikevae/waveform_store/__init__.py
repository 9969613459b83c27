"""Spike waveforms and features kept on disk, per electrode, and read where they are used.

:class:`WaveformWriter` streams detection's waveforms into ``OUT/waveforms.h5`` (one chunked
dataset per electrode); :class:`DiskWaveforms` stands in for the ``(n_spikes, n_samples)``
array of :class:`~spikevae.objects.Spikes` and reads rows on demand. See :mod:`.array`.
A run's features are kept the same way, one file per feature method (:func:`feature_file`),
with a feature in place of a sample in each row: the clustering reads one electrode's rows,
the report a few thousand, and no stage holds every spike's features in memory.
"""
from .array import READ_BLOCK_ROWS, DiskWaveforms, dataset_name
from .writer import WaveformWriter, file_attrs, write_waveforms

#: Name of the waveform file in a run folder.
WAVEFORM_FILE = "waveforms.h5"


def feature_file(method: str) -> str:
    """Name of the file holding feature method ``method``'s features in a run folder."""
    return f"features_{method}.h5"

__all__ = ["DiskWaveforms", "WaveformWriter", "write_waveforms", "file_attrs", "dataset_name", "READ_BLOCK_ROWS",
           "WAVEFORM_FILE", "feature_file", "is_lazy"]


def is_lazy(waveforms) -> bool:
    """True for waveforms read from disk on demand (not a numpy array)."""
    return isinstance(waveforms, DiskWaveforms)
