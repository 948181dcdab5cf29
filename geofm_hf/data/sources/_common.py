"""Helpers shared by the readers: finding and pairing files, checking values, cutting patches, slicing volumes.

Every reader turns its format into :class:`~geofm_hf.data.records.Section` objects through these helpers, so the
checks (finite amplitudes, class ids in range, no orphan images or labels) read and fail the same way everywhere.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...io.checks import check_finite, to_class_ids
from ...io.options import as_choice, as_int, as_ints
from ...io.volumes import VolumeReader
from ...models.tasks import TaskSpec
from ..records import Section

# Folder names a dataset may use for its splits, mapped to the split names the builder knows.
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "test": "test",
}
AXES = ("inline", "crossline")
AXIS_CHOICES = {"inline": ("inline",), "crossline": ("crossline",), "both": AXES}
# Palette and grey-level PNGs store class ids directly; colour label images would need a colour table.
_ID_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L")

T = TypeVar("T")


# --- files -------------------------------------------------------------------------------------------------------


def require_dir(path: Path, what: str = "input folder") -> Path:
    """Return ``path`` if it is a folder; raise ``FileNotFoundError`` naming it otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"The {what} {path} does not exist or is not a folder")
    return path


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file; raise ``FileNotFoundError`` naming it and what it should hold otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The {what} {path} does not exist or is not a file")
    return path


