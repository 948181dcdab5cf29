"""The step loop: plain Accelerate (device placement, DDP, gradient accumulation, mixed precision), logging, and
validating and checkpointing when due."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from accelerate.logging import get_logger
from tqdm.auto import tqdm

from .checkpoints import save_checkpoint
from .config import TRAIN_TIME_CLOCKS
from .state import TrainerState, TrainingDivergedError, TrainingRun, divergence_causes, record
from .validation import evaluate_when_due

logger = get_logger(__name__)


def _log_record(run: TrainingRun, state: TrainerState, epoch: int, loss_sum: torch.Tensor, count: int) -> dict:
    """Training log entry: the mean batch loss since the last entry (over all processes) and the learning rates."""
    mean_loss = run.accelerator.reduce(loss_sum / count, reduction="mean").item()
    rates = {group["part"]: group["lr"] for group in run.optimizer.param_groups}
    return {
        "step": state.global_step,
        "epoch": epoch,
        "loss": mean_loss,
        "learning_rate": rates.get("backbone", 0.0),
        "head_learning_rate": rates.get("head", 0.0),
    }


def _evaluation_due(run: TrainingRun, step: int, last: bool) -> bool:
    every = run.config.eval_steps or run.steps_per_epoch
    return last or step % every == 0


def _out_of_time(run: TrainingRun, state: TrainerState) -> bool:
    """Whether ``max_train_seconds`` is spent. Processes decide together (one out of time stops all at the same step),
    so that none is left waiting in a collective operation the others have quit."""
    budget = run.config.max_train_seconds
    if budget is None:
        return False
    spent = torch.tensor(float(state.train_seconds >= budget), device=run.accelerator.device)
    return run.accelerator.reduce(spent, reduction="sum").item() > 0


def check_step_finite(run: TrainingRun, step: int, loss_sum: torch.Tensor, grad_norm: torch.Tensor | None) -> None:
    """Stop a diverged run at the step where it diverged, before anything is saved from it.

    ``loss_sum`` (the losses since the last log) turns non-finite with the first non-finite loss. Processes decide
    together, as for the time budget. Under fp16 an infinite gradient norm is the loss scaler's business (it skips
    the step and lowers the scale), not divergence.

    Raises:
        TrainingDivergedError: naming the step, what turned non-finite and the likely causes.
    """
    checked = {"loss": loss_sum.detach().float()}
    if grad_norm is not None and run.accelerator.mixed_precision != "fp16":
        checked["gradient norm"] = torch.as_tensor(grad_norm, device=loss_sum.device).detach().float()
    flags = torch.stack([~torch.isfinite(value) for value in checked.values()]).float()
    bad = run.accelerator.reduce(flags, reduction="sum")
    if bool(bad.any()):
        names = [name for name, flag in zip(checked, bad.tolist()) if flag]
        raise TrainingDivergedError(
            f"Training diverged at step {step}: the {' and the '.join(names)} became NaN or Inf, so the run stops "
            f"and saves no model from it. {divergence_causes(run.config)}"
        )


def _save_due(run: TrainingRun, step: int, evaluated: bool) -> bool:
    return step % run.config.save_steps == 0 if run.config.save_steps else evaluated


def _training_inputs(batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    # The collator's ``sizes`` serve scoring only: the loss ignores padded pixels through their labels.
    return {"pixel_values": batch["pixel_values"], "labels": batch["labels"]}


def train_steps(run: TrainingRun, state: TrainerState) -> float:
    """Run optimiser steps until ``total_steps`` or the end of the time budget, evaluating and checkpointing when due.

    The last step is always evaluated (and checkpointed unless ``save_steps`` says otherwise), so ``best/`` exists.
    A non-finite loss or gradient norm stops the run at once (:func:`check_step_finite`).

    Returns:
        `float`: training throughput in sections per second over all processes (evaluation and saving excluded).
    """
    accelerator, model, config = run.accelerator, run.model, run.config
    if state.global_step >= run.total_steps:  # resumed from the schedule's last checkpoint: nothing is left to train
        return 0.0
    clock = TRAIN_TIME_CLOCKS[config.train_time_clock]
    model.train()
    start_epoch = state.global_step // run.steps_per_epoch
    skip_batches = (state.global_step % run.steps_per_epoch) * config.gradient_accumulation_steps
    loss_sum, loss_count, train_seconds, samples = torch.zeros((), device=accelerator.device), 0, 0.0, 0
    progress = tqdm(
        total=run.total_steps, initial=state.global_step, desc="training", disable=not accelerator.is_local_main_process
    )
    for epoch in range(start_epoch, math.ceil(run.total_steps / run.steps_per_epoch)):
        run.train_loader.set_epoch(epoch)
        run.train_dataset.set_epoch(epoch)
        batches = run.train_loader
        if epoch == start_epoch and skip_batches:
            batches = accelerator.skip_first_batches(run.train_loader, skip_batches)
        tick, clock_tick = time.perf_counter(), clock()
        for batch in batches:
            with accelerator.accumulate(model):
                loss = model(**_training_inputs(batch)).loss
                accelerator.backward(loss)
                grad_norm = None
                if accelerator.sync_gradients and config.max_grad_norm:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                run.optimizer.step()
                run.scheduler.step()
                run.optimizer.zero_grad()
            loss_sum += loss.detach()
            loss_count += 1
            samples += len(batch["labels"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            progress.update()
            train_seconds += time.perf_counter() - tick
            state.train_seconds += clock() - clock_tick
            step = state.global_step
            check_step_finite(run, step, loss_sum, grad_norm)
            # A step fp16's loss scaler skipped changed no weight, and is no step of the average either.
            if run.weight_average is not None and not accelerator.optimizer_step_was_skipped:
                run.weight_average.update(run.unwrapped)
            state.out_of_time = _out_of_time(run, state)
            last = step >= run.total_steps or state.out_of_time
            if state.out_of_time:
                logger.info(
                    f"Time budget spent ({state.train_seconds:.1f} s >= max_train_seconds={config.max_train_seconds}, "
                    f"{config.train_time_clock} clock): training ends at step {step}"
                )
            if step % config.logging_steps == 0 or last:
                entry = _log_record(run, state, epoch, loss_sum, loss_count)
                record(run, state, entry)
                progress.set_postfix(loss=f"{entry['loss']:.4f}")
                loss_sum.zero_()
                loss_count = 0
            evaluated = _evaluation_due(run, step, last)
            if evaluated:
                evaluate_when_due(run, state, epoch, last)
            if _save_due(run, step, evaluated):
                save_checkpoint(run, state)
            if last:
                break
            tick, clock_tick = time.perf_counter(), clock()
        if state.global_step >= run.total_steps or state.out_of_time:
            break
    progress.close()
    return samples / max(train_seconds, 1e-9)


__all__ = ["TrainingDivergedError", "check_step_finite", "train_steps"]
