"""Confusion matrices and the segmentation scores derived from them.

Two families of scores are offered:

* **Dataset-level scores** (:func:`segmentation_scores`), computed once from the confusion matrix summed over the whole
  evaluation set. They do not depend on how the set is split into batches; they are the package's default.
* **The study's per-batch scores** (:func:`study_batch_miou`, :func:`study_batch_mpa`), which reproduce how Guo, Wu et
  al. (2025) computed the numbers in their tables: one score per evaluation batch, then the plain mean over batches.
  Use them only to compare with the paper.

:class:`ConfusionAccumulator` collects both while an evaluation loop runs.

Every confusion matrix here has the ground truth on the rows and the prediction on the columns: ``cm[i, j]`` counts
the pixels of class ``i`` predicted as class ``j``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np
import torch


LabelArray = Union[np.ndarray, torch.Tensor, Sequence]
"""Integer class ids of any shape: a numpy array, a torch tensor (any device) or nested Python sequences."""

_MAX_REPORTED_VALUES = 10


def _check_label_space(num_labels: int, ignore_index: int | None) -> None:
    if not isinstance(num_labels, (int, np.integer)) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
    if ignore_index is not None and 0 <= ignore_index < num_labels:
        # An in-range ignore_index would leave that class's column filled by predictions while its row stays empty:
        # the class's scores would then mean nothing. Relabel such pixels to an out-of-range value instead.
        raise ValueError(
            f"ignore_index={ignore_index} is one of the classes 0..{num_labels - 1}; it must lie outside them "
            "(e.g. 255 or -100)"
        )


def _as_label_tensor(values: LabelArray, name: str) -> torch.Tensor:
    """Returns ``values`` as an int64 tensor, refusing non-integer data (e.g. logits passed instead of class ids)."""
    if isinstance(values, torch.Tensor):
        if values.dtype.is_floating_point or values.dtype.is_complex:
            raise TypeError(f"{name} must hold integer class ids, got a tensor of dtype {values.dtype}")
        return values.long()
    array = np.asarray(values)
    if array.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer class ids, got an array of dtype {array.dtype}")
    return torch.from_numpy(array.astype(np.int64, copy=False))


def _check_in_range(values: torch.Tensor, num_labels: int, name: str, ignore_index: int | None) -> None:
    out_of_range = (values < 0) | (values >= num_labels)
    if out_of_range.any():
        bad = torch.unique(values[out_of_range]).tolist()
        shown = bad[:_MAX_REPORTED_VALUES] + (["..."] if len(bad) > _MAX_REPORTED_VALUES else [])
        raise ValueError(
            f"{name} contain values {shown} outside the classes 0..{num_labels - 1} "
            f"(num_labels={num_labels}, ignore_index={ignore_index})"
        )


def confusion_matrix(
    predictions: LabelArray,
    references: LabelArray,
    num_labels: int,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Counts predicted against true classes over all pixels.

    Args:
        predictions: predicted class ids, any shape (e.g. ``(batch, height, width)``).
        references: true class ids, same shape as ``predictions``.
        num_labels: number of classes ``C``; valid ids are ``0..C-1``.
        ignore_index: reference value marking unlabelled pixels, which are left out (whatever was predicted there).
            It must lie outside ``0..C-1``.

    Returns:
        `np.ndarray` of shape ``(C, C)`` and dtype int64: rows are the ground truth, columns the prediction.

    Raises:
        TypeError: if either input holds non-integer values.
        ValueError: if the shapes differ, or a labelled pixel has a reference or prediction outside ``0..C-1``
            (the message lists the offending values).
    """
    _check_label_space(num_labels, ignore_index)
    preds = _as_label_tensor(predictions, "predictions")
    refs = _as_label_tensor(references, "references").to(preds.device)
    if preds.shape != refs.shape:
        raise ValueError(
            f"predictions and references must have the same shape, got {tuple(preds.shape)} and {tuple(refs.shape)}"
        )
    preds, refs = preds.reshape(-1), refs.reshape(-1)
    if ignore_index is not None:
        labelled = refs != ignore_index
        preds, refs = preds[labelled], refs[labelled]
    _check_in_range(refs, num_labels, "references", ignore_index)
    _check_in_range(preds, num_labels, "predictions", ignore_index)
    # One bincount over flat (true, predicted) pair ids is much faster than scattering into a 2-D matrix.
    counts = torch.bincount(refs * num_labels + preds, minlength=num_labels * num_labels)
    return counts.reshape(num_labels, num_labels).cpu().numpy()


