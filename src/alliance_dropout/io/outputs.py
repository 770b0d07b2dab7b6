"""Where a run's outputs go: checks before any work, temporary names, commit as one set.

- ``check_outputs`` refuses, before any work, an output that is one of the inputs (same
  resolved path or same inode), a folder, under a file, or in a folder that cannot be written.
- ``atomic_path`` gives a file its final name only once it is complete; ``staged_files`` and
  ``staged_output_dir`` commit a run's outputs as a set (all renamed, or the previous set kept).
- Temporary names are recognisable (``.<name>.<host>-<pid>-<token>.alliance-<kind>``); those
  left behind by a killed run are removed by the next run that writes into the same folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path

from alliance_dropout.errors import OutputPathError

log = logging.getLogger("alliance_dropout.io")


# --- checking outputs before any work ------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):
        pass
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not (p.exists() or p.is_symlink()) and p != p.parent:
        p = p.parent
    return p


def _probe_directory(directory: Path) -> None:
    """Create and remove a small file in ``directory``; raises OSError if that fails."""
    probe = temp_path(directory / "probe", "probe")
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def check_outputs(
    outputs: Iterable[str | os.PathLike[str]],
    inputs: Mapping[str, str | os.PathLike[str] | None],
) -> None:
    """Refuse, before any work, outputs that must not or cannot be written.

    ``inputs`` maps a name for the user (``data.sessions``) to an input file. Raises
    OutputPathError naming the path and the problem: an output that is an input (same resolved
    path or same inode), two outputs on one file, an output that is a folder or not a regular
    file, a parent that is a file, or a folder where a probe file cannot be created. Writes
    nothing (the probe file is removed at once).
    """
    paths = [Path(p) for p in outputs]
    given = {name: Path(p) for name, p in inputs.items() if p}
    for i, out in enumerate(paths):
        for name, source in given.items():
            if _same_file(out, source):
                raise OutputPathError(
                    out,
                    f"this output is the input file {name} ({source}) and would replace it; "
                    "choose another output",
                )
        for other in paths[:i]:
            if _same_file(out, other):
                raise OutputPathError(out, f"two outputs of this run would be this file ({other})")
    probed: set[Path] = set()
    for out in paths:
        if out.is_dir():
            raise OutputPathError(out, "cannot write this output: it is a folder")
        if out.exists() and not out.is_file():
            raise OutputPathError(out, "cannot write this output: it is not a regular file")
        base = _nearest_existing(out.parent)
        if not base.is_dir():
            raise OutputPathError(out, f"cannot write this output: {base} is a file, not a folder")
        if base in probed:
            continue
        try:
            _probe_directory(base)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise OutputPathError(out, f"cannot write in folder {base} ({reason})") from None
        probed.add(base)


def _inside(a: Path, b: Path) -> bool:
    """Whether ``a`` is ``b`` or lies somewhere under it (resolved paths)."""
    try:
        ra, rb = a.resolve(), b.resolve()
    except (OSError, RuntimeError):
        return False
    return ra == rb or rb in ra.parents


def check_output_folders(
    folders: Iterable[str | os.PathLike[str]],
    inputs: Mapping[str, str | os.PathLike[str] | None],
) -> None:
    """Refuse, before any work, output folders (a Spark engine's Parquet directories) that
    must not or cannot be written: one that is, holds or lies inside an input file or folder
    (replacing it would delete or feed back the input), one that exists as a file, or one in a
    folder that cannot be written. An existing folder is fine: the run replaces it as a whole.
    """
    given = {name: Path(p) for name, p in inputs.items() if p}
    for out in map(Path, folders):
        for name, source in given.items():
            if _inside(source, out) or _inside(out, source):
                raise OutputPathError(
                    out,
                    f"this output folder is, holds or lies in the input {name} ({source}); "
                    "choose another output",
                )
        if (out.exists() or out.is_symlink()) and not out.is_dir():
            raise OutputPathError(out, "cannot write this output folder: a file has its name")
        base = _nearest_existing(out.parent)
        if not base.is_dir():
            raise OutputPathError(out, f"cannot write this output: {base} is a file, not a folder")
        try:
            _probe_directory(base)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise OutputPathError(out, f"cannot write in folder {base} ({reason})") from None


# --- temporary names, and the leftovers of killed runs -------------------------------------------

STALE_AFTER_SECONDS = 24 * 3600
_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}"
    r"\.alliance-(?P<kind>tmp|bak|staging|probe)(?:\.[^.]*)?$"
)


@cache
def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_path(final: Path, kind: str) -> Path:
    """A hidden name beside ``final`` that says what it is, whose it is, and keeps the suffix."""
    owner = f"{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return final.with_name(f".{final.name}.{owner}.alliance-{kind}{final.suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def _is_stale(path: Path, match: re.Match[str]) -> bool:
    try:
        age = time.time() - path.lstat().st_mtime
    except OSError:
        return False
    if age > STALE_AFTER_SECONDS:
        return True
    if match["host"] != _host_tag():
        return False  # another machine's run may still be writing
    pid = int(match["pid"])
    return pid != os.getpid() and not _pid_alive(pid)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> int:
    """Remove the temporary files and folders that killed runs left in ``directory``.

    Only names this module makes are touched, and only when their process is gone (same host)
    or they are older than a day. A previous output that was moved aside at the moment of the
    kill (``.alliance-bak``) goes back to its name if nothing took that name since. Returns the
    number of leftovers handled.
    """
    folder = Path(directory)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    handled = 0
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or not _is_stale(entry, match):
            continue
        final = entry.with_name(match["name"])
        try:
            if match["kind"] == "bak" and not (final.exists() or final.is_symlink()):
                os.replace(entry, final)
            else:
                _remove(entry)
        except OSError as exc:
            log.warning("could not remove leftover %s (%s)", entry, exc.strerror)
            continue
        handled += 1
    if handled:
        log.warning("cleaned up %d leftover temporary file(s) of an interrupted run", handled)
    return handled


# --- atomic files ------------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, "tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- committing a run's outputs as one set -------------------------------------------------------


def _make_folders(folders: Iterable[Path]) -> list[Path]:
    """Create missing folders; returns those created, outermost first (to undo on failure)."""
    created: list[Path] = []
    for folder in folders:
        missing = []
        p = folder
        while not (p.exists() or p.is_symlink()) and p != p.parent:
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except OSError as exc:
                _remove_empty(created)
                raise OutputPathError(d, f"cannot create folder ({exc.strerror})") from None
            created.append(d)
    return created


def _remove_empty(folders: Sequence[Path]) -> None:
    for d in reversed(folders):
        with contextlib.suppress(OSError):
            d.rmdir()


def commit(moves: Sequence[tuple[Path, Path]], remove: Sequence[Path] = ()) -> None:
    """Rename each staged path onto its final name and delete ``remove``, all or nothing.

    Existing finals (and ``remove``) are first renamed aside; if any step fails, the new files
    are taken away and the previous ones renamed back, then an OutputPathError names the path.
    """
    aside: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    current = Path()
    try:
        for staged, final in moves:
            current = final
            if final.is_dir() and not final.is_symlink() and not staged.is_dir():
                raise IsADirectoryError(errno.EISDIR, "an output name is taken by a folder")
        for final in [*(final for _, final in moves), *remove]:
            current = final
            if final.exists() or final.is_symlink():
                backup = temp_path(final, "bak")
                os.replace(final, backup)
                aside.append((final, backup))
        for staged, final in moves:
            current = final
            os.replace(staged, final)
            placed.append(final)
    except OSError as exc:
        _roll_back(placed, aside)
        reason = exc.strerror or str(exc)
        raise OutputPathError(
            current, f"could not put the new outputs in place ({reason}); previous outputs kept"
        ) from None
    except BaseException:
        _roll_back(placed, aside)
        raise
    for _, backup in aside:
        try:
            _remove(backup)
        except OSError as exc:
            log.warning("could not remove the previous output %s (%s)", backup, exc.strerror)
    for folder in {final.parent for _, final in moves}:
        _fsync(folder)


def _roll_back(placed: list[Path], aside: list[tuple[Path, Path]]) -> None:
    for final in reversed(placed):
        try:
            _remove(final)
        except OSError as exc:
            log.error("rollback: could not remove new output %s (%s)", final, exc.strerror)
    for final, backup in reversed(aside):
        try:
            os.replace(backup, final)
        except OSError as exc:
            log.error("rollback: could not restore %s from %s (%s)", final, backup, exc.strerror)


@contextlib.contextmanager
def staged_files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[dict[Path, Path]]:
    """Temporary names for a run's outputs (files, or folders the body creates there); they
    replace the final names together, or none do.

    Yields final path -> temporary path in the same folder (so each rename is atomic). After
    the body, every output is committed as one set (:func:`commit`); an output the body did not
    write is removed if a previous run left one under that name, so the set never mixes runs.
    On an error nothing changes, and folders created for the outputs are removed again.
    Leftover temporary files of killed runs in the output folders are removed first.
    """
    finals = [Path(p) for p in paths]
    created = _make_folders(dict.fromkeys(p.parent for p in finals))
    for folder in dict.fromkeys(p.parent for p in finals):
        remove_stale_temp_files(folder)
    staged = {p: temp_path(p, "tmp") for p in finals}
    done = False
    try:
        yield staged
        written = [(tmp, final) for final, tmp in staged.items() if tmp.exists()]
        unwritten = [final for final, tmp in staged.items() if not tmp.exists()]
        commit(written, remove=[p for p in unwritten if p.exists() or p.is_symlink()])
        done = True
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                _remove(tmp)
        if not done:
            _remove_empty(created)


@contextlib.contextmanager
def staged_output_dir(
    output_dir: str | os.PathLike[str], owned: Iterable[str] = ()
) -> Iterator[Path]:
    """Stage a stage's outputs in a temporary folder and move them into ``output_dir`` together.

    If the body or the move fails, ``output_dir`` is as it was (and not created if it was not
    there). ``owned`` names the files this stage writes: one of them that this run did not
    write is removed with the commit, so the folder never mixes the outputs of two runs. Other
    files in ``output_dir`` are left alone.
    """
    final = Path(output_dir)
    created = _make_folders([final.parent])
    remove_stale_temp_files(final.parent)
    if final.is_dir():
        remove_stale_temp_files(final)
    staging = temp_path(final, "staging")
    staging.mkdir()
    done = made_final = False
    try:
        yield staging
        if not final.exists():
            try:
                final.mkdir()
            except OSError as exc:
                raise OutputPathError(final, f"cannot create folder ({exc.strerror})") from None
            made_final = True
        items = sorted(staging.iterdir())
        written = {item.name for item in items}
        stale = [final / name for name in owned if name not in written]
        commit(
            [(item, final / item.name) for item in items],
            remove=[p for p in stale if p.is_file() or p.is_symlink()],
        )
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:
            if made_final:
                _remove_empty([final])
            _remove_empty(created)
