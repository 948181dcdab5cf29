"""Writing files and folders so that readers never see them half-written: build beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path


def make_temp_path(path: str | os.PathLike) -> str:
    """Create an empty hidden file next to ``path`` (same file system, so a rename moves it into place atomically).

    Unlike ``tempfile.mkstemp`` (mode 0600) the file gets the permissions the umask gives any new file, which the
    final output keeps.
    """
    folder, name = os.path.split(os.path.abspath(path))
    temp_path = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.partial")
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
        """Finish the temporary file and rename it to the destination."""
        self._close()
        os.replace(self.temp_path, self.path)

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
        else:
            self.abort()


def swap_in_folder(staging: Path, folder: Path) -> None:
    """Rename a finished ``staging`` folder to ``folder``; an existing ``folder`` is moved aside first (a folder cannot
    be renamed over a non-empty one) and restored if the rename fails."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    aside = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
    os.replace(folder, aside / folder.name)
    try:
        os.replace(staging, folder)
    except BaseException:
        os.replace(aside / folder.name, folder)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


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
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp: its 0700 mode would stick to the published folder.
    staging = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        swap_in_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = ["AtomicOutput", "make_temp_path", "refuse_existing", "staged_folder", "swap_in_folder", "write_atomically"]