def _validated_confusion(confusion: np.ndarray | Sequence, num_labels: int | None = None) -> np.ndarray:
    matrix = np.asarray(confusion)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {matrix.shape}")
    if num_labels is not None and matrix.shape[0] != num_labels:
        raise ValueError(f"confusion matrix must be ({num_labels}, {num_labels}), got shape {matrix.shape}")
    if matrix.dtype.kind not in "iu":
        raise TypeError(f"confusion matrix must hold integer counts, got dtype {matrix.dtype}")
    if (matrix < 0).any():
        raise ValueError("confusion matrix holds negative counts")
    return matrix.astype(np.int64, copy=False)


def _check_not_empty(matrix: np.ndarray) -> None:
    if matrix.sum() == 0:
        raise ValueError("confusion matrix is empty: no labelled pixel was counted")


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _class_names(num_labels: int, id2label: Mapping[int | str, str] | None) -> list[str]:
    if id2label is None:
        return [str(class_id) for class_id in range(num_labels)]
    # Configs read back from JSON have string keys ("0"), configs built in Python have ints.
    by_id = {int(class_id): name for class_id, name in id2label.items()}
    missing = [class_id for class_id in range(num_labels) if class_id not in by_id]
    if missing:
        raise ValueError(f"id2label has no name for class ids {missing} (expected 0..{num_labels - 1})")
    names = [str(by_id[class_id]) for class_id in range(num_labels)]
    if len(set(names)) != num_labels:
        raise ValueError(f"id2label names must be distinct, got {names}")
    return names


def segmentation_scores(
    confusion: np.ndarray | Sequence,
    id2label: Mapping[int | str, str] | None = None,
) -> dict[str, Any]:
    """Dataset-level segmentation scores from one confusion matrix (summed over the whole evaluation set).

    With ``TP``, ``FP`` and ``FN`` the per-class true positives, false positives and false negatives:

    * IoU = TP / (TP + FP + FN); recall (a.k.a. class pixel accuracy) = TP / (TP + FN);
      precision = TP / (TP + FP); F1 = 2 TP / (2 TP + FP + FN).
    * A per-class score whose denominator is 0 is NaN, and the ``mean_*`` scores are means over the classes where
      it is defined (NaN excluded). Concretely, a class absent from both ground truth and prediction is NaN for every
      score and takes no part in any mean. A class present only in the prediction has IoU 0, F1 0, precision 0 and
      recall NaN. A class present only in the ground truth has IoU 0, F1 0, recall 0 and precision NaN.
    * Background (class 0) is a class like any other and enters every mean.

    Args:
        confusion: ``(C, C)`` integer counts, rows = ground truth, columns = prediction (see :func:`confusion_matrix`).
        id2label: class names keyed by class id (int or str keys, as in a model config); defaults to ``"0"``,
            ``"1"``, ...

    Returns:
        `dict` with
            - **mean_iou** (`float`): mean per-class IoU.
            - **mean_pixel_accuracy** (`float`): mean per-class recall.
            - **overall_accuracy** (`float`): correctly classified pixels / all labelled pixels.
            - **mean_f1** (`float`): macro F1 (mean per-class F1).
            - **per_class_iou**, **per_class_recall**, **per_class_precision**, **per_class_f1**
              (`dict[str, float]`): per-class scores keyed by class name, in class-id order.
            - **confusion_matrix** (`list[list[int]]`): the matrix, as nested lists.

    Raises:
        ValueError: if the matrix is not square, holds negative counts, is empty, or ``id2label`` lacks a class.
    """
    matrix = _validated_confusion(confusion)
    _check_not_empty(matrix)
    names = _class_names(matrix.shape[0], id2label)
    true_positives = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    per_class = {
        "iou": _divide(true_positives, support + predicted - true_positives),
        "recall": _divide(true_positives, support),
        "precision": _divide(true_positives, predicted),
        "f1": _divide(2 * true_positives, support + predicted),
    }
    scores: dict[str, Any] = {
        "mean_iou": float(np.nanmean(per_class["iou"])),
        "mean_pixel_accuracy": float(np.nanmean(per_class["recall"])),
        "overall_accuracy": float(true_positives.sum() / matrix.sum()),
        "mean_f1": float(np.nanmean(per_class["f1"])),
    }
    for score_name, values in per_class.items():
        scores[f"per_class_{score_name}"] = dict(zip(names, values.tolist()))
    scores["confusion_matrix"] = matrix.tolist()
    return scores


