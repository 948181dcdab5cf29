"""How a model is adapted: ``frozen`` (decoder only), ``full`` or ``lora``, and how the result is exported.

Adaptations are a registry. An adaptation says which parameters train, and how the trained model becomes a plain
segmenter (for LoRA: the adapter merged into the backbone). Building the model is not done here but by
:func:`geofm_hf.models.build_segmenter`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from torch import nn
from transformers import PreTrainedModel

from ..models.geofm.configuration_geofm import GeoFMConfig
from ..models.geofm.modeling_geofm import GeoFMForSemanticSegmentation
from ..hub.adapters import BASE_SUBFOLDER, AdapterInfo, backbone_fingerprint, save_adapter
from ..hub.model_card import is_hub_id
from ..models.geofm_unet.configuration_geofm_unet import GeoUNetConfig


class LoraOptions(Protocol):
    """The LoRA settings an adaptation reads (``TrainingConfig.lora``)."""

    r: int
    alpha: float
    dropout: float
    targets: str | list[str]


# Without pretrained weights there is nothing to keep frozen or to adapt with LoRA.
SCRATCH_ADAPTATIONS = ("full",)

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


def _freeze_backbone(model: GeoFMForSemanticSegmentation, lora: LoraOptions) -> nn.Module:
    model.backbone.requires_grad_(False)
    return model


def _train_everything(model: PreTrainedModel, lora: LoraOptions) -> nn.Module:
    return model


def _wrap_lora(model: GeoFMForSemanticSegmentation, lora: LoraOptions) -> nn.Module:
    # peft takes seconds to import: only LoRA runs pay for it.
    from peft import LoraConfig, get_peft_model

    lora_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=resolve_lora_targets(model, lora.targets),
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


def _save_adapter(model: nn.Module, folder: Path, dataset: str) -> None:
    # The base (the model before training) is saved once, beside the adapter, when the run starts.
    config = base_model(model).config
    info = AdapterInfo(backbone_fingerprint(model), config.backbone_name, config.task, config.decoder, dataset)
    base_hub_id = config.backbone_name if is_hub_id(config.backbone_name or "") else None
    save_adapter(model, folder, folder.parent / BASE_SUBFOLDER, info, base_hub_id)


def _no_extras(model: nn.Module, folder: Path, dataset: str) -> None:
    return None


def _lora_hyperparameters(lora: LoraOptions, model: nn.Module) -> dict[str, Any]:
    peft_config = model.peft_config["default"]
    return {
        "r": lora.r,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        "targets": lora.targets,
        "target_modules": sorted(peft_config.target_modules),
        "modules_to_save": sorted(peft_config.modules_to_save or []),
    }


def _no_hyperparameters(lora: LoraOptions, model: nn.Module) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Adaptation:
    """One way of adapting the pretrained model.

    Attributes:
        description: what trains.
        prepare: freezes or wraps the model; returns the module to train.
        export: the trained module as a plain segmenter, e.g. a `GeoFMForSemanticSegmentation` (the training module
            is left intact).
        save_extras: writes what else a user needs (the LoRA adapter) into a folder, given the training dataset.
        needs_base: whether the model as built (before training) must be kept beside the run's outputs.
        hyperparameters: the mode's own settings, as recorded for model cards.
    """

    description: str
    prepare: Callable[[PreTrainedModel, LoraOptions], nn.Module]
    export: Callable[[nn.Module], PreTrainedModel]
    save_extras: Callable[[nn.Module, Path, str], None] = _no_extras
    hyperparameters: Callable[[LoraOptions, nn.Module], dict[str, Any]] = _no_hyperparameters
    needs_base: bool = False


ADAPTATIONS: dict[str, Adaptation] = {
    "frozen": Adaptation("decoder only; the backbone stays bit-identical", _freeze_backbone, _as_is),
    "full": Adaptation("every parameter", _train_everything, _as_is),
    "lora": Adaptation(
        "LoRA matrices in the backbone (peft) and the whole decoder",
        _wrap_lora,
        _merged_copy,
        _save_adapter,
        _lora_hyperparameters,
        needs_base=True,
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


def adapt_model(model: PreTrainedModel, adaptation: str, lora: LoraOptions) -> tuple[nn.Module, ParameterCounts]:
    """Apply the adaptation called ``adaptation`` to ``model``; return the module to train and its parameter counts."""
    plain_total = sum(p.numel() for p in model.parameters())
    prepared = ADAPTATIONS[adaptation].prepare(model, lora)
    return prepared, count_parameters(prepared, plain_total)


@dataclass(frozen=True)
class Architecture:
    """How ``run_results.json`` and model cards describe a trained model.

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


def describe_adaptation(adaptation: str, lora: LoraOptions, model: nn.Module) -> dict[str, Any]:
    """The adaptation and its hyper-parameters, for ``trainer_state.json`` and model cards."""
    return {
        "mode": adaptation,
        "description": ADAPTATIONS[adaptation].description,
        **ADAPTATIONS[adaptation].hyperparameters(lora, model),
    }


__all__ = [
    "ADAPTATIONS",
    "ARCHITECTURES",
    "LORA_TARGET_PRESETS",
    "SCRATCH_ADAPTATIONS",
    "Architecture",
    "LoraOptions",
    "ParameterCounts",
    "adapt_model",
    "backbone_parameter_ids",
    "base_model",
    "count_parameters",
    "describe_adaptation",
    "describe_architecture",
    "head_modules",
    "resolve_lora_targets",
]
