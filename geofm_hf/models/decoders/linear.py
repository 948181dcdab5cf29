"""The study's ``dinov2_linear`` head: a 1x1 convolution on the deepest patch features."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import GeoDecoder, classifier_conv, register_decoder, resize


@register_decoder("linear")
class LinearDecoder(GeoDecoder):
    """1x1 conv ``d -> C`` on the last feature map, then upsampling to the input size.

    The study upsampled with nearest neighbour, which makes 14-px blocks; ``upsample="bilinear"`` (default) gives
    smooth boundaries at no cost, ``upsample="nearest"`` reproduces the study.
    """


    def __init__(self, in_channels: Sequence[int], num_labels: int, upsample: str = "bilinear"):
        super().__init__()
        self.upsample = upsample
        self.classifier = classifier_conv(in_channels[-1], num_labels)

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int]) -> torch.Tensor:
        return resize(self.classifier(features[-1]), output_size, self.upsample)
