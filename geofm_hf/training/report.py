"""The end of a run: ``best/`` evaluated on the test split (as ``geofm evaluate`` would), ``run_results.json``, the
model card, ``trainer_state.json``, the training curves and, when asked, the upload to the Hub."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from accelerate.logging import get_logger
from huggingface_hub import ModelCard
from transformers import PreTrainedModel

from ..evaluation import evaluate_model, load_model_and_processor, write_results_json
from ..hub import push_model, write_model_card
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..study import study_task
from .adaptation import base_model, describe_adaptation, describe_architecture
from .config import LR_SCHEDULERS, TrainingConfig
from .curves import plot_training_curves
from .state import TrainerState, TrainingRun, run_summary

logger = get_logger(__name__)

# Example pictures of the test split written by evaluate_model.
TEST_OVERLAYS = 4


def _time_budget(config: TrainingConfig) -> dict[str, Any]:
    if config.max_train_seconds is None:
        return {}
    return {"max_train_seconds": config.max_train_seconds, "train_time_clock": config.train_time_clock}


def _hyperparameters(run: TrainingRun, state: TrainerState) -> dict[str, Any]:
    config, world = run.config, run.accelerator.num_processes
    model_config = base_model(run.unwrapped).config
    return {
        "adaptation": describe_adaptation(config.adaptation, config.lora, run.unwrapped),
        "optimizer": "AdamW",
        "learning_rate": config.learning_rate,
        "head_learning_rate": config.head_learning_rate or config.learning_rate,
        "weight_decay": config.weight_decay,
        "adam_betas": list(config.adam_betas),
        "max_grad_norm": config.max_grad_norm,
        "lr_schedule": f"{config.lr_scheduler}: {LR_SCHEDULERS[config.lr_scheduler]}",
        "warmup_ratio": config.warmup_ratio,
        **({"weight_average": f"EMA, decay {config.ema_decay}"} if config.ema_decay else {}),
        **({} if config.validates else {"trained_on": "train + validation splits (refit); the model is the last step"}),
        "optimizer_steps": state.global_step,
        **({"schedule_cut_by_time_budget": f"at step {state.global_step} of {run.total_steps}"}
           if state.global_step < run.total_steps else {}),
        **_time_budget(config),
        "epochs": round(state.global_step / run.steps_per_epoch, 2),
        "per_device_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "processes": world,
        "effective_batch_size": config.batch_size * config.gradient_accumulation_steps * world,
        "loss_weights": model_config.loss_weights,
        "class_weights": model_config.class_weights,
        "mixed_precision": run.precision,
        "normalization": config.normalization,
        "augmentation": dataclasses.asdict(config.augmentation),
        **describe_architecture(run.unwrapped).settings,
        "seed": config.seed,
    }


def _validation_best(run: TrainingRun, state: TrainerState) -> dict[str, Any] | None:
    """The validation scores of ``best/`` with its step; None for a run that trained on its validation split."""
    if not run.config.validates:
        return None
    best = next(e["validation"] for e in state.history if "validation" in e and e["step"] == state.best_step)
    return {"step": state.best_step, **{k: v for k, v in best.items() if k != "per_class_iou"}}


def model_card_fields(run: TrainingRun, state: TrainerState, test_results: dict[str, Any]) -> dict[str, Any]:
    """Contents of ``run_results.json``: exactly the keyword arguments of `geofm_hf.hub.write_model_card` that a run
    knows (the caller adds ``repo_id``, ``study_data``, ...)."""
    architecture = describe_architecture(run.unwrapped)
    return {
        "task": run.task.name,
        "dataset_id": run.config.dataset,
        "base_model": run.backbone.hub_id,
        "base_model_label": run.backbone.description,
        "backbone_type": architecture.backbone_type,
        "decoder": architecture.decoder,
        "adaptation": run.config.adaptation,
        "hyperparameters": _hyperparameters(run, state),
        "test_results": test_results,
        "validation_best": _validation_best(run, state),
        "trainable_params": run.parameters.trainable,
        "total_params": run.parameters.total,
    }


def peak_gpu_memory(device: torch.device) -> int | None:
    """Most bytes torch has held allocated on a CUDA ``device`` so far; None elsewhere (the OS measures CPU memory)."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def evaluate_best_on_test(run: TrainingRun, model: PreTrainedModel, processor: GeoFMImageProcessor) -> dict[str, Any]:
    """Evaluate the reloaded ``best/`` on the test split into ``test/``, as ``geofm evaluate`` would."""
    return evaluate_model(
        model,
        processor,
        run.test_split,
        batch_size=run.config.per_device_eval_batch_size,
        study_batch_size=2 * study_task(run.task.name).batch_size,
        device=run.accelerator.device,
        max_overlays=TEST_OVERLAYS,
        output_dir=run.layout.test_dir,
        split="test",
        precision=run.precision,
    )


def push_best(run: TrainingRun, model: PreTrainedModel, processor: GeoFMImageProcessor, test_miou: float) -> None:
    """Upload ``best/`` (model, processor, card) with ``adapter/`` to ``config.push_to_hub``, staged in ``hub/``."""
    layout = run.layout
    commit = push_model(
        model,
        run.config.push_to_hub,
        layout.hub_dir,
        processor,
        card=ModelCard.load(layout.model_card_file),
        adapter_dir=layout.adapter_dir if layout.adapter_dir.is_dir() else None,
        private=run.config.hub_private,
        commit_message=f"Fine-tuned with geofm_hf ({run.config.adaptation}); test mIoU {test_miou:.4f}",
        overwrite=True,
    )
    logger.info(f"Pushed to {commit.repo_url} ({commit.oid})")


def finish(run: TrainingRun, state: TrainerState, samples_per_second: float) -> dict[str, Any] | None:
    """Evaluate ``best/`` on the test split (main process); write ``run_results.json``, the model card,
    ``trainer_state.json`` and the curves; push if asked. Returns the test results (None on other processes)."""
    accelerator, layout = run.accelerator, run.layout
    # Read before the test evaluation: the peak of training (with its validations) is what a run needs to fit.
    peak_memory = peak_gpu_memory(accelerator.device)
    accelerator.wait_for_everyone()
    test_results = None
    if run.is_main:
        model, processor = load_model_and_processor(str(layout.best_dir))
        test_results = evaluate_best_on_test(run, model, processor)
        card_fields = model_card_fields(run, state, test_results)
        write_results_json(card_fields, layout.run_results_file)
        write_model_card(layout.best_dir, **card_fields, repo_id=run.config.push_to_hub)
        state.save(
            layout.state_file,
            **run_summary(run),
            train_samples_per_second=samples_per_second,
            peak_gpu_memory_bytes=peak_memory,
        )
        plot_training_curves(state.history, layout.curves_file, title=f"{run.task.name}: {run.config.adaptation}")
        logger.info(f"Test mIoU of best/ (step {state.best_step}): {test_results['mean_iou']:.4f}")
        if run.config.push_to_hub:
            push_best(run, model, processor, test_results["mean_iou"])
    accelerator.wait_for_everyone()
    return test_results


__all__ = ["evaluate_best_on_test", "finish", "model_card_fields", "peak_gpu_memory", "push_best"]
