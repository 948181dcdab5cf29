"""Pictures of segmentation scores, written as PNG files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.atomic import write_atomically
from .confusion import _validated_confusion


_NORMALIZATIONS = {
    "true": ("colour: share of each true class, row-normalised", 1),
    "pred": ("colour: share of each predicted class, column-normalised", 0),
    "all": ("colour: share of all pixels", None),
}


def _normalized(matrix: np.ndarray, normalize: str | None) -> np.ndarray:
    if normalize is None:
        return matrix.astype(np.float64)
    _, axis = _NORMALIZATIONS[normalize]
    totals = matrix.sum() if axis is None else matrix.sum(axis=axis, keepdims=True)
    # A class never seen (empty row/column) is drawn as 0 rather than NaN, which matplotlib would leave blank.
    return np.divide(matrix, totals, out=np.zeros(matrix.shape), where=np.asarray(totals) > 0)


def plot_confusion_matrix(
    cm: np.ndarray | Sequence,
    label_names: Sequence[str],
    path: str | os.PathLike,
    normalize: str | None = "true",
    title: str = "Confusion matrix",
) -> Path:
    """Draws a confusion matrix as a PNG: colours show the normalised values, each cell is annotated with its count.

    Args:
        cm: ``(C, C)`` integer counts, rows = ground truth, columns = prediction.
        label_names: the ``C`` class names, in class-id order.
        path: PNG file to write. It is written to a temporary file in the same folder, then renamed, so a reader
            never sees a half-written picture.
        normalize: ``"true"`` (each ground-truth row sums to 1, so the diagonal is the per-class recall),
            ``"pred"`` (each predicted column sums to 1), ``"all"``, or `None` (raw counts).
        title: first line of the figure title; the normalisation is appended.

    Returns:
        `Path`: the written file.

    Raises:
        ValueError: if the matrix is not square or the names do not match its size, or ``normalize`` is unknown.
    """
    matrix = _validated_confusion(cm)
    num_labels = matrix.shape[0]
    if len(label_names) != num_labels:
        raise ValueError(f"label_names has {len(label_names)} names for a {num_labels}x{num_labels} confusion matrix")
    if normalize is not None and normalize not in _NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {sorted(_NORMALIZATIONS)} or None, got {normalize!r}")
    colours = _normalized(matrix, normalize)

    side = 2.5 + 0.9 * num_labels
    figure = Figure(figsize=(side + 1.0, side), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # Fractions keep a fixed 0..1 scale so that pictures of different models compare at a glance.
    top = 1.0 if normalize is not None else max(float(colours.max()), 1.0)
    image = axes.imshow(colours, cmap="Blues", vmin=0.0, vmax=top)
    figure.colorbar(image, ax=axes, label="count" if normalize is None else "fraction")
    for (row, column), count in np.ndenumerate(matrix):
        text = f"{count:,}" if normalize is None else f"{count:,}\n{colours[row, column]:.1%}"
        axes.text(
            column,
            row,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="white" if colours[row, column] > 0.5 * top else "black",
        )
    ticks = np.arange(num_labels)
    axes.set_xticks(ticks, labels=label_names, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=label_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    subtitle = "colour: pixel count" if normalize is None else _NORMALIZATIONS[normalize][0]
    axes.set_title(f"{title}\n({subtitle})")

    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    return path
