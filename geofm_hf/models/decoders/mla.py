"""SETR multi-level aggregation (MLA) head, as the study builds it (minus its never-called block-12 ``intmd``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import ConvBlock, GeoDecoder, classifier_conv, register_decoder, resize


class _MLAOutputHead(nn.Sequential):
    """conv_block(w -> w), conv_block(w -> w/2), bilinear x4, conv_block(w/2 -> w/2)."""

    def __init__(self, width: int):
        super().__init__(
            ConvBlock(width, width),
            ConvBlock(width, width // 2),
            nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False),
            ConvBlock(width // 2, width // 2),
        )


@register_decoder("mla")
class MLADecoder(GeoDecoder):
    """Per level: ``in`` conv_block d -> w (w = d/2), a top-down cumulative sum deepest-first, an ``intmd``
    conv_block on every sum but the deepest, an output head to w/2 at 4x resolution; the levels are concatenated and
    classified by a 1x1 conv, then upsampled bilinearly to the output size.

    For hierarchical backbones the deeper sum is resized to the shallower level before adding, and all output heads
    are resized to the shallowest level's (4x) grid before concatenation.
    """

    def __init__(self, in_channels: Sequence[int], num_labels: int, channels: int | None = None):
        super().__init__()
        width = channels or in_channels[-1] // 2
        self.inputs = nn.ModuleList(ConvBlock(c, width) for c in in_channels)
        self.intermediates = nn.ModuleList(ConvBlock(width, width) for _ in in_channels[:-1])
        self.outputs = nn.ModuleList(_MLAOutputHead(width) for _ in in_channels)
        self.classifier = classifier_conv(len(in_channels) * (width // 2), num_labels)

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int]) -> torch.Tensor:
        projected = [block(f) for block, f in zip(self.inputs, features)]
        running = projected[-1]
        aggregated = [running]
        for level in range(len(projected) - 2, -1, -1):
            running = projected[level] + resize(running, projected[level].shape[-2:])
            aggregated.insert(0, self.intermediates[level](running))
        heads = [head(x) for head, x in zip(self.outputs, aggregated)]
        grid = heads[0].shape[-2:]
        fused = torch.cat([resize(h, grid) for h in heads], dim=1)
        return resize(self.classifier(fused), output_size)
