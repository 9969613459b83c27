"""Unit tracking across sessions: the same neurons on several recordings of one array.

``simulate_sessions`` makes sessions with ground-truth identities; ``track_runs`` embeds the
sorted runs with one model and links their units, electrode by electrode.
"""
from .simulate import SimulatedSession, SessionTruth, read_tracking_truth, simulate_sessions, write_sessions

__all__ = ["SessionTruth", "SimulatedSession", "read_tracking_truth", "simulate_sessions", "write_sessions"]
