"""Evaluation of a segmentation model on one dataset split: scores, the study's per-batch scores, and pictures.

:func:`evaluate_model` is what ``geofm evaluate`` runs, and what a training run calls for its final test evaluation.
It runs the model over a split of a dataset with ``image`` (float 2-D) and ``label`` (class ids) columns through
the same batched routine as validation during training (:mod:`geofm_hf.evaluation.inference`), and sums one confusion
matrix over the split, from which the dataset-level scores are computed
(:func:`geofm_hf.metrics.segmentation_scores`). On the way it also keeps the study's per-batch scores (Guo, Wu et al.
2025), to compare with the paper's tables.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModel

from ..precision import autocast, resolve_precision
from ..io.checks import check_finite_parameters
from ..io.weights import NON_FINITE_WEIGHTS_HINT, check_weight_folder
from ..metrics import ConfusionAccumulator
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor, check_finite
from ..models.tasks import TASKS
from .inference import REQUIRED_COLUMNS, LabelledSections, PadCollator, evaluation_mode, score_batch
from .plots import Example, write_figures
from .results import EVAL_RESULTS_FILE, write_results_json

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

DATASET_ID2LABEL_FILE = "id2label.json"


# --- checks ------------------------------------------------------------------------------------------------------


def _split_name(dataset: datasets.Dataset, name: str | None = None) -> str:
    if name is not None:
        return name
    return str(dataset.split) if dataset.split is not None else "dataset"


def _check_columns(dataset: datasets.Dataset) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"The {_split_name(dataset)} split has no column(s) {missing}; expected {list(REQUIRED_COLUMNS)} "
            f"(columns present: {dataset.column_names})"
        )


def label_names(config) -> list[str]:
    """Class names of a model config in class-id order."""
    # Configs read back from JSON have string keys ("0"), configs built in Python have ints.
    by_id = {int(class_id): name for class_id, name in config.id2label.items()}
    return [by_id[class_id] for class_id in range(config.num_labels)]


@dataclass(frozen=True)
class RowChecker:
    """Refuses a row the model cannot be scored on, naming the row and what was expected (a
    :data:`~geofm_hf.evaluation.inference.RowCheck`)."""

    config: Any
    ignore_index: int | None
    where: str

    def __call__(self, row: int, image: np.ndarray, label: np.ndarray) -> None:
        name = f"{self.where} row {row}"
        spatial = image.shape[-2:]
        if image.ndim not in (2, 3) or label.ndim != 2 or label.shape != spatial:
            raise ValueError(
                f"{name}: image {image.shape} and label {label.shape} must be a (height, width) section and its "
                "equally sized label"
            )
        min_size = getattr(self.config, "pad_multiple", 1)
        if min(spatial) < min_size:
            raise ValueError(
                f"{name}: the section is {spatial[0]} x {spatial[1]} pixels, smaller than one {min_size} x {min_size} "
                "patch of the model"
            )
        check_finite(image, f"{name} image")
        num_labels = self.config.num_labels
        if label.min() >= 0 and label.max() < num_labels:
            return
        bad = [int(v) for v in np.unique(label) if not (0 <= v < num_labels or v == self.ignore_index)]
        if bad:
            raise ValueError(
                f"{name}: label holds class ids {bad[:10]} outside the model's classes 0..{num_labels - 1} "
                f"({', '.join(label_names(self.config))}; ignore_index={self.ignore_index})"
            )


# --- evaluation --------------------------------------------------------------------------------------------------


class _StudyBatches:
    """Groups per-section confusion matrices into the study's evaluation batches of ``size`` consecutive sections."""

    def __init__(self, accumulator: ConfusionAccumulator, size: int):
        self.accumulator, self.size = accumulator, size
        self.pending = np.zeros_like(accumulator.confusion)
        self.count = 0

    def add(self, confusion: np.ndarray) -> None:
        self.pending += confusion
        self.count += 1
        if self.count == self.size:
            self.flush()

    def flush(self) -> None:
        # The study's data loader kept its last, smaller batch (drop_last=False): so does this.
        if self.count:
            self.accumulator.add_batch_confusion(self.pending)
            self.pending = np.zeros_like(self.pending)
            self.count = 0


