"""Resumable checkpoints: finding the one to resume from, saving (and rotating) them, loading one back.

A checkpoint (``checkpoints/step-N/`` of the run's `RunLayout`) holds Accelerate's ``save_state`` (model, optimiser,
scheduler, sampler and RNG states of every process), the trainer state and, with ``ema_decay``, the weight average;
it is written into a hidden staging folder and renamed, so an interrupted save leaves no half-written checkpoint.
Resuming requires and checks every part first (:func:`verify_checkpoint`): Accelerate itself skips an unreadable RNG
state with an INFO line, and the run drifts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from accelerate.logging import get_logger
from accelerate.utils import OPTIMIZER_NAME, RNG_STATE_NAME, SAFE_WEIGHTS_NAME, SCHEDULER_NAME, load

from ..io.atomic import swap_in_folder
from ..io.weights import check_weight_folder
from .averaging import AVERAGE_FILE
from .config import TrainingConfig
from .layout import RunLayout
from .state import TrainerState, TrainingRun, require_finite_model, run_summary

logger = get_logger(__name__)

# What Accelerate's RNG-state file of each process must hold for the resumed run to draw what the interrupted one would.
RNG_STATE_KEYS = ("random_state", "numpy_random_seed", "torch_manual_seed")
# Files of Accelerate's save_state read with torch.load (optimiser, scheduler, samplers, RNG states, loss scaler).
TORCH_PART_SUFFIXES = (".bin", ".pkl", ".pt")


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
    require_finite_model(run, state.global_step)
    target = layout.checkpoint_dir(state.global_step)
    staging = layout.staging_dir(target)
    if run.is_main:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    if run.is_main:
        state.save(layout.checkpoint_state_file(staging), **run_summary(run))
        if run.weight_average is not None:
            run.weight_average.save(staging / AVERAGE_FILE)
    accelerator.wait_for_everyone()
    if run.is_main:
        swap_in_folder(staging, target)
        for old in layout.checkpoints()[: -run.config.save_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return target


def required_parts(num_processes: int, averaged: bool = False) -> list[str]:
    """The files every checkpoint of a ``num_processes`` run holds (besides samplers and a loss scaler, when used);
    ``averaged``: the run keeps a weight average (``ema_decay``)."""
    return [
        RunLayout.STATE_FILE,
        SAFE_WEIGHTS_NAME,
        f"{OPTIMIZER_NAME}.bin",
        f"{SCHEDULER_NAME}.bin",
        *(f"{RNG_STATE_NAME}_{index}.pkl" for index in range(num_processes)),
        *([AVERAGE_FILE] if averaged else []),
    ]


def _unusable(checkpoint: Path, part: str, problem: str) -> ValueError:
    return ValueError(
        f"Cannot resume from {checkpoint}: {part} {problem}, and a run resumed without it would not continue the "
        "interrupted one; resume from an earlier checkpoint (resume_from_checkpoint=<its folder>) or start again"
    )


def verify_checkpoint(
    checkpoint: Path, num_processes: int, averaged: bool = False, train_splits: Sequence[str] = ("train",)
) -> TrainerState:
    """Check every part of a checkpoint before anything is loaded from it, and return its trainer state
    (``averaged``: the resuming run keeps a weight average, which the checkpoint must hold; ``train_splits``: the
    splits it trains on, which must be the checkpoint's).

    Raises:
        ValueError: a part is missing or unreadable, the weights are not finite, or the checkpoint was written by a
            run of another number of processes (its RNG states would not match) or on other training rows (its epochs
            and skipped batches would not line up); the message names the part.
    """
    missing = [name for name in required_parts(num_processes, averaged) if not (checkpoint / name).is_file()]
    if missing:
        raise _unusable(checkpoint, ", ".join(missing), "is missing")
    state_file = RunLayout.checkpoint_state_file(checkpoint)
    try:
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        state = TrainerState.from_dict(saved)
    except (OSError, ValueError, TypeError) as error:
        raise _unusable(checkpoint, state_file.name, f"is unreadable ({error})") from error
    if saved.get("world_size", num_processes) != num_processes:
        raise _unusable(
            checkpoint, state_file.name, f"records {saved['world_size']} processes where this run has {num_processes}"
        )
    # Checkpoints from before train_splits existed trained on train.
    trained = saved.get("train_splits", ["train"])
    if trained != list(train_splits):
        raise ValueError(
            f"Cannot resume from {checkpoint}: the interrupted run trained on {trained}, this run sets train_splits="
            f"{list(train_splits)}; resume with the interrupted run's train_splits"
        )
    try:
        check_weight_folder(checkpoint, finite=True)
    except ValueError as error:
        raise _unusable(checkpoint, "the model weights", f"are unusable ({error})") from error
    for path in sorted(p for p in checkpoint.iterdir() if p.suffix in TORCH_PART_SUFFIXES):
        try:
            part = load(path, map_location="cpu")
        except Exception as error:  # torch.load raises anything from EOFError to UnpicklingError
            raise _unusable(checkpoint, path.name, f"is unreadable ({type(error).__name__}: {error})") from error
        if path.name.startswith(RNG_STATE_NAME) and not all(key in part for key in RNG_STATE_KEYS):
            raise _unusable(checkpoint, path.name, f"lacks the random states {list(RNG_STATE_KEYS)}")
    return state


def check_earlier_outputs(run: TrainingRun, state: TrainerState, checkpoint: Path) -> None:
    """Refuse, before training, to resume into an output folder that lacks the best model the checkpoint refers to
    (the run would otherwise train to the end and fail there)."""
    if state.best_step is not None and not run.layout.best_dir.is_dir():
        raise ValueError(
            f"Cannot resume from {checkpoint} into output_dir={str(run.layout.root)!r}: the run's best model so far "
            f"(step {state.best_step}) should be in {run.layout.best_dir}, which is missing; copy best/ (and adapter/) "
            "of the run the checkpoint comes from there, or start a fresh run"
        )


def resume(run: TrainingRun, checkpoint: Path) -> TrainerState:
    """Verify a checkpoint (see :func:`verify_checkpoint`), load it into the prepared objects and return its trainer
    state."""
    state = verify_checkpoint(
        checkpoint, run.accelerator.num_processes, run.weight_average is not None, run.config.train_splits
    )
    check_earlier_outputs(run, state, checkpoint)
    if run.weight_average is not None:
        try:
            run.weight_average.load(checkpoint / AVERAGE_FILE)
        except ValueError as error:
            raise _unusable(checkpoint, AVERAGE_FILE, f"is unusable ({error})") from None
    elif (checkpoint / AVERAGE_FILE).is_file():
        raise ValueError(
            f"Cannot resume from {checkpoint}: the interrupted run kept a weight average ({AVERAGE_FILE}) and chose "
            "its best model on it, and this run sets no ema_decay; resume with the interrupted run's ema_decay"
        )
    run.accelerator.load_state(str(checkpoint))
    logger.info(f"Resumed from {checkpoint} at step {state.global_step}")
    return state


__all__ = [
    "check_earlier_outputs",
    "required_parts",
    "resolve_checkpoint",
    "resume",
    "save_checkpoint",
    "verify_checkpoint",
]
