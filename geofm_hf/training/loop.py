"""The training loop: plain Accelerate (device placement, DDP, gradient accumulation, mixed precision, state saving).

Output folder of a run::

    training_config.yaml     the config as run
    metrics.jsonl            training logs and validation scores, one JSON record per line
    checkpoints/step-N/      resumable state (accelerate's save_state + trainer_state.json); the newest are kept
    best/                    the best model on validation mIoU: a plain segmenter (GeoFMForSemanticSegmentation, or
                             the UNet of `backbone: unet`) + processor
    adapter/                 (lora) the best peft adapter, loadable onto a fresh model with PeftModel.from_pretrained
    trainer_state.json       step, best validation score, history, world size, throughput, peak GPU memory
                             (see `TrainerState`)
    eval_results.json        the keyword arguments of `geofm_hf.model_card.write_model_card` (see `model_card_fields`)
    test/                    `geofm_hf.evaluation.evaluate_model` output for best/ on the test split (scores, pictures)
    training_curves.png

Everything is written through a temporary path and renamed, so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from huggingface_hub import ModelCard
from transformers import PreTrainedModel, get_scheduler

from ..evaluation import evaluate_model, load_model_and_processor, write_results_json
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..hub import MODEL_CARD_FILE, push_model, write_model_card
from ..io.atomic import swap_in_folder
from ..metrics import ConfusionAccumulator, confusion_matrix
from ..models.build import BackboneInfo
from ..models.tasks import TaskSpec, get_task
from ..study import study_task
from .adaptation import (
    ADAPTATIONS,
    ParameterCounts,
    adapt_model,
    backbone_parameter_ids,
    base_model,
    describe_adaptation,
    describe_architecture,
)
from .config import LR_SCHEDULERS, TRAIN_TIME_CLOCKS, TrainingConfig
from .curves import append_jsonl, plot_training_curves, write_jsonl
from .data import DataRequirements, PadCollator, SectionDataset, check_first_rows, load_splits, scan_labels

if TYPE_CHECKING:
    import datasets

logger = get_logger(__name__)

CONFIG_FILE = "training_config.yaml"
STATE_FILE = "trainer_state.json"
RESULTS_FILE = "eval_results.json"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "training_curves.png"
TEST_DIR = "test"
VALIDATION_RESULTS_FILE = "validation_results.json"
# Example pictures of the test split written by evaluate_model.
TEST_OVERLAYS = 4
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
ADAPTER_DIR = "adapter"
# What an upload sends (best/ plus adapter/), staged as one repo folder.
HUB_DIR = "hub"
BEST_METRIC = "mean_iou"
# Scores kept in the history for every evaluation (the full set, with the confusion matrix, is kept for the best).
SUMMARY_SCORES = ("mean_iou", "mean_pixel_accuracy", "overall_accuracy", "mean_f1", "study_batch_miou", "per_class_iou")
# Parameters that are not weight matrices: no weight decay.
NO_DECAY_SUFFIXES = ("position_embeddings", "cls_token", "mask_token", "register_tokens")


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
    """Everything a run needs once its inputs are checked and built (see :func:`prepare_run`)."""

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
    output_dir: Path

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)


@dataclass
class TrainingResult:
    """What :func:`train` returns: the output folder, the final state, the test results of ``best/`` (main process
    only; see `geofm_hf.evaluation.evaluate_model`) and the trained module."""

    output_dir: Path
    state: TrainerState
    test_results: dict[str, Any] | None
    model: nn.Module


# --- preparation -------------------------------------------------------------------------------------------------


def check_output_dir(config: TrainingConfig) -> None:
    """Refuse to start a fresh run over another run's results (resuming is explicit)."""
    output = Path(config.output_dir)
    if output.exists() and not output.is_dir():
        raise ValueError(f"output_dir={config.output_dir!r} exists and is not a folder")
    if config.resume_from_checkpoint is None and (
        (output / CHECKPOINTS_DIR).is_dir() or (output / STATE_FILE).exists()
    ):
        raise ValueError(
            f"output_dir={config.output_dir!r} already holds a run: set resume_from_checkpoint=latest to continue it, "
            "or choose another output_dir"
        )


