"""Segmentation metrics: confusion matrices, dataset-level scores, the study's per-batch scores, an `evaluate` module.

The training and inference loops use :class:`ConfusionAccumulator` directly; the `evaluate` module
(:func:`load_segmentation_metric`) gives the same numbers through the `evaluate` interface. Confusion-matrix pictures
are drawn by :func:`geofm_hf.metrics.plots.plot_confusion_matrix` (kept out of this namespace: it imports matplotlib).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .confusion import (
    ConfusionAccumulator,
    LabelArray,
    confusion_matrix,
    segmentation_scores,
    study_batch_miou,
    study_batch_mpa,
)


if TYPE_CHECKING:
    import evaluate


SEGMENTATION_METRIC_PATH = Path(__file__).resolve().parent / "geofm_segmentation"
"""Folder of the `evaluate` module shipped with the package (the folder name is the module name)."""


def load_segmentation_metric(**kwargs) -> "evaluate.EvaluationModule":
    """Loads the package's segmentation metric with ``evaluate.load``, from the installed package (no Hub access).

    Args:
        kwargs: passed to ``evaluate.load`` (e.g. ``experiment_id``, ``num_process``, ``process_id``).

    Returns:
        `evaluate.EvaluationModule`: call ``compute(predictions=..., references=..., num_labels=...)`` on it.
    """
    # evaluate takes ~8 s to import: only pay for it when the module is wanted.
    import evaluate

    return evaluate.load(str(SEGMENTATION_METRIC_PATH), **kwargs)


__all__ = [
    "SEGMENTATION_METRIC_PATH",
    "ConfusionAccumulator",
    "LabelArray",
    "confusion_matrix",
    "load_segmentation_metric",
    "segmentation_scores",
    "study_batch_miou",
    "study_batch_mpa",
]
