"""The study's DPT-style head: 3x3 projections of four levels, residual fusion blocks, a small convolutional head.

Like the study (and unlike the original DPT) there is no reassemble stage: every level stays on the backbone's own
grid and the fusion blocks resample to absolute fractions of the output size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import GeoDecoder, classifier_conv, fraction_of, register_decoder, resize


class ResidualConvUnit(nn.Module):
    """x + (ReLU -> conv3x3 -> BN -> ReLU -> conv3x3 -> BN)(x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FusionBlock(nn.Module):
    """Adds a refined skip level to the running path, refines, resamples to ``size`` and projects (1x1 conv).

    The deepest block has no running path yet, so it has no skip unit (the study built one and never called it).
    """

    def __init__(self, channels: int, has_skip: bool):
        super().__init__()
        self.skip_unit = ResidualConvUnit(channels) if has_skip else None
        self.refine_unit = ResidualConvUnit(channels)
        self.project = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if self.skip_unit is not None and skip is not None:
            x = x + resize(self.skip_unit(skip), x.shape[-2:])
        return self.project(resize(self.refine_unit(x), size))


@register_decoder("dpt")
class DPTDecoder(GeoDecoder):
    """Levels projected to ``channels`` (256) with bias-free 3x3 convs; fusion deepest-first to 1/16, 1/8, 1/4, 1/2 of
    the output; head conv3x3 -> 128, upsample to the output, conv3x3 -> 32 + ReLU, conv1x1 -> C.

    The study ended with a ReLU on the logits (a leftover of DPT's depth head): logits here are unconstrained.
    """

    fractions = (2, 4, 8, 16)

    def __init__(
        self, in_channels: Sequence[int], num_labels: int, channels: int = 256, upsample: str = "bilinear"
    ):
        super().__init__()
        self.upsample = upsample
        self.projections = nn.ModuleList(nn.Conv2d(c, channels, 3, padding=1, bias=False) for c in in_channels)
        self.fusions = nn.ModuleList(FusionBlock(channels, has_skip=i < len(in_channels) - 1) for i in range(len(in_channels)))
        self.head_in = nn.Conv2d(channels, channels // 2, 3, padding=1)
        self.head_out = nn.Sequential(
            nn.Conv2d(channels // 2, 32, 3, padding=1), nn.ReLU(), classifier_conv(32, num_labels)
        )

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int]) -> torch.Tensor:
        levels = [project(f) for project, f in zip(self.projections, features)]
        path = None
        for level in range(len(levels) - 1, -1, -1):
            fraction = self.fractions[min(level, len(self.fractions) - 1)]
            x, skip = (levels[level], None) if path is None else (path, levels[level])
            path = self.fusions[level](x, skip, fraction_of(output_size, fraction))
        return self.head_out(resize(self.head_in(path), output_size, self.upsample))