def check_world_size(accelerator: Accelerator) -> None:
    """Refuse a multi-process launch that Accelerate set up as independent single processes (each would train alone).

    This is what happens on a machine without GPUs unless Accelerate is told to use the CPU.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise ValueError(
            f"Launched as {launched} processes (WORLD_SIZE={launched}) but Accelerate set up "
            f"{accelerator.num_processes}: without GPUs, set ACCELERATE_USE_CPU=1 (e.g. ACCELERATE_USE_CPU=1 "
            "accelerate launch --multi_gpu --num_processes 2 -m geofm_hf.train ...) to train on CPU processes with gloo"
        )


def resolve_checkpoint(config: TrainingConfig) -> Path | None:
    """The checkpoint folder to resume from (``latest`` = the newest in ``output_dir/checkpoints``), or None."""
    if config.resume_from_checkpoint is None:
        return None
    if config.resume_from_checkpoint == "latest":
        found = sorted_checkpoints(Path(config.output_dir))
        if not found:
            raise ValueError(
                f"resume_from_checkpoint=latest: no checkpoint in {Path(config.output_dir) / CHECKPOINTS_DIR}"
            )
        return found[-1]
    folder = Path(config.resume_from_checkpoint)
    if not (folder / STATE_FILE).is_file():
        raise ValueError(f"resume_from_checkpoint={str(folder)!r} is not a checkpoint folder (no {STATE_FILE} in it)")
    return folder


def sorted_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = output_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob("step-*") if (p / STATE_FILE).is_file()), key=lambda p: int(p.name[5:]))


def parameter_groups(model: nn.Module, config: TrainingConfig) -> list[dict[str, Any]]:
    """AdamW groups: backbone (incl. LoRA matrices) at ``learning_rate``, the rest at ``head_learning_rate``;
    biases, norms and embeddings without weight decay. A model trained from scratch is all head."""
    backbone_ids = backbone_parameter_ids(model)
    rates = {"backbone": config.learning_rate, "head": config.head_learning_rate or config.learning_rate}
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            part = "backbone" if id(parameter) in backbone_ids else "head"
            decay = parameter.ndim > 1 and not name.endswith(NO_DECAY_SUFFIXES)
            groups.setdefault((part, decay), []).append(parameter)
    return [
        {"params": params, "lr": rates[part], "weight_decay": config.weight_decay if decay else 0.0, "part": part}
        for (part, decay), params in groups.items()
    ]


def _loader(dataset: SectionDataset, batch_size: int, shuffle: bool, config: TrainingConfig, ignore_index: int):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=config.dataloader_num_workers,
        collate_fn=PadCollator(ignore_index),
        # Each new iterator draws a worker seed from this generator. From torch's global RNG it would shift the
        # dropout draws of a resumed run, which starts an iterator mid-epoch where the uninterrupted run did not.
        generator=torch.Generator().manual_seed(config.seed),
    )


def prepare_run(config: TrainingConfig) -> TrainingRun:
    """Check every input and build everything, without training: bad input fails here, before the first step.

    Raises:
        ValueError: a bad dataset (missing split, labels outside the task's classes, sections smaller than a patch or
            than the crop), an unloadable backbone, LoRA targets matching nothing, or an output folder in use.
    """
    check_output_dir(config)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )
    check_world_size(accelerator)
    logger.info(
        f"Training with {accelerator.num_processes} process(es), distributed_type={accelerator.distributed_type}, "
        f"num_processes={accelerator.num_processes}, device={accelerator.device}, "
        f"mixed_precision={accelerator.mixed_precision}"
    )
    set_seed(config.seed)
    task = get_task(config.task)
    with accelerator.main_process_first():
        splits = load_splits(config.dataset, task)
    model, backbone = config.build_model()
    requirements = DataRequirements(
        task.num_labels, model.config.ignore_index, model.config.pad_multiple, config.augmentation.crop_size
    )
    check_first_rows(splits, config.dataset, requirements, config.label_check_rows)
    scan_labels(splits, config.dataset, requirements, show_progress=accelerator.is_local_main_process)
    model, parameters = adapt_model(model, config.adaptation, config.lora)
    logger.info(f"Adaptation {config.adaptation}: {parameters.as_dict()}")

    processor = GeoFMImageProcessor(normalization=config.normalization, num_channels=model.config.in_channels)
    train_dataset = SectionDataset(splits["train"], processor, config.augmentation, config.seed)
    train_loader = _loader(train_dataset, config.batch_size, True, config, requirements.ignore_index)
    validation_loader = _loader(
        SectionDataset(splits["validation"], processor),
        config.per_device_eval_batch_size,
        False,
        config,
        requirements.ignore_index,
    )
    optimizer = torch.optim.AdamW(parameter_groups(model, config), betas=config.adam_betas, eps=config.adam_epsilon)
    model, optimizer, train_loader, validation_loader = accelerator.prepare(
        model, optimizer, train_loader, validation_loader
    )
    steps_per_epoch = math.ceil(len(train_loader) / config.gradient_accumulation_steps)
    total_steps = config.max_steps or steps_per_epoch * config.num_epochs
    # Accelerate steps a prepared scheduler once per process for every optimiser step.
    scheduler = accelerator.prepare(
        get_scheduler(
            config.lr_scheduler,
            optimizer,
            num_warmup_steps=math.ceil(config.warmup_ratio * total_steps) * accelerator.num_processes,
            num_training_steps=total_steps * accelerator.num_processes,
        )
    )
    return TrainingRun(
        config=config,
        accelerator=accelerator,
        task=task,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        train_loader=train_loader,
        validation_loader=validation_loader,
        train_dataset=train_dataset,
        test_split=splits["test"],
        processor=processor,
        backbone=backbone,
        parameters=parameters,
        split_sizes={split: len(splits[split]) for split in splits},
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        output_dir=Path(config.output_dir),
    )


# --- evaluation --------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_loader(
    model: nn.Module, loader: DataLoader, accelerator: Accelerator, task: TaskSpec, ignore_index: int, desc: str
) -> dict[str, Any]:
    """Dataset-level scores (and the study's per-batch variants) of ``model`` on ``loader``, over all processes.

    Each sample's confusion matrix is gathered (``gather_for_metrics`` drops the samples repeated to even out the
    last batch across processes) and summed per global batch.
    """
    was_training = model.training
    model.eval()
    accumulator = ConfusionAccumulator(task.num_labels, ignore_index)
    for batch in tqdm(loader, desc=desc, leave=False, disable=not accelerator.is_local_main_process):
        predictions = model(pixel_values=batch["pixel_values"]).logits.argmax(dim=1)
        per_sample = torch.stack(
            [
                torch.from_numpy(confusion_matrix(prediction, label, task.num_labels, ignore_index))
                for prediction, label in zip(predictions, batch["labels"])
            ]
        ).to(accelerator.device)
        accumulator.add_batch_confusion(accelerator.gather_for_metrics(per_sample).sum(dim=0).cpu().numpy())
    model.train(was_training)
    return accumulator.compute(task.id2label)


def _summary(scores: dict[str, Any]) -> dict[str, Any]:
    """The history's scores, JSON-ready: a class absent from the split has a NaN IoU, stored as None."""
    summary = {key: scores[key] for key in SUMMARY_SCORES}
    summary["per_class_iou"] = {k: (v if math.isfinite(v) else None) for k, v in summary["per_class_iou"].items()}
    return summary


