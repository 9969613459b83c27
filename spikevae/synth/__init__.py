"""Synthetic Utah-array recordings with ground truth.

``simulate_recording(SimConfig(...), seed)`` returns a lazy :class:`SimulatedRecording`
(traces in µV, chunk-invariant) and the ground-truth :class:`~spikevae.objects.Sorting`;
``write_ground_truth`` saves the latter in the ``compare`` layout.
"""
from .config import SimConfig
from .ground_truth import UnitInfo, read_ground_truth, write_ground_truth
from .recording import SimulatedRecording
from .simulate import simulate_recording
from .templates import parametric_templates

__all__ = ["SimConfig", "SimulatedRecording", "UnitInfo", "parametric_templates", "read_ground_truth",
           "simulate_recording", "write_ground_truth"]
