"""UPerNet (pyramid pooling + FPN) head, beyond the study: transformers' ``UperNetHead`` on our feature levels."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import torch
from transformers.models.upernet.modeling_upernet import UperNetHead

from .base import GeoDecoder, classifier_conv, register_decoder, resize


@register_decoder("upernet")
class UperNetDecoder(GeoDecoder):
    """UPerNet over the feature levels, then bilinear upsampling to the output size.

    A plain ViT gives every level on the same 1/14 grid; FPN needs a pyramid, so such levels are resampled to 4x, 2x,
    1x and 0.5x of that grid first (the usual ViT + UPerNet recipe, parameter-free here). Hierarchical backbones
    already give a pyramid and are used as they are.
    """

    pyramid_scales = (4.0, 2.0, 1.0, 0.5)

    def __init__(
        self,
        in_channels: Sequence[int],
        num_labels: int,
        channels: int = 256,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
    ):
        super().__init__()
        head_settings = SimpleNamespace(pool_scales=tuple(pool_scales), hidden_size=channels, num_labels=num_labels)
        self.head = UperNetHead(head_settings, list(in_channels))
        self.head.classifier = classifier_conv(channels, num_labels)

    def _pyramid(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len({tuple(f.shape[-2:]) for f in features}) > 1 or len(features) != len(self.pyramid_scales):
            return list(features)
        height, width = features[0].shape[-2:]
        return [
            resize(f, (max(1, round(height * s)), max(1, round(width * s))))
            for f, s in zip(features, self.pyramid_scales)
        ]

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int]) -> torch.Tensor:
        return resize(self.head(self._pyramid(features)), output_size)
