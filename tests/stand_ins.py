"""Stand-ins for a segmentation model whose output is known from its input, and the inputs that show it.

A helper module shared by the prediction tests (not a test module itself): a prediction made of these stand-ins
reveals exactly where every tile landed.
"""

import types

import numpy as np
import torch
from torch import nn


def stand_in_config(num_labels: int = 2, pad_multiple: int = 1, in_channels: int = 1) -> types.SimpleNamespace:
    """The config fields prediction reads from a model, for a model of no task."""
    return types.SimpleNamespace(
        num_labels=num_labels,
        in_channels=in_channels,
        pad_multiple=pad_multiple,
        id2label={i: f"class{i}" for i in range(num_labels)},
        task=None,
    )


class CoordinateModel(nn.Module):
    """Softmax probabilities (x, 1 - x) for input x in (0, 1): the output gives back the input, so a volume of
    values unique to each position shows exactly where every tile's prediction lands.

    Attributes:
        tile_shapes: (height, width) of every tile it was given, in order.
    """

    def __init__(self, pad_multiple: int = 1):
        super().__init__()
        self.config = stand_in_config(pad_multiple=pad_multiple)
        self.tile_shapes: list[tuple[int, int]] = []

    def forward(self, pixel_values: torch.Tensor) -> types.SimpleNamespace:
        self.tile_shapes.extend(tuple(t.shape[-2:]) for t in pixel_values)
        return types.SimpleNamespace(logits=torch.cat([pixel_values.log(), (1 - pixel_values).log()], dim=1))


def unique_values(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """float32 values in (0.05, 0.95), a different one at every position (inputs for :class:`CoordinateModel`)."""
    count = int(np.prod(shape))
    values = 0.05 + 0.9 * (np.random.default_rng(seed).permutation(count) + 0.5) / count
    return values.reshape(shape).astype(np.float32)
