"""UPerNet (pyramid pooling + FPN) head, beyond the study: transformers' ``UperNetHead`` on our feature levels."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import torch
from torch.fx.experimental.symbolic_shapes import statically_known_true
from transformers.models.upernet.modeling_upernet import UperNetHead

from .base import GeoDecoder, classifier_conv, register_decoder, resize


@register_decoder("upernet")
class UperNetDecoder(GeoDecoder):
    """UPerNet over the feature levels, then bilinear upsampling to the output size.

    A plain ViT gives every level on the same 1/14 grid; FPN needs a pyramid, so such levels are resampled to 4x, 2x,
    1x and 0.5x of that grid first (the usual ViT + UPerNet recipe, parameter-free here). Hierarchical backbones
    already give a pyramid and are used as they are.
    """

    # Resampling of same-grid levels as (numerator, denominator) of the grid: 4x, 2x, 1x and 0.5x.
    pyramid_scales = ((4, 1), (2, 1), (1, 1), (1, 2))

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
        if len(features) != len(self.pyramid_scales) or not _on_one_grid(features):
            return list(features)
        height, width = features[0].shape[-2:]
        return [
            resize(f, (_scaled(height, *scale), _scaled(width, *scale)))
            for f, scale in zip(features, self.pyramid_scales)
        ]

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int]) -> torch.Tensor:
        return resize(self.head(self._pyramid(features)), output_size)


def _on_one_grid(features: Sequence[torch.Tensor]) -> bool:
    """Whether every level has the first one's height and width (a plain ViT), for every input size.

    Under ``torch.export`` the sizes are symbols; levels on one grid have the same ones, so no comparison of the
    example's values (which would tie the exported program to it) is needed.
    """
    first = features[0].shape[-2:]
    return all(statically_known_true(side == ref) for f in features[1:] for side, ref in zip(f.shape[-2:], first))


def _scaled(side: int, numerator: int, denominator: int) -> int:
    """``max(1, round(side * numerator / denominator))`` with Python's rounding (halves to even), in integers only.

    ``round`` of a float is what the pyramid used first; symbolic sizes under ``torch.export`` need integer arithmetic
    (and ``torch.sym_max``) to stay free of branches on the example input. Rounding halves to even: the quotient
    goes up when twice the remainder exceeds the denominator, or equals it and the quotient is odd, which is
    ``(2 * remainder + quotient % 2) // (denominator + 1)`` (0 or 1).
    """
    quotient, remainder = side * numerator // denominator, side * numerator % denominator
    return torch.sym_max(1, quotient + (2 * remainder + quotient % 2) // (denominator + 1))
