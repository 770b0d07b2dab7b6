"""Predict psychotherapy dropout from session-by-session alliance and symptom trajectories."""

__version__ = "0.1.0"