def _example_rows(num_rows: int, max_examples: int) -> set[int]:
    """Rows spread evenly over the split (first and last included), so the pictures show its variety."""
    if max_examples <= 0 or num_rows == 0:
        return set()
    return {int(row) for row in np.linspace(0, num_rows - 1, min(max_examples, num_rows)).round()}


def _example(dataset: datasets.Dataset, row: int, prediction: torch.Tensor, confusion: np.ndarray) -> Example:
    """What the picture of ``row`` needs: its raw section and label, read again (pictures are few)."""
    values = dataset.select_columns(list(REQUIRED_COLUMNS)).with_format("numpy")[row]
    image, label = np.asarray(values["image"], dtype=np.float32), np.asarray(values["label"])
    return Example(row, image, label, prediction.cpu().numpy(), confusion)


def evaluate_model(
    model: nn.Module,
    processor: GeoFMImageProcessor,
    dataset: datasets.Dataset,
    *,
    batch_size: int = 4,
    ignore_index: int | None = None,
    study_batch_size: int | None = None,
    device: str | torch.device = "cpu",
    max_overlays: int = 4,
    output_dir: str | os.PathLike | None = None,
    split: str | None = None,
    precision: str = "auto",
) -> dict[str, Any]:
    """Scores a segmentation model on one dataset split.

    Each section is normalised by ``processor`` with its own statistics (as the training loop does), sections go
    through the model ``batch_size`` at a time, each at its own size (sections of one size together, see
    :func:`~geofm_hf.evaluation.inference.score_batch`), and the argmax class of every pixel is compared with the
    label. One confusion matrix is summed over the whole split; the dataset-level scores come from it and do not
    depend on ``batch_size``. Validation during training scores through the same routine.

    The study's per-batch mIoU and mPA (means over evaluation batches of per-batch scores, see
    :class:`~geofm_hf.metrics.ConfusionAccumulator`) are computed over groups of ``study_batch_size`` consecutive
    sections. The study's own batches held ``2 * StudyTask.batch_size`` sections (each section and its flipped
    copy); sections are not flipped here, so these numbers only approximate the paper's way of scoring.

    The model is moved to ``device`` and put in eval mode; its train/eval mode is restored afterwards.

    Args:
        model: a segmenter: ``model(pixel_values=x).logits`` is (batch, num_labels, height, width) for x
            (batch, in_channels, height, width); ``model.config`` has ``num_labels``, ``id2label`` and optionally
            ``task``, ``ignore_index`` and ``pad_multiple``.
        processor: the model's image processor.
        dataset: one split, with an ``image`` column (float, (height, width)) and a ``label`` column (class ids).
        batch_size: sections per batch.
        ignore_index: label value of unlabelled pixels, left out of every score; defaults to
            ``model.config.ignore_index`` (255 for geofm models).
        study_batch_size: sections per batch of the study's per-batch scores; defaults to ``batch_size``.
        device: where to run the model.
        max_overlays: number of example pictures to write (rows spread evenly over the split); 0 for none.
        output_dir: if given, ``eval_results.json``, ``confusion_matrix.png`` and ``example_<row>.png`` are written
            there (each atomically; see :mod:`geofm_hf.evaluation.results`).
        split: name of the split in reports; defaults to ``dataset.split`` (which ``Dataset.select`` does not
            update, so callers holding carved-out splits should pass it).
        precision: ``auto`` (bf16 where ``device`` computes it natively, else fp32), ``bf16``, ``fp16`` or ``fp32``;
            the one used is reported as ``precision``.

    Returns:
        `dict`: :func:`~geofm_hf.metrics.segmentation_scores` of the split (``mean_iou``, ``mean_pixel_accuracy``,
        ``overall_accuracy``, ``mean_f1``, ``per_class_*`` keyed by class name, ``confusion_matrix``), the study's
        ``study_batch_miou`` and ``study_batch_mpa``, and ``task``, ``split``, ``num_examples``,
        ``num_labelled_pixels``, ``label_names``, ``ignore_index``, ``study_batch_size``, ``precision``; with
        ``output_dir`` also
        ``figures`` (file names, relative to ``output_dir``).

    Raises:
        ValueError: the dataset lacks a column, or a row is smaller than a patch of the model, holds non-finite
            values, or has class ids outside the model's classes (the message names the row).
    """
    if batch_size < 1 or (study_batch_size is not None and study_batch_size < 1):
        raise ValueError(f"batch_size ({batch_size}) and study_batch_size ({study_batch_size}) must be >= 1")
    _check_columns(dataset)
    config = model.config
    names = label_names(config)
    ignore_index = getattr(config, "ignore_index", None) if ignore_index is None else ignore_index
    study_batch_size = study_batch_size or batch_size
    split = _split_name(dataset, split)
    where = f"{split} split"
    accumulator = ConfusionAccumulator(config.num_labels, ignore_index)
    study_batches = _StudyBatches(accumulator, study_batch_size)
    example_rows = _example_rows(len(dataset), max_overlays)
    examples: list[Example] = []
    # Scoring crops every section back to its own size, so the collator's label padding is never counted.
    loader = DataLoader(
        LabelledSections(dataset, processor, RowChecker(config, ignore_index, where)),
        batch_size=batch_size,
        collate_fn=PadCollator(),
    )
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    model.to(device)
    row = 0
    progress = tqdm(total=len(dataset), desc=f"evaluating {where}", unit="section")
    with evaluation_mode(model), autocast(precision, device), progress:
        for batch in loader:
            scored = score_batch(model, {k: v.to(device) for k, v in batch.items()}, config.num_labels, ignore_index)
            for prediction, confusion in zip(scored.predictions, scored.confusions.numpy(), strict=True):
                study_batches.add(confusion)
                if row in example_rows:
                    examples.append(_example(dataset, row, prediction, confusion))
                row += 1
            progress.update(len(scored.predictions))
    study_batches.flush()

    results = accumulator.compute(id2label=dict(enumerate(names)))
    results.update(
        task=getattr(config, "task", None),
        split=split,
        num_examples=len(dataset),
        num_labelled_pixels=int(accumulator.confusion.sum()),
        label_names=names,
        ignore_index=ignore_index,
        study_batch_size=study_batch_size,
        precision=precision,
    )
    if output_dir is not None:
        results["figures"] = write_figures(Path(output_dir), results, examples, names, ignore_index)
        write_results_json(results, Path(output_dir) / EVAL_RESULTS_FILE)
    return results