# --- saving ------------------------------------------------------------------------------------------------------


def _run_summary(run: TrainingRun) -> dict[str, Any]:
    """What the state files record about the run besides progress (model cards read it)."""
    return {
        "total_steps": run.total_steps,
        "steps_per_epoch": run.steps_per_epoch,
        "world_size": run.accelerator.num_processes,
        "best_metric_name": f"validation {BEST_METRIC} (dataset-level)",
        "parameters": run.parameters.as_dict(),
        "split_sizes": run.split_sizes,
    }


def save_checkpoint(run: TrainingRun, state: TrainerState) -> Path:
    """Save a resumable checkpoint (model, optimiser, scheduler, sampler and RNG states + trainer state).

    All processes write into one staging folder (each its own RNG state); the main process then renames it.
    """
    accelerator = run.accelerator
    target = run.output_dir / CHECKPOINTS_DIR / f"step-{state.global_step}"
    staging = target.with_name(f".{target.name}.tmp")
    if run.is_main:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    if run.is_main:
        state.save(staging / STATE_FILE, **_run_summary(run))
    accelerator.wait_for_everyone()
    if run.is_main:
        swap_in_folder(staging, target)
        for old in sorted_checkpoints(run.output_dir)[: -run.config.save_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return target


def save_best(run: TrainingRun) -> None:
    """Write ``best/`` (plain model + processor) and, for LoRA, ``adapter/`` from the current weights."""
    if not run.is_main:
        return
    adaptation = ADAPTATIONS[run.config.adaptation]
    for name, write in (
        (BEST_DIR, lambda folder: _save_plain_model(adaptation.export(run.unwrapped), run.processor, folder)),
        (ADAPTER_DIR, lambda folder: adaptation.save_extras(run.unwrapped, folder)),
    ):
        staging = run.output_dir / f".{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write(staging)
        if any(staging.iterdir()):
            swap_in_folder(staging, run.output_dir / name)
        else:
            staging.rmdir()


def _save_plain_model(model: PreTrainedModel, processor: GeoFMImageProcessor, folder: Path) -> None:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


# --- the loop ----------------------------------------------------------------------------------------------------


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


def _save_due(run: TrainingRun, step: int, evaluated: bool) -> bool:
    return step % run.config.save_steps == 0 if run.config.save_steps else evaluated


def _record(run: TrainingRun, state: TrainerState, entry: dict[str, Any]) -> None:
    state.history.append(entry)
    if run.is_main:
        append_jsonl(run.output_dir / METRICS_FILE, entry)


def _validate(run: TrainingRun, state: TrainerState, epoch: int) -> None:
    scores = evaluate_loader(
        run.model, run.validation_loader, run.accelerator, run.task, run.unwrapped.config.ignore_index, "validation"
    )
    _record(run, state, {"step": state.global_step, "epoch": epoch, "validation": _summary(scores)})
    logger.info(f"step {state.global_step}: validation mIoU {scores['mean_iou']:.4f}")
    if state.best_metric is None or scores[BEST_METRIC] > state.best_metric:
        state.best_metric, state.best_step = scores[BEST_METRIC], state.global_step
        save_best(run)
        if run.is_main:
            write_results_json(
                scores | {"step": state.global_step}, run.output_dir / BEST_DIR / VALIDATION_RESULTS_FILE
            )
    run.accelerator.wait_for_everyone()


def resume(run: TrainingRun, checkpoint: Path) -> TrainerState:
    """Load a checkpoint into the prepared objects and return its trainer state."""
    run.accelerator.load_state(str(checkpoint))
    state = TrainerState.load(checkpoint / STATE_FILE)
    logger.info(f"Resumed from {checkpoint} at step {state.global_step}")
    return state


def train_steps(run: TrainingRun, state: TrainerState) -> float:
    """Run optimiser steps until ``total_steps`` or the end of the time budget, evaluating and checkpointing when due.

    The last step is always evaluated (and checkpointed unless ``save_steps`` says otherwise), so ``best/`` exists.

    Returns:
        `float`: training throughput in sections per second over all processes (evaluation and saving excluded).
    """
    accelerator, model, config = run.accelerator, run.model, run.config
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
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
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
            state.out_of_time = _out_of_time(run, state)
            last = step >= run.total_steps or state.out_of_time
            if state.out_of_time:
                logger.info(
                    f"Time budget spent ({state.train_seconds:.1f} s >= max_train_seconds={config.max_train_seconds}, "
                    f"{config.train_time_clock} clock): training ends at step {step}"
                )
            if step % config.logging_steps == 0 or last:
                record = _log_record(run, state, epoch, loss_sum, loss_count)
                _record(run, state, record)
                progress.set_postfix(loss=f"{record['loss']:.4f}")
                loss_sum.zero_()
                loss_count = 0
            evaluated = _evaluation_due(run, step, last)
            if evaluated:
                _validate(run, state, epoch)
            if _save_due(run, step, evaluated):
                save_checkpoint(run, state)
            if last:
                break
            tick, clock_tick = time.perf_counter(), clock()
        if state.global_step >= run.total_steps or state.out_of_time:
            break
    progress.close()
    return samples / max(train_seconds, 1e-9)


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
        "optimizer_steps": state.global_step,
        **_time_budget(config),
        "epochs": round(state.global_step / run.steps_per_epoch, 2),
        "per_device_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "processes": world,
        "effective_batch_size": config.batch_size * config.gradient_accumulation_steps * world,
        "loss_weights": model_config.loss_weights,
        "class_weights": model_config.class_weights,
        "mixed_precision": config.mixed_precision,
        "normalization": config.normalization,
        "augmentation": dataclasses.asdict(config.augmentation),
        **describe_architecture(run.unwrapped).settings,
        "seed": config.seed,
    }


