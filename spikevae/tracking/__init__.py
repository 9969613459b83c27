"""Unit tracking across sessions: the same neurons on several recordings of one array.

``simulate_sessions`` makes sessions with ground-truth identities; ``track_runs`` (or
``track_sessions`` on in-memory sessions) embeds the sorted sessions with one model and links
their units, electrode by electrode, between consecutive sessions.
"""
from .match import METHODS, UnitStats
from .session import Session, load_session
from .simulate import SessionTruth, SimulatedSession, read_tracking_truth, simulate_sessions, write_sessions
from .track import TrackConfig, TrackResult, track_runs, track_sessions

__all__ = ["METHODS", "Session", "SessionTruth", "SimulatedSession", "TrackConfig", "TrackResult", "UnitStats",
           "load_session", "read_tracking_truth", "simulate_sessions", "track_runs", "track_sessions",
           "write_sessions"]