# --- loading -----------------------------------------------------------------------------------------------------


def load_model(name_or_path: str, revision: str | None = None) -> nn.Module:
    """Load a trained model (Hub id, at ``revision`` if given, or local folder) with ``AutoModel``, refusing unusable
    weights up front.

    Raises:
        ValueError: a weight file is truncated or corrupted, holds a pickle that is not plain tensors, or the weights
            hold NaN or Inf (the message names the file or tensor).
    """
    if os.path.isdir(name_or_path):
        check_weight_folder(name_or_path)
    try:
        # The geofm model types are registered with the Auto classes when the geofm_hf package is imported.
        model = AutoModel.from_pretrained(name_or_path, revision=revision)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{name_or_path}: its weights are a Python pickle that is not plain tensors, and loading it could run "
            "code, so it is refused; save the model with save_pretrained (safetensors) where it is trusted"
        ) from error
    check_finite_parameters(model, name_or_path, NON_FINITE_WEIGHTS_HINT)
    return model


def load_model_and_processor(name_or_path: str) -> tuple[nn.Module, GeoFMImageProcessor]:
    """Load a trained model (see :func:`load_model`) and its image processor; ``zoo:NAME`` loads a zoo entry
    (:func:`geofm_hf.zoo.load`: offline from the package; ``zoo:NAME@hub`` from its pinned Hub repo).

    A model saved without a processor gets a default :class:`GeoFMImageProcessor` with the model's input channels,
    and a warning: it is only right if the model was trained with the default normalisation.
    """
    from .. import zoo

    if zoo.is_zoo_reference(name_or_path):
        return zoo.load(name_or_path)
    model = load_model(name_or_path)
    try:
        processor = GeoFMImageProcessor.from_pretrained(name_or_path)
    except OSError:
        logger.warning(
            "%s has no saved image processor: using GeoFMImageProcessor's defaults (percentile normalisation), which "
            "may differ from the model's training",
            name_or_path,
        )
        processor = GeoFMImageProcessor(num_channels=getattr(model.config, "in_channels", 1))
    return model, processor


