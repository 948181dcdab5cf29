"""Test-time augmentation: a segmenter whose logits are the mean over the section and its left-right mirror.

A left-right flip maps a seismic section (or a DAS record, or an image) onto an equally plausible one, and the
models are trained with random flips, so averaging both views removes some of the noise of a single pass at twice
the cost. Up-down flips are not used: they turn time or depth upside down.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SemanticSegmenterOutput


class FlipAveraged(nn.Module):
    """Wraps ``model`` so that ``forward(pixel_values)`` returns the mean logits of the section and its mirror.

    It keeps ``model.config``, so evaluation and tiled prediction take it wherever they take the model.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config

    @property
    def decoder(self) -> nn.Module | None:
        """The wrapped model's decoder, so that precision settings (channels-last) reach it through the wrapper."""
        return getattr(self.model, "decoder", None)

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> SemanticSegmenterOutput:
        logits = self.model(pixel_values=pixel_values).logits
        mirrored = self.model(pixel_values=pixel_values.flip(-1)).logits.flip(-1)
        return SemanticSegmenterOutput(logits=(logits + mirrored) / 2)


def with_tta(model: nn.Module, tta: bool) -> nn.Module:
    """``model`` wrapped in :class:`FlipAveraged` when ``tta``, else ``model`` itself."""
    return FlipAveraged(model) if tta else model


__all__ = ["FlipAveraged", "with_tta"]