def list_files(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Sorted files of ``folder`` ending in one of ``suffixes`` (case-insensitive); an empty result is an error."""
    require_dir(folder, f"folder of {what}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(f"No {what} ({', '.join('*' + s for s in suffixes)}) in {folder}")
    return files


def stems(paths: Iterable[Path]) -> dict[str, Path]:
    """Index files by name without suffix, the key that pairs an image with its label."""
    return {path.stem: path for path in paths}


def only_file(folder: Path, suffixes: tuple[str, ...], option: str, what: str, exclude: Path | None = None) -> Path:
    """The one file of ``folder`` with one of ``suffixes``; several or none is an error telling to pass ``option``."""
    files = [path for path in list_files(folder, suffixes, what) if exclude is None or path.name != exclude.name]
    if len(files) != 1:
        names = ", ".join(path.name for path in files) or "none"
        raise ValueError(f"{folder} holds {len(files)} {what} ({names}): name one with {option}=FILE")
    return files[0]


def split_folders(input_dir: Path) -> dict[str, Path]:
    """Map split names to sub-folders named after splits (``train/``, ``valid/``, ``test/``...).

    A folder without such sub-folders is one ``train`` split; the builder carves validation and test out of it.
    """
    require_dir(input_dir)
    found: dict[str, Path] = {}
    for child in sorted(input_dir.iterdir()):
        split = SPLIT_FOLDERS.get(child.name.lower())
        if split is None or not child.is_dir():
            continue
        if split in found:
            raise ValueError(f"{input_dir}: both {found[split].name}/ and {child.name}/ hold the {split} split")
        found[split] = child
    return found or {"train": input_dir}


def pair_up(images: Mapping[str, Path], labels: Mapping[str, T], image_where: str, label_where: str) -> list[
    tuple[str, Path, T]
]:
    """Match images and labels by key (file stem or id); any image without label, or the reverse, is an error.

    Returns:
        ``(key, image_path, label)`` triples sorted by key.
    """
    lonely_images = sorted(images.keys() - labels.keys())
    if lonely_images:
        raise ValueError(
            f"{len(lonely_images)} image(s) without a label in {label_where}, e.g. {images[lonely_images[0]]}"
        )
    lonely_labels = sorted(labels.keys() - images.keys())
    if lonely_labels:
        raise ValueError(
            f"{len(lonely_labels)} label(s) without an image in {image_where}, e.g. {lonely_labels[0]!r} in "
            f"{label_where}"
        )
    return [(key, images[key], labels[key]) for key in sorted(images)]


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators) when it lies inside it, else the full path."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def read_rows(path: Path, what: str) -> list[list[str]]:
    """Non-blank rows of a comma-separated file; CR (old Mac), LF and CRLF line ends are all accepted."""
    require_file(path, what)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [[cell.strip() for cell in row] for row in csv.reader(handle) if any(cell.strip() for cell in row)]


def find_column(header: list[str], names: tuple[str, ...], path: Path, option: str | None = None) -> int:
    """Index of the first of ``names`` in ``header`` (case-insensitive); missing is an error naming ``option``."""
    lowered = [cell.lower() for cell in header]
    for name in names:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    hint = f"; name it with {option}=COLUMN" if option else ""
    raise ValueError(f"{path}: no column {' or '.join(map(repr, names))} in header {header}{hint}")


def numbers(rows: list[list[str]], columns: list[int], path: Path) -> np.ndarray:
    """The given columns of ``rows`` as a float64 (rows, columns) array; a bad cell is an error quoting its row."""
    table = np.empty((len(rows), len(columns)), dtype=np.float64)
    for i, row in enumerate(rows):
        try:
            table[i] = [float(row[c]) for c in columns]
        except (ValueError, IndexError):
            raise ValueError(f"{path}: expected numbers in columns {columns} of row {row}") from None
    if not np.isfinite(table).all():
        raise ValueError(f"{path}: NaN or Inf in columns {columns}")
    return table


# --- values ------------------------------------------------------------------------------------------------------


def as_finite_float32(image: np.ndarray, source: str, where: str = "") -> np.ndarray:
    """Return ``image`` as float32; raise ``ValueError`` naming the file, section and first NaN/Inf if it holds any."""
    image = np.asarray(image, dtype=np.float32)
    check_finite(image, f"{source} ({where})" if where else source)
    return image


# --- images ------------------------------------------------------------------------------------------------------


def _open_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: cannot read the image ({error})") from None
    return image


def read_grey(path: Path) -> np.ndarray:
    """Read an image as a float32 (rows, columns) array; colour images are converted to grey levels."""
    image = _open_image(path)
    if image.mode not in ("L", "I", "F", "I;16", "I;16B", "I;16L"):
        image = image.convert("L")
    return as_finite_float32(np.asarray(image), str(path))


def read_ids(path: Path) -> np.ndarray:
    """Read a label image holding one class id per pixel (grey-level, palette or 16-bit PNG)."""
    image = _open_image(path)
    if image.mode not in _ID_MODES:
        raise ValueError(f"{path}: label image mode {image.mode} holds colours; expected class ids (mode L, P or I;16)")
    return np.asarray(image).astype(np.int64)


def check_same_shape(image_path: Any, image_shape: tuple[int, ...], label_path: Any, label_shape: tuple[int, ...]):
    """Raise ``ValueError`` naming both files if an image and its label differ in shape."""
    if tuple(image_shape) != tuple(label_shape):
        raise ValueError(
            f"Label {label_path} has shape {tuple(label_shape)} but its image {image_path} has {tuple(image_shape)}"
        )


# --- patches -----------------------------------------------------------------------------------------------------


def parse_patch(patch: Any, stride: Any, name: str = "patch") -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Parse ``patch=H,W`` and ``stride=SH,SW`` (default: the patch size, i.e. no overlap)."""
    if patch is None:
        if stride is not None:
            raise ValueError(f"Option stride={stride!r} needs {name}=H,W")
        return None, None
    size = as_ints(name, patch, (2,))
    return size, as_ints("stride", stride, (2,)) if stride is not None else size


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of windows of ``size`` every ``stride``; the last one is moved to end flush with ``length``."""
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def patch_windows(shape: tuple[int, int], patch: tuple[int, int], stride: tuple[int, int], source: str) -> list[
    tuple[slice, slice]
]:
    """Windows covering a (n1, n2) array with ``patch``-sized tiles (edge tiles overlap rather than being padded)."""
    if shape[0] < patch[0] or shape[1] < patch[1]:
        raise ValueError(
            f"{source}: section of {shape[0]}x{shape[1]} is smaller than patch {patch[0]}x{patch[1]}; "
            "pass a smaller patch=H,W"
        )
    rows = window_starts(shape[0], patch[0], stride[0])
    cols = window_starts(shape[1], patch[1], stride[1])
    return [(slice(r, r + patch[0]), slice(c, c + patch[1])) for r in rows for c in cols]


def cut(sections: Iterable[Section], patch: tuple[int, int] | None, stride: tuple[int, int] | None) -> Iterator[
    Section
]:
    """Yield ``sections`` whole when ``patch`` is None, else their patches (provenance kept from the section)."""
    for section in sections:
        if patch is None:
            yield section
            continue
        for rows, cols in patch_windows(section.image.shape, patch, stride, section.source_file):
            yield replace(section, image=section.image[rows, cols].copy(), label=section.label[rows, cols].copy())


# --- volumes -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slicing:
    """How a volume becomes sections: along which axes, every how many sections, cut into which patches."""

    axes: tuple[str, ...] = AXES
    step: int = 1
    patch: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None

    @classmethod
    def parse(cls, axis: Any = "both", step: Any = 1, patch: Any = None, stride: Any = None) -> Slicing:
        """Build from the ``axis=inline|crossline|both``, ``step=K``, ``patch=H,W``, ``stride=SH,SW`` options."""
        patch_size, patch_stride = parse_patch(patch, stride)
        return cls(
            axes=AXIS_CHOICES[as_choice("axis", axis, tuple(AXIS_CHOICES))],
            step=as_int("step", step, minimum=1),
            patch=patch_size,
            stride=patch_stride,
        )


def volume_sections(
    image: VolumeReader,
    label: VolumeReader,
    task: TaskSpec,
    slicing: Slicing,
    source: str,
    threshold: float | None = None,
) -> Iterator[Section]:
    """Yield labelled sections of ``image`` along the requested axes, reading one section of each volume at a time.

    Sections are (sample, trace): n1 is depth or time, as in every :class:`Section`.
    """
    check_same_shape(image.name, image.shape, label.name, label.shape)

    def sections() -> Iterator[Section]:
        for axis in slicing.axes:
            index_of_axis = AXES.index(axis)
            for index in range(0, image.shape[index_of_axis], slicing.step):
                ids = to_class_ids(
                    label.read_section(index_of_axis, index).T,
                    task.num_labels,
                    f"{label.name} ({axis} {index})",
                    threshold=threshold,
                )
                yield Section(
                    image=image.read_finite_section(index_of_axis, index).T,
                    label=ids,
                    source_file=source,
                    section_index=index,
                    section_axis=axis,
                )

    yield from cut(sections(), slicing.patch, slicing.stride)