def dataset_label_names(name_or_path: str) -> list[str] | None:
    """Class names a dataset declares in its ``id2label.json`` (a local folder's, or a Hub dataset's), or None.

    Datasets built by :mod:`geofm_hf.data` carry this file; others may not, and then nothing can be checked.
    """
    folder = Path(name_or_path)
    if folder.is_dir():
        path = folder / DATASET_ID2LABEL_FILE
        if not path.is_file():
            return None
    else:
        try:
            path = Path(hf_hub_download(name_or_path, DATASET_ID2LABEL_FILE, repo_type="dataset"))
        # Not a repo id, not on the Hub, not in the cache while offline, or no such file: nothing declared to read.
        except (OSError, EntryNotFoundError, ValueError):
            return None
    try:
        id2label = {int(key): str(name) for key, name in json.loads(path.read_text(encoding="utf-8")).items()}
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{path}: expected a JSON object mapping class ids to names ({error})") from error
    return [id2label[class_id] for class_id in sorted(id2label)]


def check_same_task(model_config, model_name: str, dataset_labels: Sequence[str] | None, dataset_name: str) -> None:
    """Refuse a dataset whose declared classes are not the model's, naming the tasks they belong to."""
    model_labels = label_names(model_config)
    if dataset_labels is None or list(dataset_labels) == model_labels:
        return
    dataset_tasks = [spec.name for spec in TASKS.values() if list(spec.label_names) == list(dataset_labels)]
    dataset_task = f" (task {dataset_tasks[0]!r})" if dataset_tasks else ""
    raise ValueError(
        f"Dataset {dataset_name} declares classes {list(dataset_labels)}{dataset_task} in {DATASET_ID2LABEL_FILE}, but "
        f"model {model_name} was trained for task {getattr(model_config, 'task', None)!r} with classes {model_labels}"
    )


def load_split(name_or_path: str, split: str) -> datasets.Dataset:
    """One split of a dataset folder or Hub dataset.

    Raises:
        ValueError: the dataset cannot be read (naming it and why: a missing folder, an unreachable Hub, an empty or
            damaged split file), has no split ``split`` (naming the splits present), or the split has no rows.
    """
    import datasets
    from datasets.exceptions import DatasetGenerationError

    try:
        dataset_dict = datasets.load_dataset(name_or_path)
    except (OSError, ValueError, DatasetGenerationError) as error:
        cause = f"; {error.__cause__}" if error.__cause__ is not None else ""
        raise ValueError(
            f"Cannot load dataset {name_or_path!r}: neither a dataset folder nor a reachable Hub dataset, or a split "
            f"file of it is empty or damaged ({error}{cause})"
        ) from error
    if split not in dataset_dict:
        raise ValueError(f"Dataset {name_or_path!r} has no split {split!r}; its splits are: {', '.join(dataset_dict)}")
    if len(dataset_dict[split]) == 0:
        raise ValueError(f"Dataset {name_or_path!r}: the {split!r} split has no rows, so there is nothing to evaluate")
    return dataset_dict[split]


__all__ = [
    "DATASET_ID2LABEL_FILE",
    "RowChecker",
    "check_same_task",
    "dataset_label_names",
    "evaluate_model",
    "label_names",
    "load_model",
    "load_model_and_processor",
    "load_split",
]