def model_card_fields(run: TrainingRun, state: TrainerState, test_results: dict[str, Any]) -> dict[str, Any]:
    """Contents of ``eval_results.json``: exactly the keyword arguments of
    `geofm_hf.model_card.write_model_card` that a run knows (the caller adds ``repo_id``, ``study_data``, ...)."""
    architecture = describe_architecture(run.unwrapped)
    best = next(e["validation"] for e in state.history if "validation" in e and e["step"] == state.best_step)
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
        "validation_best": {"step": state.best_step, **{k: v for k, v in best.items() if k != "per_class_iou"}},
        "trainable_params": run.parameters.trainable,
        "total_params": run.parameters.total,
    }


def peak_gpu_memory(device: torch.device) -> int | None:
    """Most bytes torch has held allocated on a CUDA ``device`` so far; None elsewhere (the OS measures CPU memory)."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def finish(run: TrainingRun, state: TrainerState, samples_per_second: float) -> dict[str, Any] | None:
    """Evaluate ``best/`` on the test split (main process, as ``geofm evaluate`` would); write ``eval_results.json``,
    ``trainer_state.json`` and the curves. Returns the test results (None on other processes)."""
    accelerator = run.accelerator
    # Read before the test evaluation: the peak of training (with its validations) is what a run needs to fit.
    peak_memory = peak_gpu_memory(accelerator.device)
    accelerator.wait_for_everyone()
    test_results = None
    if run.is_main:
        model, processor = load_model_and_processor(str(run.output_dir / BEST_DIR))
        with accelerator.autocast():
            test_results = evaluate_model(
                model,
                processor,
                run.test_split,
                batch_size=run.config.per_device_eval_batch_size,
                study_batch_size=2 * study_task(run.task.name).batch_size,
                device=accelerator.device,
                max_overlays=TEST_OVERLAYS,
                output_dir=run.output_dir / TEST_DIR,
                split="test",
            )
        card_fields = model_card_fields(run, state, test_results)
        write_results_json(card_fields, run.output_dir / RESULTS_FILE)
        write_model_card(run.output_dir / BEST_DIR, **card_fields, repo_id=run.config.push_to_hub)
        state.save(
            run.output_dir / STATE_FILE,
            **_run_summary(run),
            train_samples_per_second=samples_per_second,
            peak_gpu_memory_bytes=peak_memory,
        )
        plot_training_curves(
            state.history, run.output_dir / CURVES_FILE, title=f"{run.task.name}: {run.config.adaptation}"
        )
        logger.info(f"Test mIoU of best/ (step {state.best_step}): {test_results['mean_iou']:.4f}")
        if run.config.push_to_hub:
            push_best(run, model, processor, test_results["mean_iou"])
    accelerator.wait_for_everyone()
    return test_results


def push_best(run: TrainingRun, model: PreTrainedModel, processor: GeoFMImageProcessor, test_miou: float) -> None:
    """Upload ``best/`` (model, processor, card) with ``adapter/`` to ``config.push_to_hub``, staged in ``hub/``."""
    adapter = run.output_dir / ADAPTER_DIR
    commit = push_model(
        model,
        run.config.push_to_hub,
        run.output_dir / HUB_DIR,
        processor,
        card=ModelCard.load(run.output_dir / BEST_DIR / MODEL_CARD_FILE),
        adapter_dir=adapter if adapter.is_dir() else None,
        private=run.config.hub_private,
        commit_message=f"Fine-tuned with geofm_hf ({run.config.adaptation}); test mIoU {test_miou:.4f}",
        overwrite=True,
    )
    logger.info(f"Pushed to {commit.repo_url} ({commit.oid})")


def run_training(run: TrainingRun) -> TrainingResult:
    """Train a prepared run (resuming when its config says so), then evaluate ``best/`` on the test split."""
    checkpoint = resolve_checkpoint(run.config)
    state = resume(run, checkpoint) if checkpoint is not None else TrainerState()
    if run.is_main:
        run.output_dir.mkdir(parents=True, exist_ok=True)
        run.config.save(run.output_dir / CONFIG_FILE)
        # A resumed run drops the lines an interrupted one logged after its checkpoint; a fresh run starts empty.
        write_jsonl(run.output_dir / METRICS_FILE, state.history)
    samples_per_second = train_steps(run, state)
    test_results = finish(run, state, samples_per_second)
    return TrainingResult(run.output_dir, state, test_results, run.unwrapped)


def train(config: TrainingConfig) -> TrainingResult:
    """Fine-tune a GeoFM model as ``config`` says; see the module docstring for what is written.

    Run it directly, through ``geofm train`` or under ``accelerate launch -m geofm_hf.train`` (any number of
    processes). Resuming (``resume_from_checkpoint``) restores model, optimiser, scheduler, RNG and data position, so
    an interrupted run ends with the same weights as an uninterrupted one.
    """
    return run_training(prepare_run(config))


__all__ = [
    "TrainerState",
    "TrainingResult",
    "TrainingRun",
    "evaluate_loader",
    "model_card_fields",
    "prepare_run",
    "run_training",
    "save_checkpoint",
    "train",
]
