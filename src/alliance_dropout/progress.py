"""What a long stage shows while it works: progress bars and one timed summary line per step.

Bars go to the terminal only (tqdm, off when stderr is not a terminal, so logs and CI output
stay clean); summary lines go through ``logging``, so Hydra's job log holds the run's story.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """``items`` with a progress bar on an interactive terminal."""
    return tqdm(items, desc=desc, total=total, leave=False, disable=None, dynamic_ncols=True)


@contextlib.contextmanager
def timed(log: logging.Logger, step: str) -> Iterator[dict[str, str]]:
    """Log ``<step>: <detail> (<seconds> s)`` when the block ends; the block may set
    ``detail["text"]`` to say what it did."""
    detail = {"text": "done"}
    started = time.perf_counter()
    yield detail
    log.info("%s: %s (%.1f s)", step, detail["text"], time.perf_counter() - started)
