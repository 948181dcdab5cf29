"""Validation during training, and keeping the best model.

Validation scores sections through `geofm_hf.evaluation.inference.score_batch`, the routine ``geofm evaluate`` uses:
each section at its own size, only its labelled pixels counted. Whenever the validation mIoU improves, ``best/`` (a
plain segmenter and its processor) and, for LoRA, ``adapter/`` are exported from the current weights. A refit on
train + validation has no validation: ``best/`` is its last step.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.logging import get_logger
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..evaluation.inference import evaluation_mode, score_batch
from ..evaluation.results import write_results_json
from ..io.atomic import swap_in_folder
from ..metrics import ConfusionAccumulator
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..models.tasks import TaskSpec
from .adaptation import ADAPTATIONS
from .layout import RunLayout
from .state import (
    BEST_METRIC,
    TrainerState,
    TrainingDivergedError,
    TrainingRun,
    divergence_causes,
    record,
    require_finite_model,
)

logger = get_logger(__name__)

# Scores kept in the history for every evaluation (the full set, with the confusion matrix, is kept for the best).
SUMMARY_SCORES = ("mean_iou", "mean_pixel_accuracy", "overall_accuracy", "mean_f1", "study_batch_miou", "per_class_iou")


def evaluate_loader(
    model: nn.Module, loader: DataLoader, accelerator: Accelerator, task: TaskSpec, ignore_index: int, desc: str
) -> dict[str, Any]:
    """Dataset-level scores (and the study's per-batch variants) of ``model`` on ``loader``, over all processes.

    Each section's confusion matrix is gathered (``gather_for_metrics`` drops the sections repeated to even out the
    last batch across processes) and summed per global batch.
    """
    accumulator = ConfusionAccumulator(task.num_labels, ignore_index)
    with evaluation_mode(model):
        for batch in tqdm(loader, desc=desc, leave=False, disable=not accelerator.is_local_main_process):
            confusions = score_batch(model, batch, task.num_labels, ignore_index).confusions.to(accelerator.device)
            accumulator.add_batch_confusion(accelerator.gather_for_metrics(confusions).sum(dim=0).cpu().numpy())
    return accumulator.compute(task.id2label)


def _summary(scores: dict[str, Any]) -> dict[str, Any]:
    """The history's scores, JSON-ready: a class absent from the split has a NaN IoU, stored as None."""
    summary = {key: scores[key] for key in SUMMARY_SCORES}
    summary["per_class_iou"] = {k: (v if math.isfinite(v) else None) for k, v in summary["per_class_iou"].items()}
    return summary


def _save_plain_model(model: PreTrainedModel, processor: GeoFMImageProcessor, folder: Path) -> None:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _swap_in_written(target: Path, write: Callable[[Path], None]) -> None:
    """Write a folder through its staging sibling and swap it in; a write that produced nothing leaves no folder."""
    staging = RunLayout.staging_dir(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    if any(staging.iterdir()):
        swap_in_folder(staging, target)
    else:
        staging.rmdir()


def save_best(run: TrainingRun, step: int) -> None:
    """Write ``best/`` (plain model + processor) and, for LoRA, ``adapter/`` from the current weights, which must be
    finite."""
    if not run.is_main:
        return
    require_finite_model(run, step)
    adaptation = ADAPTATIONS[run.config.adaptation]
    _swap_in_written(
        run.layout.best_dir, lambda folder: _save_plain_model(adaptation.export(run.unwrapped), run.processor, folder)
    )
    _swap_in_written(
        run.layout.adapter_dir, lambda folder: adaptation.save_extras(run.unwrapped, folder, run.config.dataset)
    )


def validate(run: TrainingRun, state: TrainerState, epoch: int) -> None:
    """Score the validation split, record it, and export the model if it is the best so far; with ``ema_decay``
    both use the weight average (`geofm_hf.training.averaging`).

    Raises:
        TrainingDivergedError: the weights, or the logits they give, are no longer finite.
    """
    with run.scored_weights():
        require_finite_model(run, state.global_step)
        try:
            scores = evaluate_loader(
                run.model,
                run.validation_loader,
                run.accelerator,
                run.task,
                run.unwrapped.config.ignore_index,
                "validation",
            )
        except ValueError as error:  # the validation sections were checked before training: the logits are not finite
            raise TrainingDivergedError(
                f"Training diverged by step {state.global_step} (validation): {error}. {divergence_causes(run.config)}"
            ) from None
        record(run, state, {"step": state.global_step, "epoch": epoch, "validation": _summary(scores)})
        logger.info(f"step {state.global_step}: validation mIoU {scores['mean_iou']:.4f}")
        if state.best_metric is None or scores[BEST_METRIC] > state.best_metric:
            state.best_metric, state.best_step = scores[BEST_METRIC], state.global_step
            save_best(run, state.global_step)
            if run.is_main:
                write_results_json(scores | {"step": state.global_step}, run.layout.best_validation_results_file)
        run.accelerator.wait_for_everyone()


def keep_last_step(run: TrainingRun, state: TrainerState) -> None:
    """A run without validation (a refit on train + validation) keeps its last step as ``best/`` (the weight average
    with ``ema_decay``): there is nothing left to choose a step on.

    Raises:
        TrainingDivergedError: the weights are no longer finite.
    """
    if state.global_step < run.total_steps:
        logger.warning(
            f"The time budget ended this refit at step {state.global_step} of the {run.total_steps} its schedule "
            "spans: best/ is that step, with no validation to say how far it is from the schedule's end"
        )
    with run.scored_weights():
        # On every process before the main one writes, as in validate(): none is left waiting if the weights are bad.
        require_finite_model(run, state.global_step)
        state.best_step = state.global_step
        save_best(run, state.global_step)
        run.accelerator.wait_for_everyone()
    logger.info(f"step {state.global_step}: no validation split to score (train_splits={run.config.train_splits}), "
                "best/ is this last step")


def evaluate_when_due(run: TrainingRun, state: TrainerState, epoch: int, last: bool) -> None:
    """At an evaluation step: :func:`validate`, or without validation :func:`keep_last_step` at the last step."""
    if run.config.validates:
        validate(run, state, epoch)
    elif last:
        keep_last_step(run, state)


__all__ = ["SUMMARY_SCORES", "evaluate_loader", "evaluate_when_due", "keep_last_step", "save_best", "validate"]
