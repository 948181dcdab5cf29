"""SEG-Y seismic volumes with a label volume (facies classes or fault likelihoods), read section by section.

The seismic is opened with segyio; its geometry (inline/crossline counts and trace sorting) comes from the trace
headers, or for irregular files from ``ignore_geometry=true shape=N_INLINE,N_CROSSLINE`` (traces then in inline-major
order). Each section is read as one block of traces (``f.trace.raw[...]``): the cube is never loaded whole. The label
volume is SEG-Y of the same geometry, a ``.npy`` (inline, crossline, sample) array or a headerless ``.dat`` file in
trace order (sample fastest), both memory-mapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import segyio

from ...tasks import TaskSpec
from ..records import Section, register_source
from ._common import (
    ArrayVolume,
    Slicing,
    Volume,
    check_same_shape,
    only_file,
    relative,
    require_dir,
    require_file,
    volume_sections,
)
from ._options import BYTE_ORDERS, as_bool, as_choice, as_dtype, as_float, as_int, as_ints
from .npy_volume import load_npy
from .raw_volume import memmap_raw

SEGY_SUFFIXES = (".sgy", ".segy")
_SHAPE_HINT = "shape=N_INLINE,N_CROSSLINE"


@dataclass(frozen=True)
class SegyGeometry:
    """How to open a SEG-Y file: header bytes of the line numbers, or a given shape for irregular files."""

    iline_byte: int = 189
    xline_byte: int = 193
    endian: str = "big"
    shape: tuple[int, int] | None = None  # (n_inline, n_crossline) when the headers' geometry is ignored


@dataclass
class SegyVolume:
    """An open SEG-Y file seen as an (inline, crossline, sample) volume.

    Attributes:
        inline_sorted: traces run along crosslines within each inline (segyio's INLINE_SORTING); else the reverse.
    """

    path: Path
    handle: segyio.SegyFile
    shape: tuple[int, int, int]
    inline_sorted: bool

    def section(self, axis: str, index: int) -> np.ndarray:
        n_inline, n_crossline, _ = self.shape
        fast = n_crossline if self.inline_sorted else n_inline
        if (axis == "inline") == self.inline_sorted:
            traces = slice(index * fast, (index + 1) * fast)  # one contiguous block of traces
        else:
            traces = slice(index, None, fast)  # every fast-th trace
        return self.handle.trace.raw[traces].T


def _shape(path: Path, handle: segyio.SegyFile, geometry: SegyGeometry) -> tuple[tuple[int, int, int], bool]:
    n_samples = len(handle.samples)
    if geometry.shape is not None:
        n_inline, n_crossline = geometry.shape
        if n_inline * n_crossline != handle.tracecount:
            raise ValueError(
                f"{path}: shape={n_inline},{n_crossline} needs {n_inline * n_crossline} traces, the file has "
                f"{handle.tracecount}"
            )
        return (n_inline, n_crossline, n_samples), True
    if len(handle.offsets) > 1:
        raise ValueError(f"{path}: {len(handle.offsets)} offsets per trace location; expected a post-stack volume")
    if handle.unstructured:
        raise ValueError(f"{path}: no inline/crossline geometry; pass ignore_geometry=true {_SHAPE_HINT}")
    shape = (len(handle.ilines), len(handle.xlines), n_samples)
    return shape, handle.sorting == segyio.TraceSortingFormat.INLINE_SORTING


@contextmanager
def open_segy(path: Path, geometry: SegyGeometry) -> Iterator[SegyVolume]:
    """Open ``path`` as a :class:`SegyVolume`; unreadable or irregular files raise ``ValueError`` naming the file."""
    try:
        handle = segyio.open(
            str(path),
            "r",
            iline=geometry.iline_byte,
            xline=geometry.xline_byte,
            ignore_geometry=geometry.shape is not None,
            endian=geometry.endian,
        )
    except (RuntimeError, ValueError, OSError) as error:
        hint = "" if geometry.shape else f"; if its geometry is irregular pass ignore_geometry=true {_SHAPE_HINT}"
        raise ValueError(f"{path}: cannot read as SEG-Y ({error}){hint}") from None
    with handle:
        shape, inline_sorted = _shape(path, handle, geometry)
        yield SegyVolume(path, handle, shape, inline_sorted)


def _segy_labels(path: Path, shape: tuple[int, int, int], geometry: SegyGeometry, dat_dtype: np.dtype) -> (
    AbstractContextManager[Volume]
):
    return open_segy(path, geometry)


def _npy_labels(path: Path, shape: tuple[int, int, int], geometry: SegyGeometry, dat_dtype: np.dtype) -> (
    AbstractContextManager[Volume]
):
    return nullcontext(ArrayVolume(path, load_npy(path, 3)))


def _dat_labels(path: Path, shape: tuple[int, int, int], geometry: SegyGeometry, dat_dtype: np.dtype) -> (
    AbstractContextManager[Volume]
):
    # Trace order with the sample fastest is a C-ordered (inline, crossline, sample) array.
    return nullcontext(ArrayVolume(path, memmap_raw(path, shape, dat_dtype, "C")))


# Label volume formats by suffix: each opener gets the seismic's shape and geometry.
LABEL_OPENERS = {".sgy": _segy_labels, ".segy": _segy_labels, ".npy": _npy_labels, ".dat": _dat_labels}


@contextmanager
def _open_pair(image: Path, label: Path, geometry: SegyGeometry, dat_dtype: np.dtype) -> Iterator[
    tuple[SegyVolume, Volume]
]:
    with ExitStack() as stack:
        seismic = stack.enter_context(open_segy(image, geometry))
        opener = LABEL_OPENERS.get(label.suffix.lower())
        if opener is None:
            raise ValueError(f"Label volume {label}: unsupported suffix; expected one of {', '.join(LABEL_OPENERS)}")
        labels = stack.enter_context(opener(label, seismic.shape, geometry, dat_dtype))
        yield seismic, labels


def _segy_sections(
    open_pair: Callable[[], AbstractContextManager[tuple[SegyVolume, Volume]]],
    task: TaskSpec,
    slicing: Slicing,
    source: str,
    threshold: float | None,
) -> Iterator[Section]:
    with open_pair() as (seismic, labels):
        yield from volume_sections(seismic, labels, task, slicing, source, threshold)


def _geometry(ignore_geometry: Any, shape: Any, iline_byte: Any, xline_byte: Any, endian: Any) -> SegyGeometry:
    ignore = as_bool("ignore_geometry", ignore_geometry)
    if ignore != (shape is not None):
        raise ValueError(f"Options ignore_geometry=true and {_SHAPE_HINT} go together")
    return SegyGeometry(
        iline_byte=as_int("iline_byte", iline_byte, minimum=1),
        xline_byte=as_int("xline_byte", xline_byte, minimum=1),
        endian=as_choice("endian", endian, tuple(BYTE_ORDERS)),
        shape=as_ints("shape", shape, (2,)) if ignore else None,
    )


@register_source(
    "segy",
    tasks=("seismic-facies", "fault"),
    description="SEG-Y seismic volume + label volume (SEG-Y, .npy or .dat), cut into inline/crossline sections",
)
def read_segy(
    input_dir: Path,
    task: TaskSpec,
    *,
    image: str | None = None,
    label: str | None = None,
    axis: str = "both",
    step: str | int = 1,
    patch: str | None = None,
    stride: str | None = None,
    threshold: str | float | None = None,
    ignore_geometry: str | bool = False,
    shape: str | None = None,
    iline_byte: str | int = 189,
    xline_byte: str | int = 193,
    endian: str = "big",
    label_dtype: str = "float32",
    label_byte_order: str = "little",
) -> dict[str, Iterator[Section]]:
    """Read a SEG-Y volume and its labels as 2-D sections, streaming one section at a time.

    Args:
        input_dir: folder holding the files.
        task: ``seismic-facies`` (class-id labels) or ``fault`` (ids, or likelihoods with ``threshold``).
        image: the seismic SEG-Y file in ``input_dir`` (default: the only SEG-Y file there besides ``label``).
        label: the label volume in ``input_dir`` (required): ``.sgy``/``.segy``, ``.npy`` or ``.dat``.
        axis, step, patch, stride: slicing, see :class:`~geofm_hf.data.sources._common.Slicing`.
        threshold: binarise likelihood labels (``label > threshold``).
        ignore_geometry, shape: read an irregular file as ``shape=N_INLINE,N_CROSSLINE`` traces in inline-major order.
        iline_byte, xline_byte: trace-header bytes of the inline and crossline numbers (SEG-Y rev1: 189, 193).
        endian: byte order of the SEG-Y files (``big``, the standard, or ``little``).
        label_dtype, label_byte_order: layout of a ``.dat`` label volume.

    Returns:
        ``{"train": sections}``.
    """
    root = require_dir(input_dir)
    if label is None:
        raise ValueError("The segy source needs label=FILE: the label volume (.sgy, .segy, .npy or .dat) in --input")
    label_path = require_file(root / str(label), "label volume")
    image_path = (
        require_file(root / str(image), "seismic SEG-Y file")
        if image is not None
        else only_file(root, SEGY_SUFFIXES, "image", "SEG-Y files", exclude=label_path)
    )
    geometry = _geometry(ignore_geometry, shape, iline_byte, xline_byte, endian)
    label_order = as_choice("label_byte_order", label_byte_order, tuple(BYTE_ORDERS))
    dat_dtype = as_dtype("label_dtype", label_dtype, label_order)
    open_pair = partial(_open_pair, image_path, label_path, geometry, dat_dtype)
    with open_pair() as (seismic, labels):  # fail on unreadable files or mismatched shapes now
        check_same_shape(image_path, seismic.shape, label_path, labels.shape)
    slicing = Slicing.parse(axis, step, patch, stride)
    cutoff = None if threshold is None else as_float("threshold", threshold)
    return {"train": _segy_sections(open_pair, task, slicing, relative(image_path, root), cutoff)}
