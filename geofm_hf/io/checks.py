"""Checks of values read from any source: finite amplitudes, weights and logits, and class-id labels.

Readers, converters and prediction call these, so a bad file is refused with the same message whichever command
reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..models.geofm.image_processing_geofm import check_finite

NON_FINITE_LOGITS_HINT = (
    "The model's output is not usable: its weights are damaged or come from a diverged training, or its precision "
    "overflowed (run in float32)"
)


def check_finite_tensor(values: torch.Tensor, source: str, hint: str) -> None:
    """:func:`check_finite` for tensors: one reduction where the tensor lives; the copy to the CPU that builds the
    message is made only when something is not finite.

    Args:
        values: weights, logits or a loss.
        source: what they are, named first in the message (the file and tensor, the model and batch).
        hint: the likely cause and what to do, ending the message.

    Raises:
        ValueError: ``values`` hold NaN or Inf.
    """
    if not bool(torch.isfinite(values).all()):
        check_finite(values.detach().float().cpu().numpy(), source, hint=hint)


def check_finite_parameters(model: torch.nn.Module, source: str, hint: str) -> None:
    """Refuse a model any of whose parameters or buffers holds NaN or Inf, naming the first such tensor."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point():
            check_finite_tensor(tensor, f"{source}: {name}", hint)


def to_class_ids(
    values: np.ndarray,
    num_labels: int,
    source: str,
    *,
    threshold: float | None = None,
    label_map: Mapping[int, int] | None = None,
) -> np.ndarray:
    """Turn stored label values into uint8 class ids ``0..num_labels-1``.

    Args:
        values: label array as stored (ints, or floats holding ids or likelihoods).
        num_labels: number of classes of the task.
        source: file (and section) named in errors.
        threshold: binarise likelihood labels (``values > threshold`` is class 1), as for fault-likelihood volumes.
        label_map: stored id -> task class id, for sources with other class sets (e.g. Penobscot's 8 intervals).

    Raises:
        ValueError: non-integer values without ``threshold``, ids missing from ``label_map``, or ids out of range.
    """
    values = np.asarray(values)
    if threshold is not None:
        return (values > threshold).astype(np.uint8)
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        raise ValueError(
            f"{source}: label values are not integer class ids (e.g. {values[values != np.round(values)].flat[0]!r});"
            " pass threshold=T for likelihood labels"
        )
    ids = values.astype(np.int64)
    present = np.unique(ids)
    if label_map is not None:
        unmapped = [int(v) for v in present if int(v) not in label_map]
        if unmapped:
            raise ValueError(f"{source}: label ids {unmapped} are not in label_map {dict(label_map)}")
        lookup = np.zeros(int(present.max()) - int(present.min()) + 1, dtype=np.int64)
        for value in present:
            lookup[value - present.min()] = label_map[int(value)]
        ids = lookup[ids - present.min()]
        present = np.unique(ids)
    outside = [int(v) for v in present if not 0 <= v < num_labels]
    if outside:
        raise ValueError(
            f"{source}: label ids {outside} outside 0..{num_labels - 1} (the task has {num_labels} classes); "
            "pass label_map=source:target,... to merge or renumber classes"
        )
    return ids.astype(np.uint8)


__all__ = [
    "NON_FINITE_LOGITS_HINT",
    "check_finite", "check_finite_parameters", "check_finite_tensor", "to_class_ids"]
