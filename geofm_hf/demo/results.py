"""A section's prediction in the demo: the tiled prediction itself, the pictures the page shows, the scores against a
label, and the files it offers for download.

The pictures are drawn pixel for pixel with numpy (one picture sample per section sample, fast enough to redraw when
another class is chosen); the downloadable picture is ``geofm predict``'s overlay with axes and a colour bar.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from torch import nn

from ..evaluation.inference import resolve_device
from ..evaluation.plots import UNCOLOURED_CLASSES
from ..inference import plan_prediction, predict_with_plan
from ..inference.plots import CLIP_PERCENTILES, PROBABILITY_COLORMAP, _class_colors, plot_prediction_overlay
from ..metrics import confusion_matrix, segmentation_scores
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from .sections import SectionInput, write_section_segy

OVERLAY_ALPHA = 0.45
# Opacity of a probability of 1 over the section; lower probabilities fade out, so unlikely samples stay clear.
PROBABILITY_ALPHA = 0.85
# Small sections are shown enlarged to about this many pixels along their longer side, by at most this factor.
DISPLAY_SIDE, MAX_DISPLAY_FACTOR = 480, 8
# What a finished prediction leaves in its folder for the page to redraw from (besides the downloads).
SECTION_FILE, PROBABILITIES_FILE, CLASSES_FILE = "section.npy", "probabilities.npy", "classes.json"


@dataclass(frozen=True)
class Prediction:
    """A predicted section.

    Attributes:
        section: the section as predicted.
        probabilities: (classes, rows, columns) float32 class probabilities.
        class_names: the model's class names in class-id order.
    """

    section: SectionInput
    probabilities: np.ndarray
    class_names: list[str]

    @property
    def labels(self) -> np.ndarray:
        """(rows, columns) uint8 ids of the most likely class."""
        return self.probabilities.argmax(axis=0).astype(np.uint8)


def predict_section(
    model: nn.Module, processor: GeoFMImageProcessor, section: SectionInput, class_names: list[str]
) -> Prediction:
    """Predict every sample of ``section`` with the tiled predictor (tiles of the model's training size, blended).

    Amplitudes are normalised with the statistics of the whole volume for a section of a volume (as ``geofm
    predict`` does for a survey), else with the section's own. Progress goes to a tqdm bar (the page follows it).
    """
    plan = plan_prediction(model.config, section.values, output="probabilities")
    stats = None if section.stats_sample is None else processor.amplitude_stats(section.stats_sample)
    device = resolve_device(None)
    probabilities = predict_with_plan(model, section.values, plan, device, processor=processor, stats=stats)
    return Prediction(section, probabilities, class_names)


# --- pictures ----------------------------------------------------------------------------------------------------


def grey_picture(values: np.ndarray) -> np.ndarray:
    """(rows, columns, 3) uint8 grey picture of amplitudes clipped to their 1st-99th percentiles."""
    low, high = np.percentile(values, CLIP_PERCENTILES)
    scaled = np.clip((values - low) / (high - low if high > low else 1.0), 0.0, 1.0)
    return np.repeat((scaled * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def class_colours(count: int) -> np.ndarray:
    """(count, 3) uint8 class colours, the same as in ``geofm predict``'s and ``geofm evaluate``'s pictures."""
    return (_class_colors(count)[:, :3] * 255).round().astype(np.uint8)


def _blend(base: np.ndarray, colours: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    mixed = base * (1.0 - opacity[..., None]) + colours * opacity[..., None]
    return mixed.round().astype(np.uint8)


def overlay_picture(values: np.ndarray, labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    """(rows, columns, 3) uint8: the section in grey with each class in its colour (``background`` left clear)."""
    colours = class_colours(len(class_names)).astype(np.float64)
    coloured = np.array([name not in UNCOLOURED_CLASSES for name in class_names])
    opacity = np.where(coloured[labels], OVERLAY_ALPHA, 0.0)
    return _blend(grey_picture(values).astype(np.float64), colours[labels], opacity)


def probability_picture(values: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """(rows, columns, 3) uint8: the section in grey under one class's probability in colour, fading where low."""
    colours = colormaps[PROBABILITY_COLORMAP](np.clip(probability, 0.0, 1.0))[..., :3] * 255
    return _blend(grey_picture(values).astype(np.float64), colours, PROBABILITY_ALPHA * np.clip(probability, 0.0, 1.0))


def for_display(picture: np.ndarray) -> np.ndarray:
    """``picture`` enlarged by a whole factor (each sample a block of pixels) until its longer side reaches
    :data:`DISPLAY_SIDE`: browsers smooth small pictures they stretch, which blurs class boundaries."""
    factor = min(MAX_DISPLAY_FACTOR, max(1, math.ceil(DISPLAY_SIDE / max(picture.shape[:2]))))
    return picture.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else picture


def _swatch(colour: str) -> str:
    return f'<span style="display:inline-block;width:1em;height:1em;background:{colour};vertical-align:middle"></span>'


def legend_html(class_names: list[str], labels: np.ndarray) -> str:
    """HTML legend of the overlay: each class's colour, name and share of the section's samples."""
    shares = np.bincount(labels.ravel(), minlength=len(class_names)) / labels.size
    items = []
    for name, colour, share in zip(class_names, class_colours(len(class_names)), shares):
        shown = "transparent;border:1px solid #888" if name in UNCOLOURED_CLASSES else "rgb({},{},{})".format(*colour)
        items.append(f"<span style='margin-right:1.2em'>{_swatch(shown)} {escape(name)} ({share:.0%})</span>")
    return f"<div class='geofm-legend'>{''.join(items)}</div>"


def probability_legend_html(class_name: str) -> str:
    """HTML colour bar of the probability picture."""
    stops = ", ".join(
        "rgb({},{},{})".format(*(np.array(colormaps[PROBABILITY_COLORMAP](x)[:3]) * 255).round().astype(int))
        for x in np.linspace(0.0, 1.0, 6)
    )
    style = f"display:inline-block;width:12em;height:0.9em;background:linear-gradient(to right, {stops})"
    bar = f"<span style='{style}'></span>"
    text = f"probability of {escape(class_name)}: 0 {bar} 1 (low values fade to the section)"
    return f"<div class='geofm-legend'>{text}</div>"


# --- scores ------------------------------------------------------------------------------------------------------


def score_labels(labels: np.ndarray, label: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Scores of predicted ``labels`` against a ``label`` of the same section (one confusion matrix).

    Returns:
        ``mean_iou`` (over the classes present in the label or the prediction), ``pixel_accuracy`` (share of samples
        right), ``mean_class_accuracy`` (mean per-class recall) and ``per_class_iou`` (by class name; NaN for a class
        in neither).
    """
    confusion = confusion_matrix(labels, label, len(class_names))
    scores = segmentation_scores(confusion, dict(enumerate(class_names)))
    return {
        "mean_iou": scores["mean_iou"],
        "pixel_accuracy": scores["overall_accuracy"],
        "mean_class_accuracy": scores["mean_pixel_accuracy"],
        "per_class_iou": scores["per_class_iou"],
    }


def scores_markdown(scores: dict[str, Any]) -> str:
    """The scores as a Markdown summary line and a per-class table."""
    lines = [
        f"**mIoU {scores['mean_iou']:.3f}** · pixel accuracy {scores['pixel_accuracy']:.3f} · "
        f"mean class accuracy {scores['mean_class_accuracy']:.3f}",
        "",
        "| class | IoU |",
        "|---|---|",
    ]
    lines += [f"| {name} | {'-' if np.isnan(iou) else f'{iou:.3f}'} |" for name, iou in scores["per_class_iou"].items()]
    return "\n".join(lines)


# --- files -------------------------------------------------------------------------------------------------------


def _download_stem(section: SectionInput) -> str:
    stem = section.source.stem
    return stem if section.axis is None else f"{stem}_{section.axis.name}{section.number:g}"


def write_downloads(folder: str | os.PathLike, prediction: Prediction) -> list[Path]:
    """Write the prediction's downloads into ``folder``: class ids (``.npy``), the overlay picture with axes and a
    legend (PNG) and, for a section of a SEG-Y survey, the class ids as SEG-Y with the section's trace headers."""
    folder, section, labels = Path(folder), prediction.section, prediction.labels
    stem = _download_stem(section)
    files = [folder / f"{stem}_prediction.npy", folder / f"{stem}_prediction.png"]
    np.save(files[0], labels)
    plot_prediction_overlay(
        section.values,
        labels,
        files[1],
        dict(enumerate(prediction.class_names)),
        f"{section.title}: predicted classes",
        axis_labels=section.axis_labels,
    )
    if section.is_segy:
        files.append(write_section_segy(folder / f"{stem}_prediction.sgy", section, labels))
    return files


def keep_for_redrawing(folder: str | os.PathLike, prediction: Prediction) -> None:
    """Store what the page needs to draw another class's probability later (see :func:`class_probability`)."""
    folder = Path(folder)
    np.save(folder / SECTION_FILE, prediction.section.values)
    np.save(folder / PROBABILITIES_FILE, prediction.probabilities)
    (folder / CLASSES_FILE).write_text(json.dumps(prediction.class_names), encoding="utf-8")


def class_probability(folder: str | os.PathLike, class_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The section and one class's probability from a folder written by :func:`keep_for_redrawing`.

    Raises:
        ValueError: ``class_name`` is not one of the prediction's classes.
    """
    folder = Path(folder)
    names = json.loads((folder / CLASSES_FILE).read_text(encoding="utf-8"))
    if class_name not in names:
        raise ValueError(f"class {class_name!r} is not one of the prediction's classes: {', '.join(names)}")
    probabilities = np.load(folder / PROBABILITIES_FILE, mmap_mode="r")
    return np.load(folder / SECTION_FILE), np.asarray(probabilities[names.index(class_name)])


__all__ = [
    "Prediction",
    "class_colours",
    "class_probability",
    "for_display",
    "grey_picture",
    "keep_for_redrawing",
    "legend_html",
    "overlay_picture",
    "predict_section",
    "probability_legend_html",
    "probability_picture",
    "score_labels",
    "scores_markdown",
    "write_downloads",
]
