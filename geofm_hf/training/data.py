"""From a dataset (Hub id, local folder or ``synthetic:...``) to torch batches: checks, normalisation, augmentation,
padded batches.

Every section is normalised on its own by the model's :class:`~geofm_hf.GeoFMImageProcessor`, then (training split
only) cropped, flipped and jittered. The random draws of sample ``i`` in epoch ``e`` come from
``numpy.random.default_rng([seed, e, i])``: augmentation does not depend on worker count, process count or on where
an interrupted run was resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from datasets import DatasetDict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import SPLITS, build_dataset_dict, read_source
from ..evaluation.inference import REQUIRED_COLUMNS, LabelledSections, PadCollator, as_sample
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..models.tasks import TaskSpec
from .config import AugmentationSettings, TrainingConfig

SYNTHETIC_PREFIX = "synthetic:"
# Rows per batch when streaming the label column for the full label check.
LABEL_SCAN_BATCH = 64


# --- loading -----------------------------------------------------------------------------------------------------


def parse_synthetic_spec(spec: str) -> dict[str, Any]:
    """Reader options of ``synthetic:<num>[:<seed>[:<size>]]`` (size ``n``, ``n1,n2`` or ``native``)."""
    parts = spec[len(SYNTHETIC_PREFIX) :].split(":")
    if not parts[0] or len(parts) > 3:
        raise ValueError(
            f"dataset={spec!r}: expected synthetic:<num>[:<seed>[:<size>]], e.g. synthetic:64:0:112 or "
            "synthetic:64:0:96,128"
        )
    return dict(zip(("num", "seed", "size"), parts))


def load_splits(dataset: str, task: TaskSpec) -> DatasetDict:
    """The dataset of a run: generated in memory (``synthetic:...``), a local folder, or a Hub dataset id.

    Raises:
        ValueError: the dataset cannot be loaded, naming it and why.
    """
    if dataset.startswith(SYNTHETIC_PREFIX):
        try:
            splits = read_source("synthetic", task, None, parse_synthetic_spec(dataset))
        except ValueError as error:
            raise ValueError(f"dataset={dataset!r}: {error}") from error
        return build_dataset_dict(splits, task)
    try:
        loaded = datasets.load_dataset(dataset)
    except (FileNotFoundError, ConnectionError, ValueError, OSError) as error:
        where = "local folder" if Path(dataset).is_dir() else "Hub dataset (or a missing local folder)"
        raise ValueError(f"dataset={dataset!r}: cannot load it as a {where}: {error}") from error
    if not isinstance(loaded, DatasetDict):
        raise ValueError(f"dataset={dataset!r}: expected splits {SPLITS}, got a single {type(loaded).__name__}")
    return loaded


# --- checks before training --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataRequirements:
    """What a run needs from every section.

    Attributes:
        num_labels: class ids must be below this (or equal ``ignore_index``).
        ignore_index: label value of unlabelled pixels.
        min_size: smallest height/width the model accepts (one patch).
        crop_size: training crop; sections of the trained splits must be at least this large.
        trained_splits: the splits the run trains on.
    """

    num_labels: int
    ignore_index: int
    min_size: int
    crop_size: int | None
    trained_splits: tuple[str, ...] = ("train",)


def _size_problem(shape: Sequence[int], split: str, requirements: DataRequirements) -> str | None:
    if len(shape) != 2:
        return f"is {len(shape)}-D; expected a 2-D section"
    if min(shape) < requirements.min_size:
        return f"is {tuple(shape)} pixels, smaller than one {requirements.min_size}-pixel patch"
    cropped = split in requirements.trained_splits and requirements.crop_size is not None
    if cropped and min(shape) < requirements.crop_size:
        return f"is {tuple(shape)} pixels, smaller than augmentation.crop_size={requirements.crop_size}"
    return None


def check_label(label: np.ndarray, split: str, where: str, requirements: DataRequirements) -> None:
    """Refuse a label map (and so its section) that is too small, or holds ids outside the task's classes."""
    problem = _size_problem(label.shape, split, requirements)
    if problem:
        raise ValueError(f"{where}: the section {problem}")
    values = np.unique(label)
    bad = [int(v) for v in values if not (0 <= v < requirements.num_labels or v == requirements.ignore_index)]
    if bad:
        raise ValueError(
            f"{where}: label holds class id(s) {bad[:10]} but the task has ids 0..{requirements.num_labels - 1} "
            f"(and ignore_index={requirements.ignore_index})"
        )


def check_first_rows(splits: DatasetDict, name: str, requirements: DataRequirements, rows: int) -> None:
    """Fast checks on the first ``rows`` rows of every split: splits, columns, shapes, sizes and class ids.

    Raises:
        ValueError: naming the dataset, split, row and what was expected.
    """
    missing = [split for split in SPLITS if split not in splits]
    if missing:
        raise ValueError(f"dataset={name!r} lacks split(s) {missing}; it has {sorted(splits)}, expected {list(SPLITS)}")
    for split in SPLITS:
        table = splits[split]
        absent = [column for column in REQUIRED_COLUMNS if column not in table.column_names]
        if absent or len(table) == 0:
            problem = f"lacks column(s) {absent}" if absent else "is empty"
            raise ValueError(f"dataset={name!r}: split {split!r} {problem} (columns: {table.column_names})")
        head = table.select(range(min(rows, len(table)))).select_columns(list(REQUIRED_COLUMNS))
        for index, row in enumerate(head.with_format("numpy")):
            image, label = np.asarray(row["image"]), np.asarray(row["label"])
            where = f"dataset={name!r}, split {split!r}, row {index}"
            if image.shape != label.shape:
                raise ValueError(f"{where}: image shape {image.shape} differs from label shape {label.shape}")
            check_label(label, split, where, requirements)


