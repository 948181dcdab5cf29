"""Pictures of an evaluation: the split's confusion matrix and example sections (label, prediction, errors)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..inference.plots import CLIP_PERCENTILES, _class_colors
from ..io.atomic import write_atomically
from ..metrics import segmentation_scores
from ..metrics.plots import plot_confusion_matrix
from .results import CONFUSION_MATRIX_FILE, example_file

# Classes drawn without colour in the example pictures, so that the section shows through where nothing was found.
UNCOLOURED_CLASSES = frozenset({"background"})
ERROR_COLOUR = (0.85, 0.1, 0.1)
OVERLAY_ALPHA = 0.5
UNLABELLED_WASH = (1.0, 1.0, 1.0, 0.7)


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


@dataclass(frozen=True)
class Example:
    """One evaluated row to draw: its raw section and label, the prediction and the row's confusion matrix."""

    row: int
    image: np.ndarray
    label: np.ndarray
    prediction: np.ndarray
    confusion: np.ndarray


def write_figures(
    output_dir: Path,
    results: Mapping[str, Any],
    examples: Sequence[Example],
    label_names: Sequence[str],
    ignore_index: int | None,
) -> list[str]:
    """Write the confusion matrix and the example pictures of an evaluation; return their file names."""
    subject = f"{results['task'] or 'model'}, {results['split']}"
    plot_confusion_matrix(
        results["confusion_matrix"],
        label_names,
        output_dir / CONFUSION_MATRIX_FILE,
        title=f"Confusion matrix ({subject}, {results['num_examples']} sections)",
    )
    names = [CONFUSION_MATRIX_FILE]
    for example in examples:
        name = example_file(example.row)
        # A section may lack some classes altogether; its mIoU is over the classes it or its prediction has.
        confusion = example.confusion
        section_miou = segmentation_scores(confusion)["mean_iou"] if confusion.sum() else float("nan")
        image = example.image if example.image.ndim == 2 else example.image[0]
        plot_example(
            image,
            example.label,
            example.prediction,
            output_dir / name,
            label_names,
            title=f"{subject} row {example.row}: section mIoU {section_miou:.3f}",
            ignore_index=ignore_index,
        )
        names.append(name)
    return names


__all__ = ["Example", "plot_example", "write_figures"]