def study_batch_miou(confusion: np.ndarray | Sequence) -> float:
    """The study's mIoU of ONE evaluation batch: torchmetrics ``MulticlassJaccardIndex(average="macro")``.

    Per-class IoU = TP / (TP + FP + FN); classes absent from both the batch's ground truth and its prediction are left
    out of the mean; a class present in only one of them counts as IoU 0. Background is included. The study reports
    the plain mean of this value over its evaluation batches (see :class:`ConfusionAccumulator`).

    Args:
        confusion: ``(C, C)`` counts of the batch, rows = ground truth.

    Raises:
        ValueError: if the matrix is empty.
    """
    matrix = _validated_confusion(confusion)
    _check_not_empty(matrix)
    true_positives = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=1) + matrix.sum(axis=0) - true_positives
    present = union > 0
    return float((true_positives[present] / union[present]).mean())


def study_batch_mpa(confusion: np.ndarray | Sequence) -> float:
    """The study's mPA of ONE evaluation batch (its ``SegmentationMetric.classPixelAccuracy``, averaged).

    Per-class recall TP / (TP + FN), where a class absent from the batch's ground truth scores 0 (the study replaces
    the zero denominator by 1) and still enters the mean over all ``C`` classes, background included. Unlike
    :func:`segmentation_scores`, a batch lacking a class is therefore penalised. The study reports the plain mean of
    this value over its evaluation batches (see :class:`ConfusionAccumulator`).

    Args:
        confusion: ``(C, C)`` counts of the batch, rows = ground truth.

    Raises:
        ValueError: if the matrix is empty.
    """
    matrix = _validated_confusion(confusion)
    _check_not_empty(matrix)
    recall = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    return float(recall.mean())


class ConfusionAccumulator:
    """Sums confusion matrices over evaluation batches, keeping the study's per-batch scores on the way.

    Args:
        num_labels: number of classes ``C``.
        ignore_index: reference value of unlabelled pixels (outside ``0..C-1``), or `None`.

    Attributes:
        confusion (`np.ndarray`): ``(C, C)`` int64 counts summed over all batches so far.
        batch_miou (`list[float]`): :func:`study_batch_miou` of every batch that had a labelled pixel.
        batch_mpa (`list[float]`): :func:`study_batch_mpa` of every batch that had a labelled pixel.

    Example:

    ```python
    >>> accumulator = ConfusionAccumulator(num_labels=2)
    >>> for logits, labels in batches:
    ...     accumulator.update(logits.argmax(dim=1), labels)
    >>> accumulator.compute(id2label={0: "background", 1: "fault"})["mean_iou"]
    ```
    """

    def __init__(self, num_labels: int, ignore_index: int | None = None) -> None:
        _check_label_space(num_labels, ignore_index)
        self.num_labels = num_labels
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_labels, num_labels), dtype=np.int64)
        self.batch_miou: list[float] = []
        self.batch_mpa: list[float] = []

    def update(self, predictions: LabelArray, references: LabelArray) -> np.ndarray:
        """Adds one evaluation batch of class ids (see :func:`confusion_matrix`); returns the batch's matrix."""
        batch = confusion_matrix(predictions, references, self.num_labels, self.ignore_index)
        self.add_batch_confusion(batch)
        return batch

    def add_batch_confusion(self, confusion: np.ndarray | Sequence) -> None:
        """Adds one evaluation batch given as its ``(C, C)`` matrix.

        Use it when the batch's matrix is built elsewhere: summed over processes, or over images of different sizes.
        A batch without any labelled pixel adds nothing to the per-batch study scores, which are undefined for it.
        """
        batch = _validated_confusion(confusion, self.num_labels)
        self.confusion += batch
        if batch.sum() > 0:
            self.batch_miou.append(study_batch_miou(batch))
            self.batch_mpa.append(study_batch_mpa(batch))

    def compute(
        self, id2label: Mapping[int | str, str] | None = None, study_variants: bool = True
    ) -> dict[str, Any]:
        """Scores of everything added so far.

        Args:
            id2label: class names keyed by class id, see :func:`segmentation_scores`.
            study_variants: also return ``study_batch_miou`` and ``study_batch_mpa``, the means over batches of
                :func:`study_batch_miou` and :func:`study_batch_mpa` (the numbers the study reports).

        Returns:
            `dict`: :func:`segmentation_scores` of the summed matrix, plus the study's scores if requested.

        Raises:
            ValueError: if no labelled pixel was added.
        """
        scores = segmentation_scores(self.confusion, id2label)
        if study_variants:
            scores["study_batch_miou"] = float(np.mean(self.batch_miou))
            scores["study_batch_mpa"] = float(np.mean(self.batch_mpa))
        return scores
