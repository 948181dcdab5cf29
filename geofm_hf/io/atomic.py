"""Writing files and folders so that readers never see them half-written: build beside the target, then rename.

Every temporary path is a hidden sibling of its target whose name carries the writer's process id
(``.<name>.<pid>-<random>.partial``, ``.<name>.tmp-<pid>-<random>``, ``.<name>.old-<pid>-<random>``). An exception,
Ctrl-C or SIGTERM (see `geofm_hf.cli.errors`) removes it on the way out; after a kill -9, the next write of the same
target removes what the dead process left (:func:`remove_stale_siblings`).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

# A temporary path older than this is stale even if a process of its recorded id runs (ids are reused, and a path
# on a shared file system may belong to another machine's process).
STALE_AFTER_SECONDS = 24 * 3600
_TEMPORARY_KINDS = r"(?:(?P<partial_pid>\d+)-[0-9a-f]+\.partial|(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]+)"


def _temporary_name(target: str | os.PathLike, kind: str) -> str:
    """A hidden sibling's name for ``target``: ``kind`` is ``partial`` (a file), ``tmp`` (staging) or ``old`` (aside)."""
    name, tag = os.path.basename(os.path.abspath(target)), f"{os.getpid()}-{secrets.token_hex(4)}"
    return f".{name}.{tag}.partial" if kind == "partial" else f".{name}.{kind}-{tag}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_siblings(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``target`` that a killed writer left (its process is gone, or the path is
    older than :data:`STALE_AFTER_SECONDS`); those of a running writer are kept, and named in a warning.

    A previous ``target`` folder moved aside by a writer killed before its replacement was renamed in is put back,
    not removed.

    Returns:
        `list[Path]`: the paths removed (or put back).
    """
    target = Path(os.path.abspath(target))
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.{_TEMPORARY_KINDS}$")
    removed = []
    for path in target.parent.glob(f".{glob.escape(target.name)}.*") if target.parent.is_dir() else ():
        match = pattern.match(path.name)
        if match is None:
            continue
        pid = int(match.group("partial_pid") or match.group("pid"))
        try:
            age = time.time() - path.lstat().st_mtime
        except FileNotFoundError:
            continue
        if pid == os.getpid() and age < STALE_AFTER_SECONDS:
            continue
        if _process_alive(pid) and age < STALE_AFTER_SECONDS:
            logger.warning("%s is being written by process %d; left as it is", path, pid)
            continue
        if match.group("kind") == "old" and not target.exists():
            os.replace(path, target)
            logger.warning("Restored %s from %s, moved aside by an interrupted earlier run", target, path)
        else:
            _remove_path(path)
            logger.warning("Removed %s, left by an interrupted earlier run (process %d)", path, pid)
        removed.append(path)
    return removed


def make_temp_path(path: str | os.PathLike) -> str:
    """Create an empty hidden file next to ``path`` (same file system, so a rename moves it into place atomically),
    after removing what killed writers of ``path`` left there; the folder is created if needed.

    Unlike ``tempfile.mkstemp`` (mode 0600) the file gets the permissions the umask gives any new file, which the
    final output keeps.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_siblings(path)
    temp_path = os.path.join(folder, _temporary_name(path, "partial"))
    os.close(os.open(temp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    return temp_path


def refuse_existing(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise ``FileExistsError`` when ``path`` exists and ``overwrite`` is not set."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{os.fspath(path)} already exists; pass overwrite=True (--overwrite) to replace it")


def write_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write`` on a hidden sibling of ``path``, then rename it to ``path``: readers never see half a file.

    Args:
        path: the file to produce; its folder is created if needed.
        write: writes the whole file at the path it is given.

    Returns:
        `Path`: ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(make_temp_path(path))
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


class AtomicOutput(ABC):
    """An output written to a temporary file in the destination's folder and renamed into place on :meth:`commit`.

    Use as a context manager: leaving the block normally commits, an exception deletes the temporary file, so a
    failed or interrupted run never leaves a half-written output under the final name.

    Args:
        path: destination.
        overwrite: replace an existing file (otherwise ``FileExistsError``).
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False):
        self.path = os.fspath(path)
        refuse_existing(self.path, overwrite)
        self.temp_path = make_temp_path(self.path)
        try:
            self._open()
        except BaseException:
            os.unlink(self.temp_path)
            raise

    @abstractmethod
    def _open(self) -> None:
        """Open ``self.temp_path`` for writing."""

    @abstractmethod
    def _close(self) -> None:
        """Finish and close the temporary file."""

    def commit(self) -> None:
        """Finish the temporary file and rename it to the destination; if either fails, the temporary file is
        deleted and the destination keeps its previous content."""
        try:
            self._close()
            os.replace(self.temp_path, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_path)
            raise

    def abort(self) -> None:
        """Close and delete the temporary file."""
        self._close()
        if os.path.exists(self.temp_path):
            os.unlink(self.temp_path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.commit()
            return
        try:
            self.abort()
        except Exception:
            # The error that ended the block is the one to report; the file is gone or will be found stale.
            logger.warning("Could not remove %s", self.temp_path, exc_info=True)


def swap_in_folder(staging: Path, folder: Path) -> None:
    """Rename a finished ``staging`` folder to ``folder``; an existing ``folder`` is moved aside first (a folder cannot
    be renamed over a non-empty one) and restored if the rename fails."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    aside = folder.parent / _temporary_name(folder, "old")
    os.replace(folder, aside)
    try:
        os.replace(staging, folder)
    except BaseException:
        os.replace(aside, folder)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _new_sibling_folder(target: Path) -> Path:
    """A new hidden, pid-tagged folder beside ``target``, after removing what killed writers of ``target`` left."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    # Not mkdtemp: its 0700 mode would stick to a published folder.
    folder = target.parent / _temporary_name(target, "tmp")
    folder.mkdir()
    return folder


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder next to ``folder``; when the block succeeds it replaces ``folder``, when it fails
    it is deleted.

    Readers never see a half-written ``folder``: it is either missing, the previous one, or complete.

    Args:
        folder: final folder; must be missing or empty unless ``overwrite``.
        overwrite: replace an existing non-empty ``folder``.

    Raises:
        FileExistsError: ``folder`` is a file, or a non-empty folder and ``overwrite`` is False.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"The output {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(
            f"The output folder {folder} is not empty; use --overwrite (overwrite=True) to replace it"
        )
    staging = _new_sibling_folder(folder)
    try:
        yield staging
        swap_in_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def scratch_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden working folder next to ``target`` (e.g. a prediction's on-disk accumulator), removed when the
    block ends, however it ends; one left by a killed process is removed by the next writer of ``target``
    (:func:`remove_stale_siblings`), which a folder in the system's temporary directory would never be."""
    folder = _new_sibling_folder(Path(target))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = [
    "STALE_AFTER_SECONDS",
    "AtomicOutput",
    "make_temp_path",
    "refuse_existing",
    "remove_stale_siblings",
    "scratch_folder",
    "staged_folder",
    "swap_in_folder",
    "write_atomically",
]

