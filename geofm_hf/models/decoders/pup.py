"""SETR progressive upsampling (PUP) head, as the study builds it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import ConvBlock, GeoDecoder, classifier_conv, fraction_of, register_decoder, resize


@register_decoder("pup")
class PUPDecoder(GeoDecoder):
    """Four (conv_block -> bilinear upsample) stages on the deepest features, then a 1x1 classifier.

    The stages upsample to absolute sizes 1/8, 1/4, 1/2 and 1/1 of the output, so the head works at any input
    size. Width ``channels`` defaults to d/4 (96 for ViT-S), the study's choice.
    """

    fractions = (8, 4, 2, 1)

    def __init__(self, in_channels: Sequence[int], num_labels: int, channels: int | None = None):
        super().__init__()
        width = channels or in_channels[-1] // 4
        self.stages = nn.ModuleList(
            [ConvBlock(in_channels[-1], width)] + [ConvBlock(width, width) for _ in self.fractions[1:]]
        )
        self.classifier = classifier_conv(width, num_labels)

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int]) -> torch.Tensor:
        x = features[-1]
        for stage, fraction in zip(self.stages, self.fractions):
            x = resize(stage(x), fraction_of(output_size, fraction))
        return self.classifier(resize(x, output_size))
