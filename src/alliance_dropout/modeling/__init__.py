"""Estimators, labels, splits, calibration, metrics and evaluation of dropout models."""
