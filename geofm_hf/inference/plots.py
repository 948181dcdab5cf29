"""Pictures of predictions: a seismic section in grey with the predicted classes (or a class probability) on top."""

from __future__ import annotations

import os

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.figure import Figure

from ..io.atomic import write_atomically

# Grey scale clipped to these amplitude percentiles, so a few spikes do not wash the section out.
CLIP_PERCENTILES = (1.0, 99.0)
PROBABILITY_COLORMAP = "inferno"


def _class_colors(count: int) -> np.ndarray:
    palette = colormaps["tab10" if count <= 10 else "tab20"]
    return palette(np.arange(count) % palette.N)


def _fading_colormap(alpha: float) -> ListedColormap:
    """The probability colour map with opacity rising from 0 to ``alpha``: unlikely samples leave the section clear."""
    colors = colormaps[PROBABILITY_COLORMAP](np.linspace(0.0, 1.0, 256))
    colors[:, 3] = np.linspace(0.0, alpha, 256)
    return ListedColormap(colors)


def _extent(x_values: np.ndarray | None, y_values: np.ndarray | None, shape: tuple[int, int]) -> tuple[float, ...]:
    """imshow extent putting each pixel centre on its coordinate (rows downwards)."""
    rows, cols = shape
    x = np.arange(cols) if x_values is None else np.asarray(x_values, dtype=float)
    y = np.arange(rows) if y_values is None else np.asarray(y_values, dtype=float)
    half_x = (x[-1] - x[0]) / max(cols - 1, 1) / 2 if cols > 1 else 0.5
    half_y = (y[-1] - y[0]) / max(rows - 1, 1) / 2 if rows > 1 else 0.5
    return (x[0] - half_x, x[-1] + half_x, y[-1] + half_y, y[0] - half_y)


def plot_prediction_overlay(
    section: np.ndarray,
    prediction: np.ndarray,
    path: str | os.PathLike,
    id2label: dict[int, str],
    title: str,
    probability_of: str | None = None,
    axis_labels: tuple[str, str] = ("trace", "sample"),
    x_values: np.ndarray | None = None,
    y_values: np.ndarray | None = None,
    alpha: float = 0.45,
) -> None:
    """Write a PNG of ``section`` in grey under ``prediction`` in colour, with a labelled colour bar.

    Args:
        section: (rows, columns) amplitudes, rows downwards (time/depth for vertical sections).
        prediction: (rows, columns) class ids, or probabilities in [0, 1] when ``probability_of`` is given.
        path: the PNG to write (atomically: a temporary file in the same folder is renamed into place).
        id2label: class names for the colour bar.
        title: figure title (say which section and direction).
        probability_of: name of the class whose probability ``prediction`` holds; None for class ids.
        axis_labels: (x, y) axis titles.
        x_values, y_values: coordinates of the columns and rows (e.g. crossline numbers and sample times).
        alpha: opacity of the prediction (for probabilities, of probability 1; lower ones fade out).
    """
    section, prediction = np.asarray(section, dtype=np.float32), np.asarray(prediction)
    if section.shape != prediction.shape or section.ndim != 2:
        raise ValueError(f"section {section.shape} and prediction {prediction.shape} must be equally shaped 2-D arrays")
    rows, cols = section.shape
    figure = Figure(figsize=(9.0, float(np.clip(9.0 * rows / cols, 3.5, 12.0))), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    extent = _extent(x_values, y_values, section.shape)
    low, high = np.percentile(section, CLIP_PERCENTILES)
    axes.imshow(section, cmap="gray", vmin=low, vmax=high if high > low else low + 1, extent=extent, aspect="auto")
    if probability_of is None:
        count = len(id2label)
        colormap = ListedColormap(_class_colors(count))
        norm = BoundaryNorm(np.arange(count + 1) - 0.5, count)
        axes.imshow(
            prediction, cmap=colormap, norm=norm, alpha=alpha, extent=extent, aspect="auto", interpolation="nearest"
        )
        colorbar = figure.colorbar(ScalarMappable(norm, colormap), ax=axes, ticks=np.arange(count))
        colorbar.ax.set_yticklabels([id2label[index] for index in range(count)])
        colorbar.set_label("predicted class")
    else:
        colormap, norm = _fading_colormap(alpha), Normalize(0.0, 1.0)
        axes.imshow(prediction, cmap=colormap, norm=norm, extent=extent, aspect="auto", interpolation="nearest")
        figure.colorbar(ScalarMappable(norm, colormap), ax=axes).set_label(f"probability of {probability_of}")
    axes.set_xlabel(axis_labels[0])
    axes.set_ylabel(axis_labels[1])
    axes.set_title(title)
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))


__all__ = ["plot_prediction_overlay"]
