"""GeoFM model configuration."""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..backbones import BACKBONE_PRESETS, get_family
from ..decoders.registry import DEFAULT_DECODER, check_decoder_name
from ..segmenter import GeoSegmentationConfig

CHANNEL_ADAPTERS = ("repeat", "conv")


@strict
class GeoFMConfig(GeoSegmentationConfig):
    r"""
    Configuration of a [`GeoFMForSemanticSegmentation`]: a vision foundation-model backbone with a light
    segmentation decoder for geophysical sections.

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*):
            Any supported transformers backbone config (DINOv2 by default, also ConvNeXt and Swin). Defaults to the
            `dinov2-small` preset.
        backbone_name (`str`, *optional*):
            Hub id or path of the checkpoint whose weights fit `backbone_config` (recorded for model cards and
            `from_pretrained_backbone`).
        feature_levels (`list[int]`, *optional*):
            Backbone levels fed to the decoder (1-based transformer blocks of a ViT, stages of a hierarchical net).
            Defaults to four evenly spaced levels: 3/6/9/12 for 12 blocks, 6/12/18/24 for 24, 10/20/30/40 for 40.
        decoder (`str`, *optional*, defaults to `"mla"`):
            Decoder name in `geofm_hf.models.decoders.DECODERS`: `linear`, `pup`, `dpt`, `mla` or `upernet`.
        decoder_kwargs (`dict`, *optional*):
            Extra settings of the decoder (e.g. `{"channels": 128}`).
        channel_adapter (`str`, *optional*, defaults to `"repeat"`):
            How `in_channels` meet the backbone's channels: `"repeat"` copies a single channel (as the study did),
            `"conv"` learns a 1x1 convolution (initialised to the channel mean copied to every output channel).
        refiner_channels (`int`, *optional*):
            Width of an [`ImageRefiner`] that corrects the logits at the input's own resolution from the input
            section itself (for small sections, which a ViT sees as a coarse grid of tokens). None: no refiner.
        Loss and input settings (`in_channels`, `loss_weights`, `class_weights`, `ignore_index`, `focal_gamma`,
        `task`, `initializer_range`) are those of [`GeoSegmentationConfig`].

    Example:

    ```python
    >>> import geofm_hf
    >>> config = geofm_hf.GeoFMConfig.for_task("fault", backbone="dinov2-small", decoder="mla")
    >>> config.num_labels, config.backbone_config.out_indices
    (2, [3, 6, 9, 12])
    ```
    """

    model_type = "geofm"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(
            config_class=AutoConfig, model_type="dinov2", init_kwargs=BACKBONE_PRESETS["dinov2-small"].config
        )
    }

    backbone_config: dict | PreTrainedConfig | None = None
    backbone_name: str | None = None
    feature_levels: list[int] | None = None
    decoder: str = DEFAULT_DECODER
    decoder_kwargs: dict | None = None
    channel_adapter: str = "repeat"
    refiner_channels: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        family = get_family(self.backbone_config)
        if self.feature_levels is None:
            self.feature_levels = family.default_levels(self.backbone_config)
        self._check_feature_levels(family.depth(self.backbone_config))
        self.backbone_config.set_output_features_output_indices(None, list(self.feature_levels))
        self._check_model_settings()

    def _check_feature_levels(self, depth: int) -> None:
        bad = [level for level in self.feature_levels if not 1 <= level <= depth]
        if bad or not self.feature_levels or sorted(set(self.feature_levels)) != list(self.feature_levels):
            raise ValueError(
                f"GeoFMConfig.feature_levels={self.feature_levels} is invalid for a {self.backbone_config.model_type} "
                f"backbone with {depth} levels: expected distinct increasing levels in 1..{depth}"
                + (f" ({bad} beyond the backbone's depth)" if bad else "")
            )

    def _check_model_settings(self) -> None:
        """Refuse decoder and channel settings the model cannot build, saying what is expected."""
        check_decoder_name(self.decoder, "GeoFMConfig.decoder")
        if self.channel_adapter not in CHANNEL_ADAPTERS:
            raise ValueError(f"GeoFMConfig.channel_adapter={self.channel_adapter!r}; expected one of {CHANNEL_ADAPTERS}")
        backbone_channels = self.backbone_config.num_channels
        if self.channel_adapter == "repeat" and self.in_channels not in (1, backbone_channels):
            raise ValueError(
                f"GeoFMConfig.in_channels={self.in_channels} cannot be repeated to the backbone's {backbone_channels} "
                "channels: use in_channels=1, or channel_adapter='conv'"
            )
        if self.refiner_channels is not None and self.refiner_channels < 1:
            raise ValueError(
                f"GeoFMConfig.refiner_channels must be >= 1 (or None: no refiner); got {self.refiner_channels}"
            )

    @property
    def pad_multiple(self) -> int:
        """Inputs are padded to a multiple of this many pixels before the backbone sees them."""
        return get_family(self.backbone_config).pad_multiple(self.backbone_config)

    @classmethod
    def for_task(
        cls,
        task: str,
        backbone: str = "dinov2-small",
        decoder: str | None = None,
        backbone_overrides: dict[str, Any] | None = None,
        **kwargs,
    ) -> "GeoFMConfig":
        """Config for a task of `geofm_hf.models.tasks.TASKS`, built without any download.

        Args:
            task: task name or alias (`"fault"`, `"salt"`, `"seismic-facies"`, `"crater"`, `"das-event"`).
            backbone: a preset name from `geofm_hf.models.backbones.BACKBONE_PRESETS` (or any spelling
                `geofm_hf.models.build.segmenter_config` accepts).
            decoder: decoder name; defaults to the task's default decoder.
            backbone_overrides: changes to the preset's backbone config (e.g. a tiny depth for tests).
            **kwargs: any other `GeoFMConfig` argument.
        """
        from ..build import segmenter_config  # the builder imports this module

        return segmenter_config(backbone, task, decoder, backbone_overrides=backbone_overrides, **kwargs)


__all__ = ["GeoFMConfig"]
