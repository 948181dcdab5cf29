"""SEG-Y seismic volumes with a label volume (facies classes or fault likelihoods), read section by section.

The seismic is read by :class:`geofm_hf.io.SegyReader`, the reader of ``geofm predict``: the (inline, crossline)
grid comes from the inline and crossline numbers of the trace headers (``iline_byte=``/``xline_byte=``, 189 and 193
by default), so unsorted files read correctly; missing traces read as zeros (and are counted in a warning), repeated
ones are refused. Sections are read one at a time, never the whole cube. The label volume is SEG-Y (any trace
order; the same inline and crossline numbers), a ``.npy`` (inline, crossline, sample) array, or a headerless
``.dat`` of the grid in inline-major order, samples fastest (``shape`` N_SAMPLES,N_CROSSLINE,N_INLINE in ``order=F``,
see :mod:`geofm_hf.io.arrays`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ...io import SegyReader, VolumeReader, open_volume
from ...io.options import as_float, canonical_options
from ...models.tasks import TaskSpec
from ..records import Section, register_source
from ._common import Slicing, only_file, relative, require_dir, require_file, volume_sections

SEGY_SUFFIXES = (".sgy", ".segy")
LABEL_SUFFIXES = (*SEGY_SUFFIXES, ".npy", ".dat")


def _label_options(path: Path, seismic: SegyReader, segy: dict[str, Any], dtype: Any, byte_order: Any) -> dict:
    """Options opening the label volume ``path`` on the seismic's grid."""
    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise ValueError(f"Label volume {path}: unsupported suffix; expected one of {', '.join(LABEL_SUFFIXES)}")
    if suffix in SEGY_SUFFIXES:
        return segy
    if suffix == ".dat":
        return dict(shape=seismic.shape[::-1], order="F", dtype=dtype, byte_order=byte_order)
    return {}


def _check_same_grid(seismic: SegyReader, labels: VolumeReader) -> None:
    """Refuse a label volume whose shape, or (for SEG-Y) line numbers, differ from the seismic's."""
    if labels.shape != seismic.shape:
        raise ValueError(
            f"Label {labels.name} has shape {labels.shape} but its image {seismic.name} has {seismic.shape}"
        )
    for axis, name in ((0, "inline"), (1, "crossline")):
        if isinstance(labels, SegyReader) and not np.array_equal(labels.axis_values(axis), seismic.axis_values(axis)):
            raise ValueError(f"Label {labels.name}: its {name} numbers differ from those of {seismic.name}")


def _open_pair(image: Path, label: Path, segy: dict[str, Any], dtype: Any, byte_order: Any, stack: ExitStack):
    seismic = stack.enter_context(SegyReader(image, **segy))
    labels = stack.enter_context(open_volume(label, **_label_options(label, seismic, segy, dtype, byte_order)))
    _check_same_grid(seismic, labels)
    return seismic, labels


def _segy_sections(open_pair, task: TaskSpec, slicing: Slicing, source: str, threshold: float | None) -> (
    Iterator[Section]
):
    with ExitStack() as stack:
        seismic, labels = open_pair(stack)
        yield from volume_sections(seismic, labels, task, slicing, source, threshold)


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
    iline_byte: str | int | None = None,
    xline_byte: str | int | None = None,
    byte_order: str | None = None,
    endian: str | None = None,
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
        iline_byte, xline_byte: trace-header bytes of the inline and crossline numbers (SEG-Y rev1: 189, 193).
        byte_order: of the SEG-Y files, ``big`` (the standard, default) or ``little``; ``endian`` is its older name.
        label_dtype, label_byte_order: sample type and byte order of a ``.dat`` label volume (float32, little).

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
    given = dict(iline_byte=iline_byte, xline_byte=xline_byte, byte_order=byte_order, endian=endian)
    segy = canonical_options({key: value for key, value in given.items() if value is not None}, "segy source")
    open_pair = partial(_open_pair, image_path, label_path, segy, label_dtype, label_byte_order)
    with ExitStack() as stack:  # fail on unreadable files or mismatched grids now
        open_pair(stack)
    slicing = Slicing.parse(axis, step, patch, stride)
    cutoff = None if threshold is None else as_float("threshold", threshold)
    return {"train": _segy_sections(open_pair, task, slicing, relative(image_path, root), cutoff)}
