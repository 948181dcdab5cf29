"""What a run carries from step to step: its prepared objects (:class:`TrainingRun`), its progress
(:class:`TrainerState`, saved in every checkpoint and as ``trainer_state.json``) and what it returns
(:class:`TrainingResult`)."""

from __future__ import annotations

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
from ..models.build import BackboneInfo
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..models.tasks import TaskSpec
from .adaptation import ParameterCounts
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
    def load(cls, path: Path) -> "TrainerState":
        data = json.loads(path.read_text())
        # Fields added later keep their defaults when resuming an older checkpoint.
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


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
    validation_loader: DataLoader
    train_dataset: SectionDataset
    test_split: datasets.Dataset
    processor: GeoFMImageProcessor
    backbone: BackboneInfo
    parameters: ParameterCounts
    split_sizes: dict[str, int]
    steps_per_epoch: int
    total_steps: int
    layout: RunLayout

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)


@dataclass
class TrainingResult:
    """What `geofm_hf.training.train` returns: the output folder, the final state, the test results of ``best/``
    (main process only; see `geofm_hf.evaluation.evaluate_model`) and the trained module."""

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
        "best_metric_name": f"validation {BEST_METRIC} (dataset-level)",
        "parameters": run.parameters.as_dict(),
        "split_sizes": run.split_sizes,
    }


def record(run: TrainingRun, state: TrainerState, entry: dict[str, Any]) -> None:
    """Add a training log or an evaluation to the history, and (main process) to ``metrics.jsonl``."""
    state.history.append(entry)
    if run.is_main:
        append_jsonl(run.layout.metrics_file, entry)


__all__ = ["BEST_METRIC", "TrainerState", "TrainingResult", "TrainingRun", "record", "run_summary"]
