"""The study's UNet baseline, with its bottleneck upsampling fixed."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SemanticSegmenterOutput

from ..decoders.base import classifier_conv, resize
from ..segmenter import (
    GeoSegmentationPreTrainedModel,
    build_loss,
    check_pixel_values,
    segmentation_output,
    to_compute_grid,
    to_input_grid,
)
from .configuration_geofm_unet import GeoUNetConfig


class DoubleConv(nn.Sequential):
    """Twice (3x3 conv without bias -> BatchNorm -> ReLU)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class GeoUNetPreTrainedModel(GeoSegmentationPreTrainedModel):
    config_class = GeoUNetConfig
    config: GeoUNetConfig
    base_model_prefix = "unet"


class GeoUNetForSemanticSegmentation(GeoUNetPreTrainedModel):
    """UNet: encoder stages with max-pooling, a decoder that upsamples the deeper map to each skip's size,
    concatenates and convolves, and a 1x1 classifier. Same output contract as [`GeoFMForSemanticSegmentation`].

    The study's code upsampled its bottleneck, discarded the result and zero-padded the small map instead, misaligning
    the deepest features; here every decoder stage upsamples (bilinear) before concatenating.
    """

    def __init__(self, config: GeoUNetConfig):
        super().__init__(config)
        widths = config.widths
        self.encoder = nn.ModuleList(
            DoubleConv(c_in, c_out) for c_in, c_out in zip([config.in_channels] + widths[:-1], widths)
        )
        self.pool = nn.MaxPool2d(2)
        # Decoder stage for skip level k outputs widths[k - 1] channels (the last one keeps widths[0]).
        decoder_in = widths[-1]
        self.decoder = nn.ModuleList()
        for level in range(len(widths) - 2, -1, -1):
            out_channels = widths[max(level - 1, 0)]
            self.decoder.append(DoubleConv(decoder_in + widths[level], out_channels))
            decoder_in = out_channels
        self.classifier = classifier_conv(decoder_in, config.num_labels)
        self.loss_fn = build_loss(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SemanticSegmenterOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, in_channels, height, width)`): normalised sections.
            labels (`torch.LongTensor` of shape `(batch_size, height, width)`, *optional*): class ids.
        """
        check_pixel_values(pixel_values, self.config.in_channels, 1)
        height, width = pixel_values.shape[-2:]
        x = to_compute_grid(pixel_values, self.config.compute_scale, self.config.pad_multiple)
        skips = []
        for index, stage in enumerate(self.encoder):
            x = stage(x if index == 0 else self.pool(x))
            skips.append(x)
        for stage, skip in zip(self.decoder, reversed(skips[:-1])):
            x = stage(torch.cat([skip, resize(x, skip.shape[-2:])], dim=1))
        logits = to_input_grid(self.classifier(x), height, width, self.config.compute_scale)
        output = segmentation_output(logits, labels, self.loss_fn)
        return output if return_dict is not False else output.to_tuple()


__all__ = ["GeoUNetForSemanticSegmentation", "GeoUNetPreTrainedModel"]
