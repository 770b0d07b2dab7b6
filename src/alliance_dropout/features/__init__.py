"""Trajectory features as of each session (landmark) of a treatment episode."""
