"""Window weights for blending overlapping tile predictions.

Every tile's class probabilities are multiplied by a window before they are summed, and the sum is divided by the
summed windows. A window that falls smoothly towards the tile's edges hides the edges' poorer predictions (less
context, the model's own padding) and makes the hand-over between neighbouring tiles gradual, so no seam appears.
Windows are separable: the 2-D window is the outer product of one 1-D window per axis.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Standard deviation of the Gaussian window as a fraction of the tile length (as in nnU-Net's sliding window): the
# edge weight is exp(-8) ~ 3e-4 of the centre's, small enough to hide edge effects yet strictly positive.
GAUSSIAN_SIGMA_FRACTION = 1.0 / 8.0


def gaussian_window(length: int, overlap: int) -> np.ndarray:
    """Gaussian centred on the tile, ``sigma = length / 8``; ``overlap`` is not used (the shape suits any overlap)."""
    offsets = np.arange(length, dtype=np.float64) + 0.5 - length / 2.0
    return np.exp(-0.5 * (offsets / (length * GAUSSIAN_SIGMA_FRACTION)) ** 2)


def cosine_window(length: int, overlap: int) -> np.ndarray:
    """Flat top with raised-cosine (sin^2) ramps ``overlap`` samples long at both ends.

    The ramp starts at ``sin^2(pi / (4 * overlap))``, not 0, so every sample keeps a positive weight; two ramps of
    tiles that overlap by exactly ``overlap`` samples sum to 1 (sin^2 + cos^2), like a Hann crossfade.
    """
    ramp_length = min(overlap, length // 2)
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_length) + 0.5) / max(ramp_length, 1)) ** 2
    return np.concatenate([ramp, np.ones(length - 2 * ramp_length), ramp[::-1]])


def constant_window(length: int, overlap: int) -> np.ndarray:
    """Uniform weights: overlapping tiles are plainly averaged (fastest, but tile edges can show as seams)."""
    return np.ones(length)


BLEND_WINDOWS: dict[str, Callable[[int, int], np.ndarray]] = {
    "gaussian": gaussian_window,
    "cosine": cosine_window,
    "constant": constant_window,
}


def check_blend(blend: str) -> None:
    """Refuse a window name that is not in :data:`BLEND_WINDOWS`."""
    if blend not in BLEND_WINDOWS:
        raise ValueError(f"blend={blend!r} is unknown; expected one of {sorted(BLEND_WINDOWS)}")


def window_weights(tile: tuple[int, int], overlap: tuple[int, int], blend: str = "gaussian") -> np.ndarray:
    """The 2-D blending window of one tile.

    Args:
        tile: (height, width) of the tile.
        overlap: overlap in samples between neighbouring tiles along (height, width); shapes the cosine ramps.
        blend: a name in :data:`BLEND_WINDOWS`.

    Returns:
        float32 array of shape ``tile``, strictly positive, symmetric under flips of either axis.
    """
    check_blend(blend)
    window = BLEND_WINDOWS[blend]
    rows, cols = (window(length, max(int(lap), 0)) for length, lap in zip(tile, overlap))
    return np.outer(rows, cols).astype(np.float32)


__all__ = ["BLEND_WINDOWS", "check_blend", "window_weights", "gaussian_window", "cosine_window", "constant_window"]
