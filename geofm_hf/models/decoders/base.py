"""What every decoder is: feature maps of the chosen backbone levels in, logits at a requested size out."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.fx.experimental.symbolic_shapes import statically_known_true
from torch.nn import functional as F


class GeoDecoder(nn.Module):
    """Base class of the decoders.

    Args:
        in_channels: channels of each feature map the backbone returns, shallowest level first.
        num_labels: number of classes.
        **settings: decoder-specific settings from ``GeoFMConfig.decoder_kwargs``.

    Subclasses implement :meth:`forward` taking the feature maps (shallowest first) and the (height, width) the logits
    must have, and returning logits of shape (batch, num_labels, height, width).
    """

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError


DECODERS: dict[str, type[GeoDecoder]] = {}


def register_decoder(name: str) -> Callable[[type[GeoDecoder]], type[GeoDecoder]]:
    """Class decorator adding a decoder to :data:`DECODERS` under ``name``."""

    def decorate(cls: type[GeoDecoder]) -> type[GeoDecoder]:
        DECODERS[name] = cls
        return cls

    return decorate


@torch.no_grad()
def classifier_conv(in_channels: int, num_labels: int) -> nn.Conv2d:
    """The final 1x1 convolution to class logits, initialised small so that training starts from near-uniform
    probabilities (the model's He initialisation of convolutions would give logits of several units)."""
    conv = nn.Conv2d(in_channels, num_labels, kernel_size=1)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)
    # Tells transformers' post_init that these tensors are initialised already.
    conv.weight._is_hf_initialized = True
    conv.bias._is_hf_initialized = True
    return conv


class ConvBlock(nn.Sequential):
    """The study's ``conv_block``: twice (3x3 conv with bias -> BatchNorm -> ReLU), first ``in -> out``, then ``out -> out``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def resize(x: torch.Tensor, size: Sequence[int], mode: str = "bilinear") -> torch.Tensor:
    """Resize a (B, C, H, W) map to ``size``; a no-op when it already has that size.

    Under ``torch.export`` sizes are symbols: the no-op is taken only where the sizes are equal for every input (the
    same symbol), never by comparing the example's values, which would tie the exported program to that case.
    Resampling to the same size is the identity, so where the shortcut is not taken the result is the same.
    """
    if all(statically_known_true(have == want) for have, want in zip(x.shape[-2:], size)):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=tuple(size), mode=mode)
    return F.interpolate(x, size=tuple(size), mode=mode, align_corners=False)


def fraction_of(size: Sequence[int], fraction: int) -> tuple[int, int]:
    """``size // fraction`` per side, at least 1 pixel.

    ``torch.sym_max`` rather than ``max``: under ``torch.export`` the builtin would compare the symbolic sizes and
    fix the branch of the example input; for plain integers both give the same value.
    """
    return tuple(torch.sym_max(1, side // fraction) for side in size)
