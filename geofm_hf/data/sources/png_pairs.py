"""Image/label PNG pairs: ``images/NAME.png`` with ``labels/NAME.png`` holding one class id per pixel.

Split sub-folders (``train/``, ``valid/``, ``test/``) each holding the two folders are read as those splits. Label
PNGs must store class ids (grey-level, palette or 16-bit), not colours; ``label_map`` renumbers or merges ids of
sources with other class sets (e.g. Penobscot's 8 intervals into the facies task's 6 classes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from ...models.tasks import TASKS, TaskSpec
from ..records import Section, register_source
from ._common import (
    check_same_shape,
    cut,
    list_files,
    pair_up,
    parse_patch,
    read_grey,
    read_ids,
    relative,
    split_folders,
    stems,
    to_class_ids,
)
from ...io.options import as_label_map


def _png_sections(
    pairs: list[tuple[str, Path, Path]],
    root: Path,
    task: TaskSpec,
    label_map: Mapping[int, int] | None,
) -> Iterator[Section]:
    for _, image_path, label_path in pairs:
        image = read_grey(image_path)
        ids = read_ids(label_path)
        check_same_shape(image_path, image.shape, label_path, ids.shape)
        yield Section(
            image=image,
            label=to_class_ids(ids, task.num_labels, str(label_path), label_map=label_map),
            source_file=relative(image_path, root),
        )


@register_source(
    "png",
    tasks=tuple(TASKS),
    description="Image/label PNG pairs (images/NAME.png + labels/NAME.png of class ids), optional split folders",
)
def read_png_pairs(
    input_dir: Path,
    task: TaskSpec,
    *,
    images: str = "images",
    labels: str = "labels",
    label_map: str | None = None,
    patch: str | None = None,
    stride: str | None = None,
) -> dict[str, Iterator[Section]]:
    """Read PNG image/label pairs matched by file name.

    Args:
        input_dir: folder holding ``images``/``labels`` folders, or split folders that each hold them.
        task: task whose class count the labels must fit.
        images, labels: names of the image and label folders.
        label_map: ``source:target,...`` class-id mapping applied to the label PNGs (every id present must be mapped).
        patch, stride: cut every image into ``patch=H,W`` tiles every ``stride=SH,SW`` (default: whole images).

    Returns:
        Split name -> sections (``{"train": ...}`` without split folders).
    """
    mapping = None if label_map is None else as_label_map("label_map", label_map)
    patch_size, patch_stride = parse_patch(patch, stride)
    plan = {}
    for split, folder in split_folders(Path(input_dir)).items():
        image_dir, label_dir = folder / images, folder / labels
        plan[split] = pair_up(
            stems(list_files(image_dir, (".png",), "images")),
            stems(list_files(label_dir, (".png",), "label images")),
            str(image_dir),
            str(label_dir),
        )
    return {
        split: cut(_png_sections(pairs, Path(input_dir), task, mapping), patch_size, patch_stride)
        for split, pairs in plan.items()
    }
