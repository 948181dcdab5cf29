"""Preparing a run: every input checked and every object built (Accelerate, data, model, optimiser, schedule) before
the first step, so that bad input fails at once."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.logging import get_logger
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from datasets import Dataset, DatasetDict, concatenate_datasets
from torch import nn
from transformers import get_scheduler

from ..evaluation.inference import LabelledSections
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..models.tasks import get_task
from ..precision import ACCELERATE_NAMES, prefer_channels_last, resolve_precision
from ..io.atomic import staged_folder
from .adaptation import ADAPTATIONS, adapt_model, backbone_parameter_ids
from .averaging import WeightAverage
from .config import TrainingConfig
from .data import DataRequirements, SectionDataset, check_first_rows, load_splits, scan_labels, section_loader
from .layout import RunLayout
from .state import TrainingRun

logger = get_logger(__name__)

# Parameters that are not weight matrices: no weight decay.
NO_DECAY_SUFFIXES = ("position_embeddings", "cls_token", "mask_token", "register_tokens")
TRACKER_PROJECT = "geofm_hf"
ACCELERATE_PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"
DEFAULT_PRECISION = "auto"


def accelerate_precision(config: TrainingConfig) -> str | None:
    """The ``mixed_precision`` to give accelerate: None (accelerate decides) when the config leaves it unset and
    accelerate was told one (`accelerate launch --mixed_precision`, `accelerate config`, its environment variable);
    else the config's, ``auto`` by default, made concrete for this process's device."""
    if config.mixed_precision is None and ACCELERATE_PRECISION_ENV in os.environ:
        return None
    requested = config.mixed_precision or DEFAULT_PRECISION
    precision = resolve_precision("fp32" if requested == "no" else requested, PartialState().device)
    return ACCELERATE_NAMES[precision]


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Checkpoint the backbone's blocks. Non-reentrant checkpoints give gradients to LoRA matrices and decoders even
    when the backbone's inputs need none (frozen embeddings), where reentrant ones would silently give none."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(f"gradient_checkpointing: {type(model).__name__} does not support it; leave it false")
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def save_base(model: nn.Module, folder: Path) -> None:
    """The model as built, before any training: the base a LoRA adapter fits (its adapter_config names it)."""
    with staged_folder(folder, overwrite=True) as staging:
        model.save_pretrained(staging)


def tracker_config(config: TrainingConfig) -> dict[str, Any]:
    """The run's settings as trackers take them: flat keys (``lora.r``), scalars as they are, the rest as text."""
    flat: dict[str, Any] = {}

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                add(f"{prefix}{key}.", item)
        else:
            flat[prefix.rstrip(".")] = value if isinstance(value, (int, float, str, bool)) else str(value)

    add("", config.to_dict())
    return flat


def check_output_dir(config: TrainingConfig) -> None:
    """Refuse to start a fresh run over another run's results (resuming is explicit)."""
    layout = RunLayout(config.output_dir)
    if layout.root.exists() and not layout.root.is_dir():
        raise ValueError(f"output_dir={config.output_dir!r} exists and is not a folder")
    if config.resume_from_checkpoint is None and layout.holds_run():
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


def trained_rows(splits: DatasetDict, config: TrainingConfig) -> Dataset:
    """The rows the run trains on: the train split, followed by validation's in a refit (``train_splits``)."""
    return concatenate_datasets([splits[split] for split in config.train_splits])


def prepare_run(config: TrainingConfig) -> TrainingRun:
    """Check every input and build everything, without training: bad input fails here, before the first step.

    Raises:
        ValueError: a bad dataset (missing split, labels outside the task's classes, sections smaller than a patch or
            than the crop), an unloadable backbone, LoRA targets matching nothing, or an output folder in use.
    """
    check_output_dir(config)
    # accelerate keeps one precision per process and refuses a second Accelerator with another: each run (quickstart,
    # a notebook training several models) starts from fresh accelerator settings; the distributed state is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        mixed_precision=accelerate_precision(config),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
        log_with=config.report_to,
        project_dir=RunLayout(config.output_dir).trackers_dir,
    )
    check_world_size(accelerator)
    logger.info(
        f"Training with {accelerator.num_processes} process(es), distributed_type={accelerator.distributed_type}, "
        f"num_processes={accelerator.num_processes}, device={accelerator.device}, "
        f"mixed_precision={accelerator.mixed_precision}"
    )
    if config.report_to:
        accelerator.init_trackers(TRACKER_PROJECT, config=tracker_config(config))
    set_seed(config.seed)
    task = get_task(config.task)
    with accelerator.main_process_first():
        splits = load_splits(config.dataset, task)
    model, backbone = config.build_model()
    requirements = DataRequirements(
        task.num_labels,
        model.config.ignore_index,
        model.config.pad_multiple,
        config.augmentation.crop_size,
        tuple(config.train_splits),
    )
    check_first_rows(splits, config.dataset, requirements, config.label_check_rows)
    scan_labels(splits, config.dataset, requirements, show_progress=accelerator.is_local_main_process)
    # The base is written only once the adaptation has accepted the model (e.g. its LoRA targets exist).
    base = copy.deepcopy(model) if ADAPTATIONS[config.adaptation].needs_base else None
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    # Before LoRA wraps the model: peft copies the decoder it trains (modules_to_save).
    prefer_channels_last(model, "fp32" if accelerator.mixed_precision == "no" else accelerator.mixed_precision)
    model, parameters = adapt_model(model, config.adaptation, config.lora)
    if base is not None and accelerator.is_main_process:
        save_base(base, RunLayout(config.output_dir).base_dir)
    logger.info(f"Adaptation {config.adaptation}: {parameters.as_dict()}")

    processor = GeoFMImageProcessor(normalization=config.normalization, num_channels=model.config.in_channels)
    train_dataset = SectionDataset(trained_rows(splits, config), processor, config.augmentation, config.seed)
    train_loader = section_loader(train_dataset, config.batch_size, True, config, requirements.ignore_index)
    # Validation reads sections as `geofm evaluate` does (the same dataset, collator and scoring routine).
    validation_loader = None
    if config.validates:
        validation_loader = section_loader(
            LabelledSections(splits["validation"], processor),
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
        layout=RunLayout(config.output_dir),
        weight_average=WeightAverage(accelerator.unwrap_model(model), config.ema_decay) if config.ema_decay else None,
    )


__all__ = ["check_output_dir", "check_world_size", "parameter_groups", "prepare_run", "trained_rows"]
