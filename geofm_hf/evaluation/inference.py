"""The one way labelled sections are fed to a model and scored: validation during training and ``geofm evaluate``.

Sections are read and normalised one by one (:class:`LabelledSections`, each with its own statistics, as in
training), padded into batches (:class:`PadCollator`, which also records each section's own size), and scored by
:func:`score_batch`: every section is cropped back to its own size, sections of equal size go through the model
together, and the confusion matrix counts the section's own labelled pixels only. Padding thus never reaches the
model: a section's prediction is the one it gets alone (as ``geofm predict`` would make it), whatever else shares its
batch, and the scores do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from ..precision import evaluation_mode
from ..io.checks import NON_FINITE_LOGITS_HINT, check_finite_tensor
from ..metrics import confusion_matrix
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor

if TYPE_CHECKING:
    import datasets

REQUIRED_COLUMNS = ("image", "label")
# What `torch.nn.CrossEntropyLoss` ignores by default; callers training on padded labels pass their own.
DEFAULT_LABEL_PAD = -100

RowCheck = Callable[[int, np.ndarray, np.ndarray], None]
"""Called as ``check(row, image, label)`` on the raw values of a row; raises ValueError naming what is wrong."""


class LabelledSections(Dataset):
    """One split as torch samples ``{"pixel_values": (channels, H, W) float32, "labels": (H, W) int64}``.

    Args:
        split: a `datasets.Dataset` with ``image`` and ``label`` columns.
        processor: normalises each section with its own statistics.
        check: run on every row before it is normalised (e.g. to refuse labels outside the model's classes).
    """

    def __init__(self, split: datasets.Dataset, processor: GeoFMImageProcessor, check: RowCheck | None = None):
        self.rows = split.select_columns(list(REQUIRED_COLUMNS)).with_format("numpy")
        self.processor = processor
        self.check = check

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``index`` as a normalised (channels, H, W) float32 image and its int64 label."""
        row = self.rows[index]
        image, label = np.asarray(row["image"], dtype=np.float32), np.asarray(row["label"])
        if self.check is not None:
            self.check(index, image, label)
        pixel_values = self.processor.preprocess(image, return_tensors="np")["pixel_values"][0]
        return pixel_values, label.astype(np.int64)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return as_sample(*self.read(index))


def as_sample(image: np.ndarray, label: np.ndarray) -> dict[str, torch.Tensor]:
    """A torch sample from a normalised (channels, H, W) image and its (H, W) label."""
    return {
        "pixel_values": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
        "labels": torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64)),
    }


def resolve_device(requested: str | torch.device | None = None) -> torch.device:
    """The device to run a model on: ``requested`` (``--device``), or CUDA when available, else the CPU.

    Raises:
        ValueError: ``requested`` is no device name, or names a device this torch build or machine lacks.
    """
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        raise ValueError(f"--device {requested}: not a device name ({error}); expected cpu, cuda, cuda:1, mps") from None
    available = {
        "cuda": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "mps": int(torch.backends.mps.is_available()),
    }
    count = available.get(device.type)
    if count is not None and (device.index or 0) >= count:
        raise ValueError(
            f"--device {requested}: this machine's torch {torch.__version__} has {count} {device.type} device(s); "
            "use --device cpu"
        )
    return device


@dataclass(frozen=True)
class PadCollator:
    """Stacks samples of different sizes: images padded with 0 (the mean after normalisation) at the bottom/right,
    labels with ``ignore_index`` so padded pixels count in no loss; ``sizes`` (batch, 2) keeps each section's own
    (height, width), which :func:`score_batch` crops back to."""

    ignore_index: int = DEFAULT_LABEL_PAD

    def __call__(self, samples: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        sizes = torch.tensor([tuple(sample["labels"].shape) for sample in samples], dtype=torch.int64)
        height, width = sizes.max(dim=0).values.tolist()

        def padded(tensor: torch.Tensor, value: float) -> torch.Tensor:
            return F.pad(tensor, (0, width - tensor.shape[-1], 0, height - tensor.shape[-2]), value=value)

        return {
            "pixel_values": torch.stack([padded(s["pixel_values"], 0.0) for s in samples]),
            "labels": torch.stack([padded(s["labels"], self.ignore_index) for s in samples]),
            "sizes": sizes,
        }


def _size_groups(sizes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
    """Batch positions of the sections of each size, sizes in order of first appearance."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, size in enumerate(sizes):
        groups.setdefault(size, []).append(index)
    return groups


@torch.no_grad()
def predict_sections(model: nn.Module, pixel_values: torch.Tensor, sizes: torch.Tensor) -> list[torch.Tensor]:
    """Class-id maps of a padded batch, each at its section's own size.

    Each section is cropped back to its own size and the sections of one size go through the model together, so
    the batch's padding never reaches the model.

    Args:
        model: a segmenter on the batch's device: ``model(pixel_values=x).logits`` is (batch, classes, h, w).
        pixel_values: (batch, channels, height, width), padded at the bottom/right (see :class:`PadCollator`).
        sizes: (batch, 2) each section's own (height, width).

    Returns:
        `list[torch.Tensor]`: one (height_i, width_i) map of class ids per section, in batch order.

    Raises:
        ValueError: the logits hold NaN or Inf (an argmax of them would be a made-up prediction).
    """
    own_sizes = [tuple(size) for size in sizes.tolist()]
    maps: list[torch.Tensor | None] = [None] * len(own_sizes)
    for (height, width), indices in _size_groups(own_sizes).items():
        inputs = pixel_values[indices, :, :height, :width]
        logits = model(pixel_values=inputs).logits
        check_finite_tensor(logits, f"the model's logits for the {height} x {width} sections", NON_FINITE_LOGITS_HINT)
        for index, class_ids in zip(indices, logits.argmax(dim=1), strict=True):
            maps[index] = class_ids
    return maps


def section_confusions(
    predictions: Sequence[torch.Tensor],
    labels: torch.Tensor,
    num_labels: int,
    ignore_index: int | None,
) -> torch.Tensor:
    """(batch, C, C) confusion matrices of each section's own pixels: padded labels are cropped away first."""
    matrices = []
    for prediction, label in zip(predictions, labels, strict=True):
        height, width = prediction.shape
        matrices.append(confusion_matrix(prediction, label[:height, :width], num_labels, ignore_index))
    return torch.from_numpy(np.stack(matrices))


@dataclass
class ScoredBatch:
    """What :func:`score_batch` returns.

    Attributes:
        predictions: one (height_i, width_i) class-id map per section, on the model's device.
        confusions: (batch, C, C) int64 confusion matrix of each section's labelled pixels, on the CPU.
    """

    predictions: list[torch.Tensor]
    confusions: torch.Tensor


def score_batch(
    model: nn.Module, batch: Mapping[str, torch.Tensor], num_labels: int, ignore_index: int | None
) -> ScoredBatch:
    """Predict a collated batch (see :class:`PadCollator`, already on the model's device) and score every section.

    The model is called as it is: callers put it in eval mode (see :func:`evaluation_mode`).
    """
    predictions = predict_sections(model, batch["pixel_values"], batch["sizes"])
    return ScoredBatch(predictions, section_confusions(predictions, batch["labels"], num_labels, ignore_index))


__all__ = [
    "REQUIRED_COLUMNS",
    "LabelledSections",
    "PadCollator",
    "RowCheck",
    "ScoredBatch",
    "as_sample",
    "evaluation_mode",
    "predict_sections",
    "resolve_device",
    "score_batch",
    "section_confusions",
]
