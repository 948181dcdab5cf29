"""Writing files and folders so that readers never see them half-written: build beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path


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
    # A pid-suffixed sibling (not mkstemp, whose 0600 mode would survive the rename) keeps the usual permissions.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


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
        raise FileExistsError(f"The output folder {folder} is not empty; use --overwrite (overwrite=True) to replace it")
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
