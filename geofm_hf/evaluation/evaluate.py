"""Evaluation of a segmentation model on one dataset split: scores, the study's per-batch scores, and pictures.

:func:`evaluate_model` is what ``geofm evaluate`` runs, and what the training loop calls for its final test
evaluation. It runs the model over a split of a dataset with ``image`` (float 2-D) and ``label`` (class ids) columns,
normalising each section with the image processor exactly as training does (each section's own statistics), and sums
one confusion matrix over the split, from which the dataset-level scores are computed
(:func:`geofm_hf.metrics.segmentation_scores`). On the way it also keeps the study's per-batch scores (Guo, Wu et al.
2025), to compare with the paper's tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoModel

from .models.geofm.image_processing_geofm import GeoFMImageProcessor, check_finite
from .inference.plots import CLIP_PERCENTILES, _class_colors
from .io.atomic import write_atomically
from .cli.errors import reports_errors
from .metrics import ConfusionAccumulator, confusion_matrix, segmentation_scores
from .metrics.plots import plot_confusion_matrix
from .models.tasks import TASKS

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

EVAL_RESULTS_FILE = "eval_results.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
EXAMPLE_FILE = "example_{row:05d}.png"
DATASET_ID2LABEL_FILE = "id2label.json"
REQUIRED_COLUMNS = ("image", "label")
# Classes drawn without colour in the example pictures, so that the section shows through where nothing was found.
UNCOLOURED_CLASSES = frozenset({"background"})
ERROR_COLOUR = (0.85, 0.1, 0.1)
OVERLAY_ALPHA = 0.5
UNLABELLED_WASH = (1.0, 1.0, 1.0, 0.7)


# --- writing -----------------------------------------------------------------------------------------------------


def _json_ready(value: Any) -> Any:
    """``value`` with NaN/Inf floats as None: strict JSON has no NaN (a class absent from the split has NaN scores)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def write_results_json(results: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write evaluation results as indented strict JSON (NaN scores become ``null``), atomically."""
    text = json.dumps(_json_ready(results), indent=2, allow_nan=False) + "\n"
    return write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


# --- pictures ----------------------------------------------------------------------------------------------------


def _grey_limits(image: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(image, CLIP_PERCENTILES)
    return float(low), float(high) if high > low else float(low) + 1.0


def _class_layer(class_ids: np.ndarray, colours: np.ndarray, coloured: np.ndarray, where: np.ndarray) -> np.ndarray:
    """RGBA picture of class ids: ``coloured`` classes in their colour where ``where`` holds, transparent elsewhere."""
    layer = np.zeros((*class_ids.shape, 4))
    shown = where & (class_ids >= 0) & (class_ids < len(colours))
    shown[shown] = coloured[class_ids[shown]]
    layer[shown, :3] = colours[class_ids[shown], :3]
    layer[shown, 3] = OVERLAY_ALPHA
    return layer


def plot_example(
    image: np.ndarray,
    label: np.ndarray,
    prediction: np.ndarray,
    path: str | os.PathLike,
    label_names: Sequence[str],
    title: str,
    ignore_index: int | None = None,
) -> Path:
    """Draw one evaluated section as a PNG: the section in grey, then the label, the prediction and the errors on it.

    Classes are coloured as in ``geofm predict``'s pictures; a class named ``background`` is left uncoloured, so the
    section shows through, and unlabelled pixels are washed out in white. The error panel marks in red the labelled
    pixels whose prediction is wrong. The grey scale is clipped to the 1st and 99th amplitude percentiles, so a few
    spikes do not wash the section out.

    Args:
        image: (rows, columns) amplitudes, rows downwards (time/depth).
        label: (rows, columns) true class ids; ``ignore_index`` marks unlabelled pixels.
        prediction: (rows, columns) predicted class ids.
        path: the PNG to write (atomically).
        label_names: class names in class-id order.
        title: figure title (say which section it is and how well it scored).
        ignore_index: label value of unlabelled pixels, drawn without colour and never counted as an error.

    Returns:
        `Path`: the written file.
    """
    image, label, prediction = np.asarray(image, dtype=np.float32), np.asarray(label), np.asarray(prediction)
    if not (image.ndim == 2 and image.shape == label.shape == prediction.shape):
        raise ValueError(
            f"image {image.shape}, label {label.shape} and prediction {prediction.shape} must be equally shaped "
            "2-D arrays"
        )
    colours = _class_colors(len(label_names))
    coloured = np.array([name not in UNCOLOURED_CLASSES for name in label_names])
    labelled = label != ignore_index if ignore_index is not None else np.ones(label.shape, dtype=bool)
    label_layer = _class_layer(label, colours, coloured, labelled)
    label_layer[~labelled] = UNLABELLED_WASH
    errors = np.zeros((*label.shape, 4))
    errors[labelled & (label != prediction)] = (*ERROR_COLOUR, 0.8)
    panels = {
        "section": None,
        "label": label_layer,
        "prediction": _class_layer(prediction, colours, coloured, np.ones(prediction.shape, dtype=bool)),
        "errors (red: wrong class)": errors,
    }

    rows, columns = image.shape
    panel_width = float(np.clip(columns / 110, 2.6, 5.5))
    panel_height = float(np.clip(panel_width * rows / columns, 1.6, 9.0))
    figure = Figure(figsize=(panel_width * len(panels) + 0.4, panel_height + 1.3), layout="constrained")
    FigureCanvasAgg(figure)
    low, high = _grey_limits(image)
    axes_row = figure.subplots(1, len(panels), sharex=True, sharey=True, squeeze=False)[0]
    for axes, (panel_title, layer) in zip(axes_row, panels.items(), strict=True):
        axes.imshow(image, cmap="gray", vmin=low, vmax=high, aspect="auto", interpolation="antialiased")
        if layer is not None:
            axes.imshow(layer, aspect="auto", interpolation="nearest")
        axes.set_title(panel_title, fontsize=10)
        axes.set_xlabel("trace / column")
    axes_row[0].set_ylabel("sample / row")
    legend = [
        Patch(color=colours[i], alpha=OVERLAY_ALPHA, label=name) for i, name in enumerate(label_names) if coloured[i]
    ]
    legend += [
        Patch(facecolor="none", edgecolor="grey", label=f"{name} (uncoloured)")
        for name in label_names
        if name in UNCOLOURED_CLASSES
    ]
    if not labelled.all():
        legend.append(Patch(facecolor="0.85", edgecolor="grey", label="unlabelled (not scored)"))
    figure.legend(handles=legend, loc="outside lower center", ncols=min(len(legend), 6), fontsize=9, frameon=False)
    figure.suptitle(title, fontsize=11)
    return write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))


# --- evaluation --------------------------------------------------------------------------------------------------


@dataclass
class _Example:
    """One dataset row: its position in the split, the section and its label."""

    row: int
    image: np.ndarray
    label: np.ndarray


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


def _check_example(example: _Example, config, ignore_index: int | None, where: str) -> None:
    """Refuse a row the model cannot be scored on, naming the row and what was expected."""
    image, label = example.image, example.label
    name = f"{where} row {example.row}"
    spatial = image.shape[-2:]
    if image.ndim not in (2, 3) or label.ndim != 2 or label.shape != spatial:
        raise ValueError(
            f"{name}: image {image.shape} and label {label.shape} must be a (height, width) section and its equally "
            "sized label"
        )
    min_size = getattr(config, "pad_multiple", 1)
    if min(spatial) < min_size:
        raise ValueError(
            f"{name}: the section is {spatial[0]} x {spatial[1]} pixels, smaller than one {min_size} x {min_size} "
            "patch of the model"
        )
    check_finite(image, f"{name} image")
    if label.min() >= 0 and label.max() < config.num_labels:
        return
    values = np.unique(label)
    bad = [int(v) for v in values if not (0 <= v < config.num_labels or v == ignore_index)]
    if bad:
        raise ValueError(
            f"{name}: label holds class ids {bad[:10]} outside the model's classes 0..{config.num_labels - 1} "
            f"({', '.join(_label_names(config))}; ignore_index={ignore_index})"
        )


def _label_names(config) -> list[str]:
    # Configs read back from JSON have string keys ("0"), configs built in Python have ints.
    by_id = {int(class_id): name for class_id, name in config.id2label.items()}
    return [by_id[class_id] for class_id in range(config.num_labels)]


def _examples(dataset: datasets.Dataset) -> Iterator[_Example]:
    rows = dataset.select_columns(list(REQUIRED_COLUMNS)).with_format("numpy")
    for row, values in enumerate(rows):
        yield _Example(row, np.asarray(values["image"], dtype=np.float32), np.asarray(values["label"]))


def _equal_size_batches(examples: Iterable[_Example], batch_size: int) -> Iterator[list[_Example]]:
    """Consecutive rows of equal size, up to ``batch_size`` at a time; a change of size starts a new batch."""
    batch: list[_Example] = []
    for example in examples:
        if batch and (len(batch) == batch_size or example.image.shape != batch[0].image.shape):
            yield batch
            batch = []
        batch.append(example)
    if batch:
        yield batch


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


def _predict(
    model: nn.Module, processor: GeoFMImageProcessor, batch: list[_Example], device: torch.device
) -> list[np.ndarray]:
    """Class-id maps of a batch of equally sized sections, each normalised with its own statistics (as in training)."""
    inputs = processor.preprocess([example.image for example in batch], return_tensors="pt")
    outputs = model(pixel_values=inputs["pixel_values"].to(device))
    return [class_ids.cpu().numpy() for class_ids in processor.post_process_semantic_segmentation(outputs)]


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
) -> dict[str, Any]:
    """Scores a segmentation model on one dataset split.

    Each section is normalised by ``processor`` with its own statistics (as the training loop does), consecutive
    sections of equal size go through the model together (up to ``batch_size``; a dataset of varied sizes is run one
    section at a time), and the argmax class of every pixel is compared with the label. One confusion matrix is
    summed over the whole split; the dataset-level scores come from it and do not depend on ``batch_size``.

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
        batch_size: sections per forward pass.
        ignore_index: label value of unlabelled pixels, left out of every score; defaults to
            ``model.config.ignore_index`` (255 for geofm models).
        study_batch_size: sections per batch of the study's per-batch scores; defaults to ``batch_size``.
        device: where to run the model.
        max_overlays: number of example pictures to write (rows spread evenly over the split); 0 for none.
        output_dir: if given, ``eval_results.json``, ``confusion_matrix.png`` and ``example_<row>.png`` are written
            there (each atomically).
        split: name of the split in reports; defaults to ``dataset.split`` (which ``Dataset.select`` does not
            update, so callers holding carved-out splits should pass it).

    Returns:
        `dict`: :func:`~geofm_hf.metrics.segmentation_scores` of the split (``mean_iou``, ``mean_pixel_accuracy``,
        ``overall_accuracy``, ``mean_f1``, ``per_class_*`` keyed by class name, ``confusion_matrix``), the study's
        ``study_batch_miou`` and ``study_batch_mpa``, and ``task``, ``split``, ``num_examples``,
        ``num_labelled_pixels``, ``label_names``, ``ignore_index``, ``study_batch_size``; with ``output_dir`` also
        ``figures`` (file names, relative to ``output_dir``).

    Raises:
        ValueError: the dataset lacks a column, or a row is smaller than a patch of the model, holds non-finite
            values, or has class ids outside the model's classes (the message names the row).
    """
    if batch_size < 1 or (study_batch_size is not None and study_batch_size < 1):
        raise ValueError(f"batch_size ({batch_size}) and study_batch_size ({study_batch_size}) must be >= 1")
    _check_columns(dataset)
    config = model.config
    label_names = _label_names(config)
    ignore_index = getattr(config, "ignore_index", None) if ignore_index is None else ignore_index
    study_batch_size = study_batch_size or batch_size
    split = _split_name(dataset, split)
    where = f"{split} split"
    accumulator = ConfusionAccumulator(config.num_labels, ignore_index)
    study_batches = _StudyBatches(accumulator, study_batch_size)
    example_rows = _example_rows(len(dataset), max_overlays)
    examples: list[tuple[_Example, np.ndarray, np.ndarray]] = []
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode(), tqdm(total=len(dataset), desc=f"evaluating {where}", unit="section") as progress:
            for batch in _equal_size_batches(_examples(dataset), batch_size):
                for example in batch:
                    _check_example(example, config, ignore_index, where)
                for example, prediction in zip(batch, _predict(model, processor, batch, device), strict=True):
                    confusion = confusion_matrix(prediction, example.label, config.num_labels, ignore_index)
                    study_batches.add(confusion)
                    if example.row in example_rows:
                        examples.append((example, prediction, confusion))
                progress.update(len(batch))
    finally:
        model.train(was_training)
    study_batches.flush()

    results = accumulator.compute(id2label=dict(enumerate(label_names)))
    results.update(
        task=getattr(config, "task", None),
        split=split,
        num_examples=len(dataset),
        num_labelled_pixels=int(accumulator.confusion.sum()),
        label_names=label_names,
        ignore_index=ignore_index,
        study_batch_size=study_batch_size,
    )
    if output_dir is not None:
        results["figures"] = _write_figures(Path(output_dir), results, examples, label_names, ignore_index)
        write_results_json(results, Path(output_dir) / EVAL_RESULTS_FILE)
    return results


def _write_figures(
    output_dir: Path,
    results: Mapping[str, Any],
    examples: Sequence[tuple[_Example, np.ndarray, np.ndarray]],
    label_names: Sequence[str],
    ignore_index: int | None,
) -> list[str]:
    """Write the confusion matrix and the example pictures; return their file names."""
    subject = f"{results['task'] or 'model'}, {results['split']}"
    plot_confusion_matrix(
        results["confusion_matrix"],
        label_names,
        output_dir / CONFUSION_MATRIX_FILE,
        title=f"Confusion matrix ({subject}, {results['num_examples']} sections)",
    )
    names = [CONFUSION_MATRIX_FILE]
    for example, prediction, confusion in examples:
        name = EXAMPLE_FILE.format(row=example.row)
        # A section may lack some classes altogether; its mIoU is over the classes it or its prediction has.
        section_miou = segmentation_scores(confusion)["mean_iou"] if confusion.sum() else float("nan")
        image = example.image if example.image.ndim == 2 else example.image[0]
        plot_example(
            image,
            example.label,
            prediction,
            output_dir / name,
            label_names,
            title=f"{subject} row {example.row}: section mIoU {section_miou:.3f}",
            ignore_index=ignore_index,
        )
        names.append(name)
    return names


# --- command line ------------------------------------------------------------------------------------------------


def load_model_and_processor(name_or_path: str) -> tuple[nn.Module, GeoFMImageProcessor]:
    """Load a trained model (Hub id or local folder) and its image processor.

    A model saved without a processor gets a default :class:`GeoFMImageProcessor` with the model's input channels,
    and a warning: it is only right if the model was trained with the default normalisation.
    """
    # The geofm model types are registered with the Auto classes when the geofm_hf package is imported.
    model = AutoModel.from_pretrained(name_or_path)
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
    model_labels = _label_names(model_config)
    if dataset_labels is None or list(dataset_labels) == model_labels:
        return
    dataset_tasks = [spec.name for spec in TASKS.values() if list(spec.label_names) == list(dataset_labels)]
    dataset_task = f" (task {dataset_tasks[0]!r})" if dataset_tasks else ""
    raise ValueError(
        f"Dataset {dataset_name} declares classes {list(dataset_labels)}{dataset_task} in {DATASET_ID2LABEL_FILE}, but "
        f"model {model_name} was trained for task {getattr(model_config, 'task', None)!r} with classes {model_labels}"
    )


def load_split(name_or_path: str, split: str) -> datasets.Dataset:
    """One split of a dataset folder or Hub dataset; an unknown split names the splits present."""
    import datasets

    try:
        dataset_dict = datasets.load_dataset(name_or_path)
    except OSError as error:
        raise ValueError(
            f"Cannot load dataset {name_or_path!r}: neither a dataset folder nor a reachable Hub dataset ({error})"
        ) from error
    if split not in dataset_dict:
        raise ValueError(f"Dataset {name_or_path!r} has no split {split!r}; its splits are: {', '.join(dataset_dict)}")
    return dataset_dict[split]


def _format_table(results: Mapping[str, Any]) -> str:
    rows = [
        ("mean IoU", results["mean_iou"]),
        ("mean pixel accuracy", results["mean_pixel_accuracy"]),
        ("overall accuracy", results["overall_accuracy"]),
        ("mean F1", results["mean_f1"]),
        (f"study per-batch mIoU ({results['study_batch_size']} per batch)", results["study_batch_miou"]),
        (f"study per-batch mPA ({results['study_batch_size']} per batch)", results["study_batch_mpa"]),
        *((f"IoU {name}", value) for name, value in results["per_class_iou"].items()),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:.4f}" for name, value in rows)


@reports_errors("evaluate")
def run_evaluate(args: argparse.Namespace) -> None:
    dataset = load_split(args.dataset, args.split)
    model, processor = load_model_and_processor(args.model)
    check_same_task(model.config, args.model, dataset_label_names(args.dataset), args.dataset)
    results = evaluate_model(
        model,
        processor,
        dataset,
        batch_size=args.batch_size,
        study_batch_size=args.study_batch_size,
        device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        max_overlays=args.max_overlays,
        output_dir=args.output,
    )
    print(f"{args.model} on {args.dataset} [{args.split}]: {results['num_examples']} sections, task {results['task']}")
    print(_format_table(results))
    if args.output is not None:
        for name in [EVAL_RESULTS_FILE, *results["figures"]]:
            print(f"wrote {args.output / name}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return value


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm evaluate MODEL DATASET [--split S] [--output DIR] [--batch-size N] ...`` to the ``geofm`` command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a trained model on a dataset split (mIoU, mPA, per-class IoU, F1, confusion matrix, pictures)",
        description=(
            "Run a trained model over one split of a dataset, normalising each section as training does, and report "
            "dataset-level scores from one confusion matrix, plus the study's per-batch mIoU/mPA. With --output, "
            "write eval_results.json, confusion_matrix.png and example pictures."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", help="Hub id or local folder of a trained model (and its image processor)")
    parser.add_argument("dataset", help="local dataset folder (Parquet + README) or Hub dataset id")
    parser.add_argument("--split", default="test", help="split to evaluate")
    parser.add_argument("--output", type=Path, default=None, help="folder for eval_results.json and the pictures")
    parser.add_argument("--batch-size", type=_positive_int, default=4, help="sections per forward pass")
    parser.add_argument(
        "--study-batch-size",
        type=_positive_int,
        default=None,
        help="sections per batch of the study's per-batch scores (default: --batch-size)",
    )
    parser.add_argument("--max-overlays", type=int, default=4, help="example pictures to write with --output")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.set_defaults(func=run_evaluate)


__all__ = [
    "CONFUSION_MATRIX_FILE",
    "EVAL_RESULTS_FILE",
    "add_cli",
    "check_same_task",
    "dataset_label_names",
    "evaluate_model",
    "load_model_and_processor",
    "load_split",
    "plot_example",
    "write_results_json",
]
