"""Training entry points: :func:`train` prepares a run, resumes it if asked, runs the step loop and reports.

Everything a run writes is named by `geofm_hf.training.layout.RunLayout`; everything is written through a temporary
path and renamed, so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import torch

from .checkpoints import resolve_checkpoint, resume
from .config import TrainingConfig
from .curves import write_jsonl
from .loop import train_steps
from .report import finish
from .setup import prepare_run
from .state import TrainerState, TrainingResult, TrainingRun


def run_training(run: TrainingRun) -> TrainingResult:
    """Train a prepared run (resuming when its config says so), then evaluate ``best/`` on the test split."""
    checkpoint = resolve_checkpoint(run.config)
    state = resume(run, checkpoint) if checkpoint is not None else TrainerState()
    if run.is_main:
        run.layout.root.mkdir(parents=True, exist_ok=True)
        run.config.save(run.layout.config_file)
        # A resumed run drops the lines an interrupted one logged after its checkpoint; a fresh run starts empty.
        write_jsonl(run.layout.metrics_file, state.history)
    samples_per_second = train_steps(run, state)
    test_results = finish(run, state, samples_per_second)
    run.accelerator.end_training()  # closes the trackers' files
    # The caller gets a plain float32 model, as best/ reloads: accelerate's autocast wrapper (bf16/fp16 runs) is
    # removed and the decoder's weights go back from channels-last to the default memory format.
    plain = run.accelerator.unwrap_model(run.model, keep_fp32_wrapper=False).to(memory_format=torch.contiguous_format)
    return TrainingResult(run.layout.root, state, test_results, plain)


def train(config: TrainingConfig) -> TrainingResult:
    """Fine-tune a GeoFM model as ``config`` says; see `geofm_hf.training.layout` for what is written.

    Run it directly, through ``geofm train`` or under ``accelerate launch -m geofm_hf.train`` (any number of
    processes). Resuming (``resume_from_checkpoint``) restores model, optimiser, scheduler, RNG and data position, so
    an interrupted run ends with the same weights as an uninterrupted one.
    """
    return run_training(prepare_run(config))


__all__ = ["run_training", "train"]
