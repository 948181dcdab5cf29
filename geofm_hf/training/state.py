"""What a run carries from step to step: its prepared objects (:class:`TrainingRun`), its progress
(:class:`TrainerState`, saved in every checkpoint and as ``trainer_state.json``) and what it returns
(:class:`TrainingResult`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from ..evaluation.results import write_results_json
from ..io.checks import check_finite_parameters
from ..models.build import BackboneInfo
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..models.tasks import TaskSpec
from .adaptation import ParameterCounts
from .averaging import WeightAverage
from .config import TrainingConfig
from .curves import append_jsonl
from .data import SectionDataset
from .layout import RunLayout

if TYPE_CHECKING:
    import datasets

BEST_METRIC = "mean_iou"


@dataclass
class TrainerState:
    """Progress of a run, saved in every checkpoint and as ``trainer_state.json``.

    Attributes:
        global_step: optimiser steps done.
        best_metric: best validation mIoU so far (dataset-level), and ``best_step`` where it was reached.
        history: training logs ``{step, epoch, loss, learning_rate, head_learning_rate}`` and evaluations
            ``{step, epoch, validation: {scores}}``, in order.
        train_seconds: time spent in optimiser steps, on the config's ``train_time_clock``, over all resumes
            (evaluation and checkpointing excluded): what ``max_train_seconds`` is checked against.
        out_of_time: whether training ended because ``max_train_seconds`` was spent.
    """

    global_step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    out_of_time: bool = False

    def save(self, path: Path, **extra: Any) -> None:
        write_results_json({**dataclasses.asdict(self), **extra}, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainerState":
        """The state from a saved state file's contents (its other keys, such as ``world_size``, are ignored)."""
        # Fields added later keep their defaults when resuming an older checkpoint.
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    @classmethod
    def load(cls, path: Path) -> "TrainerState":
        return cls.from_dict(json.loads(path.read_text()))


@dataclass
class TrainingRun:
    """Everything a run needs once its inputs are checked and built (see `geofm_hf.training.setup.prepare_run`)."""

    config: TrainingConfig
    accelerator: Accelerator
    task: TaskSpec
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_loader: DataLoader
    validation_loader: DataLoader | None
    train_dataset: SectionDataset
    test_split: datasets.Dataset
    processor: GeoFMImageProcessor
    backbone: BackboneInfo
    parameters: ParameterCounts
    split_sizes: dict[str, int]
    steps_per_epoch: int
    total_steps: int
    layout: RunLayout
    weight_average: WeightAverage | None = None

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def scored_weights(self) -> contextlib.AbstractContextManager:
        """The weights validation scores and ``best/`` exports: the average (``ema_decay``) swapped in, if kept."""
        if self.weight_average is None:
            return contextlib.nullcontext()
        return self.weight_average.applied(self.unwrapped)

    @property
    def precision(self) -> str:
        """The run's precision in geofm_hf's names (accelerate calls fp32 "no")."""
        mixed = self.accelerator.mixed_precision
        return "fp32" if mixed == "no" else mixed


@dataclass
class TrainingResult:
    """What `geofm_hf.training.train` returns: the output folder, the final state, the test results of ``best/``
    (main process only; see `geofm_hf.evaluation.evaluate_model`) and the trained module with the last step's
    weights (with ``ema_decay``, ``best/`` and the test hold the weight average instead)."""

    output_dir: Path
    state: TrainerState
    test_results: dict[str, Any] | None
    model: nn.Module

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.output_dir)


def run_summary(run: TrainingRun) -> dict[str, Any]:
    """What the state files record about the run besides progress (model cards read it)."""
    return {
        "total_steps": run.total_steps,
        "steps_per_epoch": run.steps_per_epoch,
        "world_size": run.accelerator.num_processes,
        "best_metric_name": f"validation {BEST_METRIC} (dataset-level)" if run.config.validates else "last step",
        "train_splits": list(run.config.train_splits),
        "parameters": run.parameters.as_dict(),
        "split_sizes": run.split_sizes,
    }


class TrainingDivergedError(ValueError):
    """The loss, the gradients or the weights of a run turned NaN or Inf: the run stops and saves no model."""


def divergence_causes(config: TrainingConfig) -> str:
    """The usual reasons a run diverges, with the settings that bear on them."""
    head_rate = config.head_learning_rate or config.learning_rate
    return (
        f"Likely causes: a learning rate too high (learning_rate={config.learning_rate:g}, head_learning_rate="
        f"{head_rate:g}), NaN/Inf or extreme values in the input data ({config.dataset}), or too little precision "
        f"(mixed_precision={config.mixed_precision or 'no'}; try bf16 or no)"
    )


def require_finite_model(run: TrainingRun, step: int) -> None:
    """Refuse to save (``best/``, a checkpoint) a model whose weights are no longer finite.

    Raises:
        TrainingDivergedError: naming the first non-finite tensor and the likely causes.
    """
    try:
        check_finite_parameters(run.unwrapped, f"the model at step {step}", divergence_causes(run.config))
    except ValueError as error:
        raise TrainingDivergedError(f"Training diverged: {error}; nothing is saved from it") from None


def scalar_metrics(entry: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a history entry with flat names (``validation/mean_iou``), as trackers take them."""
    scalars: dict[str, float] = {}
    for key, value in entry.items():
        if isinstance(value, dict):
            scalars.update(scalar_metrics(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            scalars[prefix + key] = value
    return scalars


def record(run: TrainingRun, state: TrainerState, entry: dict[str, Any]) -> None:
    """Add a training log or an evaluation to the history, to ``metrics.jsonl`` (main process) and to the
    experiment trackers of ``report_to`` (accelerate logs on the main process only)."""
    state.history.append(entry)
    if run.is_main:
        append_jsonl(run.layout.metrics_file, entry)
    run.accelerator.log(scalar_metrics(entry), step=entry["step"])


__all__ = [
    "BEST_METRIC",
    "TrainerState",
    "TrainingDivergedError",
    "TrainingResult",
    "TrainingRun",
    "divergence_causes",
    "record",
    "require_finite_model",
    "run_summary",
]
