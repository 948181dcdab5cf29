"""Headerless binary arrays (``.dat``): 2-D sections or 3-D volumes of known shape, dtype and byte order.

Files are opened with :func:`geofm_hf.io.open_raw`, exactly as ``geofm predict`` opens them, with the same options:
``shape=n1,n2[,n3]`` with n1 the samples of a trace (depth or time), n2 the traces of a section and n3 the sections
of a volume; ``order=F`` (the default) means n1 varies fastest in the file, the convention of Madagascar, the Mines
Java Toolkit and the OSV fault data (``np.fromfile(f, ">f4").reshape(n2, n1).T``), ``order=C`` that the last
dimension does. Volumes are read one section at a time with bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...io import open_raw, raw_layout
from ...io.options import as_float, as_ints
from ...models.tasks import TASKS, TaskSpec
from ..records import Section, register_source
from ._common import (
    Slicing,
    as_finite_float32,
    cut,
    list_files,
    pair_up,
    relative,
    require_dir,
    stems,
    to_class_ids,
    volume_sections,
)


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


def _dat_sections(
    pairs: list[tuple[Path, Path]],
    root: Path,
    task: TaskSpec,
    layouts: tuple[dict[str, Any], dict[str, Any]],
    slicing: Slicing,
    threshold: float | None,
) -> Iterator[Section]:
    image_layout, label_layout = layouts
    volumes = len(as_ints("shape", image_layout["shape"], (2, 3))) == 3
    for image_path, label_path in pairs:
        source = relative(image_path, root)
        if volumes:
            with open_raw(image_path, **image_layout) as image, open_raw(label_path, **label_layout) as label:
                yield from volume_sections(image, label, task, slicing, source, threshold)
            continue
        section = Section(
            image=as_finite_float32(open_raw(image_path, **image_layout), source),
            label=to_class_ids(open_raw(label_path, **label_layout), task.num_labels, str(label_path),
                               threshold=threshold),
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
        order: ``F`` (n1 fastest, default) or ``C`` (the last dimension fastest).
        axis, step, patch, stride: slicing of 3-D volumes, see :class:`~geofm_hf.data.sources._common.Slicing`.
        threshold: binarise float likelihood labels (``label > threshold``), e.g. ``0.5`` for fault likelihoods.

    Returns:
        ``{"train": sections}``, streamed one section at a time.
    """
    root = require_dir(input_dir)
    if shape is None:
        raise ValueError("The dat source needs shape=n1,n2[,n3] (n1 = samples per trace)")
    image_layout = dict(shape=shape, dtype=dtype, byte_order=byte_order, order=order)
    label_layout = {**image_layout, "dtype": label_dtype or dtype}
    pairs = _dat_pairs(root, image, label)
    for image_path, label_path in pairs:  # fail on a bad option or a wrong size now, not halfway through
        raw_layout(image_path, **image_layout)
        raw_layout(label_path, **label_layout)
    slicing = Slicing.parse(axis, step, patch, stride)
    cutoff = None if threshold is None else as_float("threshold", threshold)
    return {"train": _dat_sections(pairs, root, task, (image_layout, label_layout), slicing, cutoff)}
