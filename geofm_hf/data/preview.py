"""Pictures of each section for the Hub's dataset viewer, which shows ``Image`` columns but not float arrays.

Two columns, each an 8-bit PNG: ``image_preview``, the section in grey (clipped to its 1st-99th percentiles), and
``label_preview``, its class ids as a palette picture (one colour per class, ignored pixels black). They are for
looking only: ``image`` and ``label`` keep the exact values, and training and evaluation never read the previews.
A grey and a palette picture take about 45 % less room than one colour picture of both (measured on 200 TGS patches:
6.5 kB against 11.6 kB per row; 0.33 MB against 0.77 MB per 1536 x 512 Penobscot section). The Parquet shards grow
by 17 % for float sections (200 synthetic 128 x 128 faults: 15.2 -> 17.8 MB) and by 74 % for the TGS patches, whose
8-bit values compress well as arrays (1007 patches: 10.0 -> 17.4 MB). Float32 TIFF ``Image()`` columns were the other
choice: lossless, but as large as the arrays again, and the viewer cannot show float pictures usefully.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PREVIEW_PERCENTILES = (1.0, 99.0)
# One colour per class id, repeating (the colour-blind-safe palette of Okabe and Ito, then greys); id 0 is a dark
# grey, not black, so that black means "ignored" (255) only.
CLASS_COLOURS = (
    (64, 64, 64), (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
    (213, 94, 0), (204, 121, 167), (255, 255, 255), (153, 153, 153), (102, 102, 102),
)
IGNORED_ID = 255
PALETTE = [
    channel
    for index in range(256)
    for channel in ((0, 0, 0) if index == IGNORED_ID else CLASS_COLOURS[index % len(CLASS_COLOURS)])
]


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def grey_levels(image: np.ndarray) -> np.ndarray:
    """The section as 0-255 grey levels, its 1st-99th percentiles stretched over the range."""
    # float64: amplitudes near float32's limits would overflow the interpolation and the subtraction.
    values = image.astype(np.float64)
    low, high = np.percentile(values, PREVIEW_PERCENTILES)
    scaled = (values - low) / max(float(high - low), float(np.finfo(np.float32).tiny))
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def image_preview(image: np.ndarray) -> bytes:
    """PNG bytes of the section in grey."""
    return _png(Image.fromarray(grey_levels(image), mode="L"))


def label_preview(label: np.ndarray) -> bytes:
    """PNG bytes of the class ids as a palette picture (the ids are the palette indices)."""
    picture = Image.fromarray(label.astype(np.uint8), mode="P")
    picture.putpalette(PALETTE)
    return _png(picture)


__all__ = ["CLASS_COLOURS", "image_preview", "label_preview"]
