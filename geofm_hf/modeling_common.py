"""Pieces every geofm segmenter shares: input checks, padding to the backbone's multiple, the loss and the output."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SemanticSegmenterOutput

from .losses import SegmentationLoss


def check_pixel_values(pixel_values: torch.Tensor, in_channels: int, min_size: int) -> None:
    """Refuse input the model would otherwise misread: wrong rank, wrong channel count, smaller than ``min_size``."""
    if pixel_values.ndim != 4:
        raise ValueError(f"pixel_values must be (batch, channels, height, width); got shape {tuple(pixel_values.shape)}")
    if pixel_values.shape[1] != in_channels:
        raise ValueError(
            f"pixel_values has {pixel_values.shape[1]} channels but the model's config.in_channels is {in_channels}"
        )
    if min(pixel_values.shape[-2:]) < min_size:
        raise ValueError(
            f"pixel_values is {tuple(pixel_values.shape[-2:])} pixels; the model needs at least {min_size} x {min_size}"
        )


def pad_to_multiple(pixel_values: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad height and width at the bottom/right up to a multiple of ``multiple``.

    Reflection keeps the border statistics of seismic sections (zeros would look like a strong reflector); it needs
    the pad to be smaller than the image, so tiny inputs fall back to edge replication.
    """
    height, width = pixel_values.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return pixel_values
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(pixel_values, (0, pad_w, 0, pad_h), mode=mode)


def init_conv_weights(module: nn.Module) -> bool:
    """He initialisation of convolutions (the decoders are conv -> BatchNorm -> ReLU stacks: transformers' default
    N(0, 0.02) shrinks activations layer after layer, leaving near-zero logits until BatchNorm statistics adapt).
    Returns whether ``module`` was a convolution or BatchNorm it initialised."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            init.zeros_(module.bias)
        return True
    if isinstance(module, nn.BatchNorm2d):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        return True
    return False


class GeoSegmentationPreTrainedModel(PreTrainedModel):
    """Base of the geofm segmenters: image input, and He initialisation of their convolutions."""

    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def _init_weights(self, module: nn.Module) -> None:
        if not init_conv_weights(module):
            super()._init_weights(module)


def build_loss(config) -> SegmentationLoss:
    """The loss a config asks for (``loss_weights``, ``class_weights``, ``ignore_index``, ``focal_gamma``)."""
    return SegmentationLoss(config.loss_weights, config.class_weights, config.ignore_index, config.focal_gamma)


def segmentation_output(
    logits: torch.Tensor,
    labels: torch.Tensor | None,
    loss_fn: SegmentationLoss,
    hidden_states: tuple[torch.Tensor, ...] | None = None,
) -> SemanticSegmenterOutput:
    """Wrap logits (and the loss when labels are given) as transformers' ``SemanticSegmenterOutput``."""
    loss = loss_fn(logits, labels) if labels is not None else None
    return SemanticSegmenterOutput(loss=loss, logits=logits, hidden_states=hidden_states)
