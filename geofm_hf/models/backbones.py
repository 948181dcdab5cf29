"""Backbone presets (configs written in code, so no download is needed to build a model) and backbone families.

A *family* says, for one transformers backbone ``model_type``, how deep it is, which levels to take by default and
to what multiple an input must be padded. Presets name concrete configurations and the Hub checkpoint they match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import AutoConfig, PreTrainedConfig


@dataclass(frozen=True)
class BackboneFamily:
    """How the model treats one kind of backbone.

    Attributes:
        depth: number of selectable levels (transformer blocks of a ViT, stages of a hierarchical net).
        pad_multiple: input height and width are padded to a multiple of this.
        fine_tuning_overrides: config changes applied to a pretrained checkpoint's config when it becomes a backbone.
    """

    depth: Callable[[PreTrainedConfig], int]
    pad_multiple: Callable[[PreTrainedConfig], int]
    fine_tuning_overrides: dict = field(default_factory=dict)

    def default_levels(self, config: PreTrainedConfig) -> list[int]:
        """Four evenly spaced levels ending at the deepest (3/6/9/12 for 12 blocks, 6/12/18/24 for 24, ...)."""
        depth = self.depth(config)
        if depth <= 4:
            return list(range(1, depth + 1))
        return [round(depth * k / 4) for k in range(1, 5)]


def _stage_count(config: PreTrainedConfig) -> int:
    return len(config.depths)


BACKBONE_FAMILIES: dict[str, BackboneFamily] = {
    "dinov2": BackboneFamily(
        depth=lambda c: c.num_hidden_layers,
        pad_multiple=lambda c: c.patch_size,
        # Fine-tuning never masks tokens, and an unused mask_token parameter breaks DistributedDataParallel.
        fine_tuning_overrides={"use_mask_token": False, "reshape_hidden_states": True, "apply_layernorm": True},
    ),
    # Stem stride 4 and one stride-2 downsampling per later stage.
    "convnext": BackboneFamily(depth=_stage_count, pad_multiple=lambda c: 4 * 2 ** (_stage_count(c) - 1)),
    "swin": BackboneFamily(
        depth=_stage_count, pad_multiple=lambda c: c.patch_size * 2 ** (_stage_count(c) - 1)
    ),
}


def get_family(config: PreTrainedConfig) -> BackboneFamily:
    """Family of a backbone config; unsupported types raise an error listing the supported ones."""
    family = BACKBONE_FAMILIES.get(config.model_type)
    if family is None:
        raise ValueError(
            f"Backbone model_type {config.model_type!r} is not supported; supported: {', '.join(sorted(BACKBONE_FAMILIES))}"
        )
    return family


@dataclass(frozen=True)
class BackbonePreset:
    """A named backbone configuration and the Hub checkpoint whose weights fit it."""

    hub_id: str
    model_type: str
    config: dict = field(default_factory=dict)

    def build_config(self, **overrides) -> PreTrainedConfig:
        """The transformers config of this preset, with ``overrides`` applied (e.g. a tiny depth for tests)."""
        return AutoConfig.for_model(self.model_type, **{**self.config, **overrides})


_DINOV2_COMMON = dict(
    patch_size=14,
    image_size=518,
    mlp_ratio=4,
    layer_norm_eps=1e-6,
    layerscale_value=1.0,
    qkv_bias=True,
    hidden_act="gelu",
    use_mask_token=False,
    reshape_hidden_states=True,
    apply_layernorm=True,
)

BACKBONE_PRESETS: dict[str, BackbonePreset] = {
    "dinov2-small": BackbonePreset(
        "facebook/dinov2-small", "dinov2", dict(_DINOV2_COMMON, hidden_size=384, num_hidden_layers=12, num_attention_heads=6)
    ),
    "dinov2-base": BackbonePreset(
        "facebook/dinov2-base", "dinov2", dict(_DINOV2_COMMON, hidden_size=768, num_hidden_layers=12, num_attention_heads=12)
    ),
    "dinov2-large": BackbonePreset(
        "facebook/dinov2-large", "dinov2", dict(_DINOV2_COMMON, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16)
    ),
    "dinov2-giant": BackbonePreset(
        "facebook/dinov2-giant",
        "dinov2",
        dict(_DINOV2_COMMON, hidden_size=1536, num_hidden_layers=40, num_attention_heads=24, use_swiglu_ffn=True),
    ),
    "convnext-tiny": BackbonePreset(
        "facebook/convnext-tiny-224", "convnext", dict(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768])
    ),
    "swin-tiny": BackbonePreset(
        "microsoft/swin-tiny-patch4-window7-224",
        "swin",
        dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7, patch_size=4),
    ),
}


def get_preset(name: str) -> BackbonePreset:
    """The preset called ``name``; unknown names raise an error listing the presets."""
    if name not in BACKBONE_PRESETS:
        raise ValueError(f"Unknown backbone preset {name!r}; presets: {', '.join(BACKBONE_PRESETS)}")
    return BACKBONE_PRESETS[name]
