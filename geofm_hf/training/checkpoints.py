"""Resumable checkpoints: finding the one to resume from, saving (and rotating) them, loading one back.

A checkpoint (``checkpoints/step-N/`` of the run's `RunLayout`) holds Accelerate's ``save_state`` (model, optimiser,
scheduler, sampler and RNG states of every process) and the trainer state; it is written into a hidden staging folder
and renamed, so an interrupted save leaves no half-written checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from accelerate.logging import get_logger

from ..io.atomic import swap_in_folder
from .config import TrainingConfig
from .layout import RunLayout
from .state import TrainerState, TrainingRun, run_summary

logger = get_logger(__name__)


def resolve_checkpoint(config: TrainingConfig) -> Path | None:
    """The checkpoint folder to resume from (``latest`` = the newest in ``output_dir/checkpoints``), or None."""
    if config.resume_from_checkpoint is None:
        return None
    if config.resume_from_checkpoint == "latest":
        layout = RunLayout(config.output_dir)
        found = layout.checkpoints()
        if not found:
            raise ValueError(f"resume_from_checkpoint=latest: no checkpoint in {layout.checkpoints_dir}")
        return found[-1]
    folder = Path(config.resume_from_checkpoint)
    if not RunLayout.checkpoint_state_file(folder).is_file():
        raise ValueError(
            f"resume_from_checkpoint={str(folder)!r} is not a checkpoint folder (no {RunLayout.STATE_FILE} in it)"
        )
    return folder


def save_checkpoint(run: TrainingRun, state: TrainerState) -> Path:
    """Save a resumable checkpoint (model, optimiser, scheduler, sampler and RNG states + trainer state), then delete
    the oldest beyond ``save_total_limit``.

    All processes write into one staging folder (each its own RNG state); the main process then renames it.
    """
    accelerator, layout = run.accelerator, run.layout
    target = layout.checkpoint_dir(state.global_step)
    staging = layout.staging_dir(target)
    if run.is_main:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    if run.is_main:
        state.save(layout.checkpoint_state_file(staging), **run_summary(run))
    accelerator.wait_for_everyone()
    if run.is_main:
        swap_in_folder(staging, target)
        for old in layout.checkpoints()[: -run.config.save_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return target


def resume(run: TrainingRun, checkpoint: Path) -> TrainerState:
    """Load a checkpoint into the prepared objects and return its trainer state."""
    run.accelerator.load_state(str(checkpoint))
    state = TrainerState.load(RunLayout.checkpoint_state_file(checkpoint))
    logger.info(f"Resumed from {checkpoint} at step {state.global_step}")
    return state


__all__ = ["resolve_checkpoint", "resume", "save_checkpoint"]
