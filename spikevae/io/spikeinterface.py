"""Any recording SpikeInterface reads, as a spikevae Recording.

:class:`SpikeInterfaceRecording` wraps one segment of a SpikeInterface ``BaseRecording``
(``spikeinterface.extractors.read_*``, ``NumpyRecording``, a preprocessing chain ...), so
``run_pipeline(SpikeInterfaceRecording(si_rec), config, out)`` sorts every format
SpikeInterface reads. Samples are read raw and scaled by spikevae's own
:meth:`~spikevae.recording.Recording._scale` with SpikeInterface's ``gain_to_uV`` and
``offset_to_uV``, so the µV values equal SpikeInterface's ``return_in_uV=True`` ones.
SpikeInterface is imported lazily (``pip install 'spikevae[si]'``).
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import RecordingError, SpikevaeError
from ..recording import Recording

log = logging.getLogger(__name__)

#: ``_kwargs`` keys under which SpikeInterface extractors keep the file or folder they read.
_PATH_KEYS = ("file_path", "folder_path", "filename", "dirname", "file_or_folder_path")


def require_spikeinterface():
    """``spikeinterface.core``, or a one-line SpikevaeError naming the extra to install."""
    try:
        import spikeinterface.core as si_core
    except ImportError:
        raise SpikevaeError("SpikeInterface is not installed; install it with pip install 'spikevae[si]'") from None
    return si_core


def describe_si_recording(si_recording) -> str:
    """The file a SpikeInterface recording reads, or its class chain (``spikeinterface A <- B``)."""
    kwargs = getattr(si_recording, "_kwargs", None) or {}
    for key in _PATH_KEYS:
        if kwargs.get(key):
            return str(kwargs[key])
    parent = kwargs.get("recording", kwargs.get("parent_recording"))
    inner = f" <- {describe_si_recording(parent)}" if hasattr(parent, "get_traces") else ""
    return f"spikeinterface {type(si_recording).__name__}{inner}"


class SpikeInterfaceRecording(Recording):
    """One segment of a SpikeInterface recording, lazily, as a spikevae Recording.

    Parameters
    ----------
    si_recording : spikeinterface.core.BaseRecording
    segment : int, default 0
        Which segment (SpikeInterface's ``segment_index``).

    Attributes
    ----------
    si_recording : BaseRecording
    segment : int
    Channel ids are SpikeInterface's, as str; ``positions_um`` its channel locations (first
    two coordinates) when a probe (or, in older versions, a ``location`` property) is set, else spikevae's default
    grid; ``gain_uv``/``offset_uv`` its ``gain_to_uV``/``offset_to_uV`` (1 and 0, with a
    warning, for a recording without them: its traces are taken as µV).

    Raises
    ------
    RecordingError
        For a segment the recording does not have.
    """

    def __init__(self, si_recording, segment: int = 0):
        require_spikeinterface()
        n_seg = si_recording.get_num_segments()
        if not 0 <= int(segment) < n_seg:
            raise RecordingError(f"{describe_si_recording(si_recording)}: no segment {segment}; the SpikeInterface "
                                 f"recording has {n_seg} segment(s), 0..{n_seg - 1}")
        self.si_recording, self.segment = si_recording, int(segment)
        self._si_ids = np.asarray(si_recording.get_channel_ids())
        gain, offset = 1.0, 0.0
        scaleable = getattr(si_recording, "has_scaleable_traces", None) or si_recording.has_scaled_traces  # < 0.102
        if scaleable():
            gain, offset = si_recording.get_channel_gains(), si_recording.get_channel_offsets()
        else:
            log.warning("%s has no gain_to_uV: its traces are taken as µV", describe_si_recording(si_recording))
        self._init_meta(si_recording.get_sampling_frequency(), self._si_ids.astype(str),
                        si_recording.get_num_samples(self.segment), gain, offset, self._positions(),
                        describe_si_recording(si_recording))

    def _positions(self) -> np.ndarray | None:
        """Channel locations (µm, first two axes) from the probe, or the older ``location`` property."""
        si = self.si_recording
        loc = si.get_channel_locations() if si.has_probe() else si.get_property("location")
        if loc is None:
            return None
        loc = np.asarray(loc, dtype=float)
        return loc[:, :2] if loc.ndim == 2 and loc.shape[1] >= 2 else None

    def _read_raw(self, start: int, stop: int, channels: np.ndarray) -> np.ndarray:
        everything = channels.size == self.n_channels and np.array_equal(channels, np.arange(self.n_channels))
        ids = None if everything else self._si_ids[channels]
        return self.si_recording.get_traces(segment_index=self.segment, start_frame=start, end_frame=stop,
                                            channel_ids=ids)