def scan_labels(splits: DatasetDict, name: str, requirements: DataRequirements, show_progress: bool = True) -> None:
    """Stream the label column of every split once: every class id fits the task, every section is big enough.

    Raises:
        ValueError: naming the dataset, split and row of the first offending section.
    """
    total = sum(len(splits[split]) for split in SPLITS)
    with tqdm(total=total, desc="checking labels", unit=" sections", disable=not show_progress) as progress:
        for split in SPLITS:
            labels = splits[split].select_columns(["label"]).with_format("numpy")
            for batch_index, batch in enumerate(labels.iter(batch_size=LABEL_SCAN_BATCH)):
                for offset, label in enumerate(batch["label"]):
                    where = f"dataset={name!r}, split {split!r}, row {batch_index * LABEL_SCAN_BATCH + offset}"
                    check_label(np.asarray(label), split, where, requirements)
                progress.update(len(batch["label"]))


# --- torch side --------------------------------------------------------------------------------------------------


class SectionDataset(LabelledSections):
    """One split as torch samples ``{"pixel_values": (1, H, W) float32, "labels": (H, W) int64}``, augmented for
    training: the evaluation dataset (see `geofm_hf.evaluation.inference.LabelledSections`) plus random changes.

    Args:
        split: a `datasets.Dataset` with ``image`` and ``label`` columns.
        processor: normalises each section with its own statistics.
        augmentation: random changes for training, or None (evaluation).
        seed: seed of the augmentation draws.
    """

    def __init__(
        self,
        split: datasets.Dataset,
        processor: GeoFMImageProcessor,
        augmentation: AugmentationSettings | None = None,
        seed: int = 0,
    ):
        super().__init__(split, processor)
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentation of ``epoch`` (called by the training loop before each epoch)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, label = self.read(index)
        if self.augmentation is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, label = augment(image, label, self.augmentation, rng)
        return as_sample(image, label)


def augment(
    image: np.ndarray, label: np.ndarray, settings: AugmentationSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random crop, zoom, left-right flip, then gain and noise, of a normalised section ((H, W) or (channels, H, W))
    and its (H, W) label.

    Gain and noise act on the normalised values: the per-section normalisation would undo a gain applied before it.
    Crop, flip and gain are drawn whatever is enabled, so changing one setting does not change the others' draws; the
    zoom is drawn last, so that settings without it draw what they drew before it existed.
    """
    height, width = label.shape
    crop = settings.crop_size or min(height, width)
    top, left = rng.integers(0, height - crop + 1), rng.integers(0, width - crop + 1)
    flip = rng.random() < 0.5
    gain = np.float32(rng.uniform(1.0 - settings.gain, 1.0 + settings.gain))
    if settings.crop_size:
        image = image[..., top : top + crop, left : left + crop]
        label = label[top : top + crop, left : left + crop]
    noise = np.float32(settings.noise) * rng.standard_normal(image.shape, dtype=np.float32) if settings.noise else None
    fraction, row, column = rng.uniform(1.0 - settings.zoom, 1.0), rng.random(), rng.random()
    if settings.zoom:
        image, label = zoom_window(image, label, fraction, row, column)
    if settings.hflip and flip:
        image, label = image[..., ::-1], label[:, ::-1]
    image = image * gain
    if noise is not None:
        image = image + noise
    return image, label


def zoom_window(
    image: np.ndarray, label: np.ndarray, fraction: float, row: float, column: float
) -> tuple[np.ndarray, np.ndarray]:
    """The window of side ``fraction`` times the section's, placed at relative position (``row``, ``column``) in
    [0, 1) of the free room, resized back to the section's size: bilinear for the image, nearest for the label (whose
    values are classes, or the ignore index, and must stay so).
    """
    height, width = label.shape
    window_height, window_width = max(1, round(height * fraction)), max(1, round(width * fraction))
    top, left = int(row * (height - window_height + 1)), int(column * (width - window_width + 1))
    rows, columns = slice(top, top + window_height), slice(left, left + window_width)
    window = torch.from_numpy(np.ascontiguousarray(image[..., rows, columns], dtype=np.float32))
    resized = torch.nn.functional.interpolate(
        window.reshape(1, -1, window_height, window_width), size=(height, width), mode="bilinear", align_corners=False
    )
    labels = torch.from_numpy(np.ascontiguousarray(label[rows, columns], dtype=np.float32))[None, None]
    nearest = torch.nn.functional.interpolate(labels, size=(height, width), mode="nearest-exact")
    return resized.reshape(image.shape).numpy(), nearest[0, 0].numpy().astype(label.dtype)


def section_loader(
    dataset: LabelledSections, batch_size: int, shuffle: bool, config: TrainingConfig, ignore_index: int
) -> DataLoader:
    """Batches of ``dataset`` padded by `geofm_hf.evaluation.inference.PadCollator`, for training and validation."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=config.dataloader_num_workers,
        collate_fn=PadCollator(ignore_index),
        # A last training batch of a single section would stop every decoder with BatchNorm after a pooling to 1x1
        # (UperNet's pyramid) in training mode; dropping it loses one section per epoch, and only in that case.
        drop_last=shuffle and len(dataset) % batch_size == 1 and len(dataset) > batch_size,
        # Each new iterator draws a worker seed from this generator. From torch's global RNG it would shift the
        # dropout draws of a resumed run, which starts an iterator mid-epoch where the uninterrupted run did not.
        generator=torch.Generator().manual_seed(config.seed),
    )


__all__ = [
    "DataRequirements",
    "SectionDataset",
    "augment",
    "check_first_rows",
    "load_splits",
    "parse_synthetic_spec",
    "scan_labels",
    "section_loader",
    "zoom_window",
]
