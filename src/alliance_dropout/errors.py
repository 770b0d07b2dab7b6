"""Errors a user can act on. Entry points print them as one clear line and exit non-zero."""

from __future__ import annotations

import os


class PipelineError(Exception):
    """Base of every error that is the input's or the config's fault, not a bug."""


class InputFileError(PipelineError):
    """A file that cannot be used at all. Names the file, the column (if any) and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str, column: str | None = None):
        self.path = str(path)
        self.column = column
        self.problem = problem
        where = self.path + (f", column '{column}'" if column else "")
        super().__init__(f"{where}: {problem}")


class QuarantineLimitExceeded(PipelineError):
    """More clients were quarantined than the configured share allows."""


class ConfigError(PipelineError):
    """A config value that is missing or out of its allowed range."""


class UntrustedModelError(PipelineError):
    """A model file that does not match the digest recorded when it was logged."""


class OutputPathError(PipelineError):
    """An output that cannot or must not be written: it is an input, a folder, not writable..."""

    def __init__(self, path: str | os.PathLike[str], problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class TrackingStoreError(PipelineError):
    """The MLflow tracking store cannot be reached or used (down, 401, 403, bad URI)."""


class StudyStorageError(PipelineError):
    """A shared Optuna study that cannot be used: storage unreachable or refused, no such study,
    or no complete trial to train."""
