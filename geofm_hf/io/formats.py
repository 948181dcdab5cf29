"""Opening any survey or section by its suffix, and creating an output of the same kind.

``geofm predict`` and the dataset converters open their inputs here, with the options of
:mod:`~geofm_hf.io.options` (``shape``, ``order``, ``dtype``, ``byte_order`` for raw ``.dat``; ``iline_byte``,
``xline_byte``, ``byte_order`` for SEG-Y), so a file reads the same whichever command reads it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .arrays import create_npy, create_raw, open_npy, open_raw, open_raw_output
from .atomic import AtomicOutput
from .options import canonical_options
from .segy import SegyReader, SegyWriter
from .volumes import VolumeReader


def _open_image(path: str) -> np.ndarray:
    with Image.open(path) as image:
        # Colour pictures become grey: the models take single-channel amplitudes.
        grey = image if image.mode in ("L", "I", "I;16", "F") else image.convert("L")
        return np.asarray(grey, dtype=np.float32)


INPUT_FORMATS: dict[str, Callable[..., VolumeReader | np.ndarray]] = {
    ".sgy": SegyReader,
    ".segy": SegyReader,
    ".npy": open_npy,
    ".dat": open_raw,
    ".png": _open_image,
    ".tif": _open_image,
    ".tiff": _open_image,
    ".jpg": _open_image,
    ".jpeg": _open_image,
}


def _accepted_options(opener: Callable) -> list[str]:
    return list(inspect.signature(opener).parameters)[1:]


def open_input(path: str | os.PathLike, **options: Any) -> VolumeReader | np.ndarray:
    """Open a survey: a 2-D section comes back as an array, a volume as a :class:`VolumeReader`.

    Args:
        path: ``.sgy``/``.segy``, ``.npy``, raw ``.dat`` or a picture (``.png``, ``.tif``, ``.jpg``).
        **options: of the format: ``shape``, ``order``, ``dtype`` and ``byte_order`` for raw ``.dat`` (see
            :mod:`~geofm_hf.io.arrays`); ``iline_byte``, ``xline_byte`` and ``byte_order`` for SEG-Y.

    Raises:
        ValueError: unknown suffix, an option the format does not take, or a file the options do not fit.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    opener = INPUT_FORMATS.get(suffix)
    if opener is None:
        raise ValueError(f"{path}: unknown input type; expected one of {sorted(INPUT_FORMATS)}")
    options = canonical_options(options, path)
    accepted = _accepted_options(opener)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{path}: option(s) {', '.join(unknown)} do not apply to {suffix} input; "
            f"its options are: {', '.join(accepted) or 'none'}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    return opener(path, **options)


def open_volume(path: str | os.PathLike, **options: Any) -> VolumeReader:
    """:func:`open_input` for a file that must hold an ``(inline, crossline, time)`` volume."""
    data = open_input(path, **options)
    if not isinstance(data, VolumeReader) or len(data.shape) != 3:
        if isinstance(data, VolumeReader):
            data.close()
        raise ValueError(f"{path}: expected a 3-D volume (inline, crossline, time); got shape {tuple(data.shape)}")
    return data


def _create_npy(path, shape, dtype, template, section, overwrite) -> AtomicOutput:
    return create_npy(path, shape, dtype, overwrite=overwrite)


def _create_raw(path, shape, dtype, template, section, overwrite) -> AtomicOutput:
    return create_raw(path, shape, section=section, overwrite=overwrite)


def _create_segy(path, shape, dtype, template, section, overwrite) -> AtomicOutput:
    if not isinstance(template, SegyReader):
        raise ValueError(f"{path}: SEG-Y output copies the geometry of a SEG-Y input; the input is not SEG-Y")
    if tuple(shape) != template.shape:
        raise ValueError(
            f"{path}: SEG-Y output holds one value per input sample, shape {template.shape}; got {tuple(shape)} "
            "(choose labels or the probabilities of one class)"
        )
    return SegyWriter(path, template, overwrite)


OUTPUT_FORMATS: dict[str, Callable[..., AtomicOutput]] = {
    ".npy": _create_npy,
    ".dat": _create_raw,
    ".sgy": _create_segy,
    ".segy": _create_segy,
}


def create_output(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    template: VolumeReader | None = None,
    overwrite: bool = False,
    section: bool = False,
) -> AtomicOutput:
    """A writer for ``path`` chosen by its suffix; use it as a context manager.

    Args:
        path: ``.npy`` (keeps ``dtype``), ``.dat`` (little-endian float32, time varying fastest: read it back with
            the input's ``shape`` and ``order=F``) or ``.sgy``/``.segy`` (float32, needs a SEG-Y ``template`` whose
            headers and geometry it copies).
        shape: of the values to store.
        dtype: of the values to store, where the format can keep it.
        template: the input reader.
        overwrite: replace an existing file (otherwise ``FileExistsError``).
        section: the values are a 2-D section ``(..., time, trace)`` rather than a volume
            ``(..., inline, crossline, time)``.
    """
    path = os.fspath(path)
    factory = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if factory is None:
        raise ValueError(f"{path}: unknown output type; expected one of {sorted(OUTPUT_FORMATS)}")
    return factory(path, tuple(shape), np.dtype(dtype), template, section, overwrite)


def open_output(path: str | os.PathLike, shape: tuple[int, ...]) -> VolumeReader:
    """Re-open a volume output written by :func:`create_output`, ``shape`` as given to it (class axes included)."""
    if Path(path).suffix.lower() == ".dat":
        return open_raw_output(path, shape)
    return open_input(path)


__all__ = ["INPUT_FORMATS", "OUTPUT_FORMATS", "create_output", "open_input", "open_output", "open_volume"]
