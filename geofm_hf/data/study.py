"""Reader of the study's data release (Zenodo record 12798750), registered as source ``study``.

The release keeps each task as ``data/<folder>/{train,valid}/<image_dir>/N.dat`` and ``.../<label_dir>/N.dat``
(names from :attr:`~geofm_hf.study.StudyTask.layout`): headerless C-order little-endian float32 images and int8
labels of shape :attr:`~geofm_hf.study.StudyTask.native_size`, numbered ``0.dat .. (n-1).dat``.

The study evaluated (and picked checkpoints) on its ``valid`` folder, which its README calls the test set: it becomes
our ``test`` split. The reader yields no validation split; the dataset builder carves it out of the end of ``train``
(the highest-numbered files), see :func:`geofm_hf.data.builder.assign_splits`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..models.tasks import TASKS, TaskSpec
from ..study import study_task
from .records import Section, register_source
from .sources._common import as_finite_float32, list_files, pair_up, relative, require_dir, to_class_ids
from ..io.options import as_ints

# Folder of the release -> split name of the dataset.
STUDY_SPLITS = {"train": "train", "valid": "test"}
IMAGE_DTYPE = np.dtype("<f4")
LABEL_DTYPE = np.dtype("i1")


def find_task_folder(input_dir: Path, task: TaskSpec) -> Path:
    """The folder holding ``train/`` and ``valid/`` of ``task``: ``input_dir`` may be the release root (holding
    ``data/``), its ``data/`` folder, or the task folder itself."""
    input_dir = require_dir(Path(input_dir))
    folder = study_task(task.name).layout.folder
    for candidate in (input_dir / "data" / folder, input_dir / folder, input_dir):
        if all((candidate / name).is_dir() for name in STUDY_SPLITS):
            return candidate
    layout = study_task(task.name).layout
    raise FileNotFoundError(
        f"No study layout for task {task.name!r} in {input_dir}: expected {input_dir}/data/{folder}/"
        f"{{{','.join(STUDY_SPLITS)}}}/{{{layout.image_dir},{layout.label_dir}}}/N.dat, or --input pointing at "
        f"the {folder}/ folder itself"
    )


def _numbered(files: list[Path]) -> dict[str, Path]:
    """Key files by name, refusing any that is not ``N.dat``."""
    for path in files:
        if not path.stem.isdigit():
            raise ValueError(f"{path}: files of the study's release are named N.dat with N = 0, 1, 2, ...")
    return {path.name: path for path in files}


def _check_size(path: Path, dtype: np.dtype, shape: tuple[int, int]) -> None:
    expected = shape[0] * shape[1] * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise ValueError(
            f"{path}: {actual} bytes, expected {expected} bytes for a {shape[0]}x{shape[1]} {dtype.name} array; "
            "pass shape=N1,N2 if the release uses another size"
        )


def list_split(split_dir: Path, task: TaskSpec, shape: tuple[int, int]) -> list[tuple[Path, Path]]:
    """``(image, label)`` paths of one split folder in file-number order, after checking pairing and byte sizes."""
    layout = study_task(task.name).layout
    image_dir, label_dir = split_dir / layout.image_dir, split_dir / layout.label_dir
    images = _numbered(list_files(image_dir, (".dat",), f"{task.name} images"))
    labels = _numbered(list_files(label_dir, (".dat",), f"{task.name} labels"))
    pairs = [(image, label) for _, image, label in pair_up(images, labels, str(image_dir), str(label_dir))]
    pairs.sort(key=lambda pair: int(pair[0].stem))
    for image, label in pairs:
        _check_size(image, IMAGE_DTYPE, shape)
        _check_size(label, LABEL_DTYPE, shape)
    return pairs


def read_pair(image_path: Path, label_path: Path, task: TaskSpec, shape: tuple[int, int], root: Path) -> Section:
    """Read one image/label pair, checking amplitudes are finite and labels are class ids of ``task``."""
    count = shape[0] * shape[1]
    image = np.fromfile(image_path, dtype=IMAGE_DTYPE, count=count).reshape(shape)
    label = np.fromfile(label_path, dtype=LABEL_DTYPE, count=count).reshape(shape)
    return Section(
        image=as_finite_float32(image, str(image_path)),
        label=to_class_ids(label, task.num_labels, str(label_path)),
        source_file=relative(image_path, root),
    )


def _read_split(pairs: list[tuple[Path, Path]], task: TaskSpec, shape: tuple[int, int], root: Path) -> Iterator[
    Section
]:
    for image_path, label_path in pairs:
        yield read_pair(image_path, label_path, task, shape, root)


@register_source(
    "study",
    tasks=tuple(TASKS),
    description=(
        "The study's release (Guo, Wu et al. 2025; Zenodo 12798750), data/<task>/{train,valid}/*/N.dat; its valid "
        "folder, the study's test set, is the test split"
    ),
)
def read_study(input_dir: Path | None, task: TaskSpec, shape: Any = None) -> dict[str, Iterator[Section]]:
    """Reader of the ``study`` source: the release's ``train`` and ``valid`` (-> ``test``) folders.

    Folders, pairing and byte sizes are checked before anything is yielded; values (NaN/Inf, class ids) as files
    are read.

    Args:
        input_dir: release root, its ``data/`` folder, or the task folder.
        task: task to read.
        shape: ``(n1, n2)`` or ``"n1,n2"`` of the files; defaults to the task's ``native_size``.
    """
    if input_dir is None:
        raise ValueError("The study source needs --input: the folder holding data/ of the study's release")
    size = study_task(task.name).native_size if shape is None else as_ints("shape", shape, (2,))
    root = Path(input_dir)
    task_folder = find_task_folder(root, task)
    listed = {split: list_split(task_folder / folder, task, size) for folder, split in STUDY_SPLITS.items()}
    return {split: _read_split(pairs, task, size, root) for split, pairs in listed.items()}
