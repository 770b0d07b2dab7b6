"""Shared plumbing of the Hydra entry points in ``pipelines/``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from alliance_dropout.errors import PipelineError

T = TypeVar("T")
log = logging.getLogger("alliance_dropout")


def run_entry(task: Callable[[], T]) -> T:
    """Run a stage; a PipelineError becomes one clear line on stderr and exit code 2.

    Bugs still raise with their traceback (Hydra prints it and exits 1).
    """
    try:
        return task()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def echo(message: str, *args: Any) -> None:
    """User-facing progress line on stdout (never raw rows or client ids)."""
    print(message % args if args else message, flush=True)
