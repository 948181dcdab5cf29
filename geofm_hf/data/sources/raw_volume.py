"""Headerless binary arrays (``.dat``): 2-D sections or 3-D volumes of known shape, dtype and byte order.

Shapes are given as ``shape=n1,n2[,n3]`` with n1 the samples of a trace (depth or time), n2 the traces of a section
and n3 the sections of a volume. ``order=F`` (the default) means n1 varies fastest in the file, the convention of
Madagascar, the Mines Java Toolkit and the OSV fault data (``np.fromfile(f, ">f4").reshape(n2, n1).T``);
``order=C`` means the last dimension varies fastest. Files are memory-mapped and read one section at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...tasks import TASKS, TaskSpec
from ..records import Section, register_source
from ._common import (
    ArrayVolume,
    Slicing,
    check_finite,
    cut,
    list_files,
    pair_up,
    relative,
    require_dir,
    stems,
    to_class_ids,
    volume_sections,
)
from ._options import BYTE_ORDERS, as_choice, as_dtype, as_float, as_ints


def memmap_raw(path: Path, shape: tuple[int, ...], dtype: np.dtype, order: str) -> np.memmap:
    """Memory-map a headerless array, checking first that the file holds exactly ``shape`` of ``dtype``.

    Raises:
        ValueError: naming the file, the expected and the actual number of bytes.
    """
    expected = int(np.prod(shape)) * dtype.itemsize
    actual = Path(path).stat().st_size
    if actual != expected:
        raise ValueError(
            f"{path}: file holds {actual} bytes but shape {','.join(map(str, shape))} of {dtype.name} needs "
            f"{expected}; check shape= and dtype="
        )
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, order=order)


def _dat_pairs(root: Path, image: Any, label: Any) -> list[tuple[Path, Path]]:
    """Resolve ``image=``/``label=``: two files, or two folders whose ``.dat`` files pair by name."""
    if image is None or label is None:
        raise ValueError("The dat source needs image=FILE_OR_FOLDER and label=FILE_OR_FOLDER (inside --input)")
    image_path, label_path = root / str(image), root / str(label)
    if image_path.is_dir() and label_path.is_dir():
        images = stems(list_files(image_path, (".dat",), "image files"))
        labels = stems(list_files(label_path, (".dat",), "label files"))
        return [(i, lab) for _, i, lab in pair_up(images, labels, str(image_path), str(label_path))]
    for path, option in ((image_path, "image"), (label_path, "label")):
        if not path.is_file():
            raise FileNotFoundError(f"Option {option}={path.name!r}: {path} is not a file (or both must be folders)")
    return [(image_path, label_path)]


def _volume(path: Path, array: np.ndarray) -> ArrayVolume:
    # (n1, n2, n3) -> (inline=n3, crossline=n2, sample=n1): a transposed view, still a lazy memory map.
    return ArrayVolume(path, array.transpose(2, 1, 0))


def _dat_sections(
    pairs: list[tuple[Path, Path]],
    root: Path,
    task: TaskSpec,
    layout: tuple[tuple[int, ...], np.dtype, np.dtype, str],
    slicing: Slicing,
    threshold: float | None,
) -> Iterator[Section]:
    shape, image_dtype, label_dtype, order = layout
    for image_path, label_path in pairs:
        image = memmap_raw(image_path, shape, image_dtype, order)
        label = memmap_raw(label_path, shape, label_dtype, order)
        source = relative(image_path, root)
        if len(shape) == 3:
            yield from volume_sections(
                _volume(image_path, image), _volume(label_path, label), task, slicing, source, threshold
            )
            continue
        section = Section(
            image=check_finite(image, source),
            label=to_class_ids(label, task.num_labels, str(label_path), threshold=threshold),
            source_file=source,
        )
        yield from cut([section], slicing.patch, slicing.stride)


@register_source(
    "dat",
    tasks=tuple(TASKS),
    description="Headerless binary 2-D sections or 3-D volumes (.dat) with a label file of the same layout",
)
def read_dat(
    input_dir: Path,
    task: TaskSpec,
    *,
    image: str | None = None,
    label: str | None = None,
    shape: str | None = None,
    dtype: str = "float32",
    label_dtype: str | None = None,
    byte_order: str = "little",
    order: str = "F",
    axis: str = "both",
    step: str | int = 1,
    patch: str | None = None,
    stride: str | None = None,
    threshold: str | float | None = None,
) -> dict[str, Iterator[Section]]:
    """Read ``.dat`` images and labels; 2-D files give one section each, 3-D files give sections along ``axis``.

    Args:
        input_dir: folder holding the files.
        task: task the labels belong to.
        image: image file, or folder of ``.dat`` files, relative to ``input_dir``.
        label: label file, or folder of ``.dat`` files paired with the images by name.
        shape: ``n1,n2`` or ``n1,n2,n3`` (n1 = samples per trace).
        dtype: numpy dtype of the images; ``label_dtype`` that of the labels (default: ``dtype``).
        byte_order: ``little`` or ``big`` (the OSV and Java-written files are big-endian).
        order: ``F`` (n1 fastest, default) or ``C``.
        axis, step, patch, stride: slicing of 3-D volumes, see :class:`~geofm_hf.data.sources._common.Slicing`.
        threshold: binarise float likelihood labels (``label > threshold``), e.g. ``0.5`` for fault likelihoods.

    Returns:
        ``{"train": sections}``, streamed from memory maps.
    """
    root = require_dir(input_dir)
    if shape is None:
        raise ValueError("The dat source needs shape=n1,n2[,n3] (n1 = samples per trace)")
    byte = as_choice("byte_order", byte_order, tuple(BYTE_ORDERS))
    layout = (
        as_ints("shape", shape, (2, 3)),
        as_dtype("dtype", dtype, byte),
        as_dtype("label_dtype", label_dtype or dtype, byte),
        as_choice("order", order, ("c", "f")).upper(),
    )
    pairs = _dat_pairs(root, image, label)
    for image_path, label_path in pairs:  # fail on a wrong size now, not halfway through a conversion
        memmap_raw(image_path, layout[0], layout[1], layout[3])
        memmap_raw(label_path, layout[0], layout[2], layout[3])
    slicing = Slicing.parse(axis, step, patch, stride)
    cutoff = None if threshold is None else as_float("threshold", threshold)
    return {"train": _dat_sections(pairs, root, task, layout, slicing, cutoff)}
