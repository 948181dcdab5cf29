"""The TGS Salt Identification Challenge (Kaggle, 2018) in the layout Kaggle ships.

``train/images/<id>.png`` are 101x101 8-bit patches (R=G=B), ``train/masks/<id>.png`` the salt masks (mode L or
I;16, salt = value > 0), ``train.csv`` the same masks run-length encoded and ``depths.csv`` the depth of each patch.
Patches keep their native 101x101 size: the study's 224x224 inputs are of unknown provenance (resizing, if wanted,
belongs to the image processor, not to the stored dataset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ...models.tasks import TaskSpec
from ..records import Section, register_source
from ._common import (
    find_column,
    list_files,
    numbers,
    pair_up,
    read_grey,
    read_ids,
    read_rows,
    relative,
    require_dir,
    stems,
    to_class_ids,
)
from ...io.options import as_choice

MaskDecoder = Callable[[str, Path | str, tuple[int, int]], np.ndarray]


def rle_decode(rle: str, shape: tuple[int, int], source: str) -> np.ndarray:
    """Decode a Kaggle run-length mask into a uint8 (rows, columns) array of 0/1.

    The string holds ``start length`` pairs; starts are 1-indexed and pixels are numbered down the columns
    (column-major), so pixel ``k`` is row ``(k - 1) % rows``, column ``(k - 1) // rows``. An empty string is an
    empty mask.

    Raises:
        ValueError: odd number of values, non-integers, or runs outside the image, naming ``source``.
    """
    values = rle.split()
    size = shape[0] * shape[1]
    try:
        runs = np.asarray(values, dtype=np.int64).reshape(-1, 2)
    except ValueError:
        raise ValueError(f"{source}: run-length mask must be pairs of integers 'start length', got {rle!r}") from None
    flat = np.zeros(size, dtype=np.uint8)
    for start, length in runs:
        if start < 1 or length < 1 or start - 1 + length > size:
            raise ValueError(f"{source}: run {start} {length} lies outside a {shape[0]}x{shape[1]} image")
        flat[start - 1 : start - 1 + length] = 1
    return flat.reshape(shape, order="F")


def _read_table(path: Path, key: str, value: str, what: str) -> tuple[list[list[str]], int, int]:
    rows = read_rows(path, what)
    if not rows:
        raise ValueError(f"{path}: empty {what}")
    header = rows[0]
    return rows[1:], find_column(header, (key,), path, key), find_column(header, (value,), path, value)


def _read_rle(path: Path) -> dict[str, str]:
    rows, key, value = _read_table(path, "id", "rle_mask", "TGS run-length masks")
    return {row[key]: (row[value] if value < len(row) else "") for row in rows}


def _read_depths(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    rows, key, value = _read_table(path, "id", "z", "TGS depths")
    return dict(zip((row[key] for row in rows), numbers(rows, [value], path)[:, 0].tolist()))


def _png_mask(key: str, mask_path: Path | str, shape: tuple[int, int]) -> np.ndarray:
    return (read_ids(mask_path) > 0).astype(np.uint8)


def _rle_mask(csv_path: Path) -> MaskDecoder:
    def decode(key: str, rle: Path | str, shape: tuple[int, int]) -> np.ndarray:
        return rle_decode(str(rle), shape, f"{csv_path} id {key}")

    return decode


def _tgs_sections(
    pairs: list[tuple[str, Path, Path | str]], root: Path, task: TaskSpec, decode: MaskDecoder, depths: dict[str, float]
) -> Iterator[Section]:
    for key, image_path, mask in pairs:
        image = read_grey(image_path)
        label = decode(key, mask, image.shape)
        if label.shape != image.shape:
            raise ValueError(f"Mask of {image_path} has shape {label.shape}, the image {image.shape}")
        yield Section(
            image=image,
            label=to_class_ids(label, task.num_labels, f"mask of {image_path}"),
            source_file=relative(image_path, root),
            depth=depths.get(key),
        )


@register_source(
    "tgs",
    tasks=("salt",),
    description="TGS Salt Identification Challenge (Kaggle layout): train/images, train/masks or train.csv RLE",
)
def read_tgs(input_dir: Path, task: TaskSpec, *, masks: str = "auto") -> dict[str, Iterator[Section]]:
    """Read the TGS training patches with their salt masks and depths.

    Args:
        input_dir: the competition folder (``train/images``, ``train/masks``, ``train.csv``, ``depths.csv``).
        task: the salt task.
        masks: ``png`` (``train/masks``), ``rle`` (``train.csv``) or ``auto`` (PNG masks when the folder exists).

    Returns:
        ``{"train": sections}`` with ``depth`` from ``depths.csv`` (None for ids it lacks).
    """
    root = require_dir(input_dir)
    image_dir = root / "train" / "images"
    images = stems(list_files(image_dir, (".png",), "TGS images"))
    mask_dir = root / "train" / "masks"
    choice = as_choice("masks", masks, ("auto", "png", "rle"))
    use_png = choice == "png" or (choice == "auto" and mask_dir.is_dir())
    if use_png:
        labels: dict[str, Path | str] = dict(stems(list_files(mask_dir, (".png",), "TGS masks")))
        decode: MaskDecoder = _png_mask
        label_where = str(mask_dir)
    else:
        labels = dict(_read_rle(root / "train.csv"))
        decode = _rle_mask(root / "train.csv")
        label_where = str(root / "train.csv")
    pairs = pair_up(images, labels, str(image_dir), label_where)
    return {"train": _tgs_sections(pairs, root, task, decode, _read_depths(root / "depths.csv"))}
