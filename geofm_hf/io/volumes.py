"""Volumes seen as ``(inline, crossline, time)`` and read one section at a time.

Every survey format (SEG-Y, ``.npy``, raw ``.dat``) is opened as a :class:`VolumeReader` with this axis order: the
layout of segyio's cubes, of C-ordered ``.npy`` volumes and of F-ordered ``(N1, N2, N3)`` raw arrays, whose traces
are contiguous. A section is a 2-D slice with one axis held fixed; writers take values with numpy indexing
(``out[key] = values``, keys from :func:`section_key`), so a plain numpy array is a writer too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .checks import check_finite

# Values read for global amplitude statistics: the processor subsamples to this many anyway.
STATS_MAX_VALUES = 2_000_000
STATS_MAX_SECTIONS = 32


@dataclass(frozen=True)
class SectionAxis:
    """One direction of sectioning a volume.

    Attributes:
        name: ``"inline"``, ``"crossline"`` or ``"time"``.
        index: the volume axis held fixed along the sections.
        time_down: whether the section contains the time axis; the model sees such sections with time running down
            the rows (as in the training sections), i.e. transposed from the volume's axis order.
    """

    name: str
    index: int
    time_down: bool

    def picture_shape(self, volume_shape: tuple[int, int, int]) -> tuple[int, int]:
        """Shape of this direction's sections as the model sees them."""
        shape = tuple(n for i, n in enumerate(volume_shape) if i != self.index)
        return shape[::-1] if self.time_down else shape

    def orient(self, section: np.ndarray) -> np.ndarray:
        """Turn a section (any leading axes) between volume axis order and picture order (it is its own inverse)."""
        return np.swapaxes(section, -1, -2) if self.time_down else section


SECTION_AXES: dict[str, SectionAxis] = {
    axis.name: axis
    for axis in (SectionAxis("inline", 0, True), SectionAxis("crossline", 1, True), SectionAxis("time", 2, False))
}


def get_axis_name(axis: int) -> str:
    """Name of volume axis ``axis`` (0 inline, 1 crossline, 2 time)."""
    return next(spec.name for spec in SECTION_AXES.values() if spec.index == axis)


def get_section_axes(axis: str | tuple[str, ...] | list[str]) -> tuple[SectionAxis, ...]:
    """Resolve ``"inline"``, ``"crossline,time"``, ``"all"`` or a sequence of names to section axes."""
    names = axis.split(",") if isinstance(axis, str) else list(axis)
    names = list(SECTION_AXES) if names == ["all"] else [name.strip() for name in names]
    unknown = [name for name in names if name not in SECTION_AXES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"axis={axis!r}: expected distinct names from {list(SECTION_AXES)} (comma-separated or a tuple), or 'all'"
        )
    return tuple(SECTION_AXES[name] for name in names)


def section_key(axis: int, index: int, leading: int = 0) -> tuple:
    """Numpy index of section ``index`` along volume ``axis`` of an array with ``leading`` extra leading axes."""
    return (slice(None),) * (leading + axis) + (index,)


def parse_section_key(key) -> tuple[int, int]:
    """``(axis, index)`` of a key made by :func:`section_key` with no leading axes."""
    key = key if isinstance(key, tuple) else (key,)
    *fixed, index = key
    if not all(part == slice(None) for part in fixed) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"expected a whole-section index like out[i], out[:, i] or out[:, :, i]; got {key!r}")
    return len(fixed), int(index)


class VolumeReader(ABC):
    """Hands out the sections of an ``(inline, crossline, time)`` volume one at a time.

    A reader may have leading axes before the three volume axes (a multi-class prediction read back); the model's
    input readers have exactly three.
    """

    name: str
    shape: tuple[int, ...]

    @abstractmethod
    def read_section(self, axis: int, index: int) -> np.ndarray:
        """Section ``index`` along volume ``axis`` (0 inline, 1 crossline, 2 time) in volume axis order."""

    @abstractmethod
    def describe(self, position: tuple[int, int, int]) -> str:
        """Where sample ``position`` (volume indices) lives in the source, for error messages."""

    def axis_values(self, axis: int) -> np.ndarray:
        """Coordinates along volume ``axis`` (inline/crossline numbers and sample times where the source has them)."""
        return np.arange(self.shape[-3 + axis])

    def read_finite_section(self, axis: int, index: int) -> np.ndarray:
        """:meth:`read_section` as float32, refusing NaN/Inf with a message naming the first bad sample."""
        section = np.asarray(self.read_section(axis, index), dtype=np.float32)
        check_finite(
            section,
            f"{self.name}, {get_axis_name(axis)} section {index}",
            lambda first: self.describe(first[:axis] + (index,) + first[axis:]),
        )
        return section

    def stats_sample(self, max_values: int = STATS_MAX_VALUES) -> np.ndarray:
        """Evenly spaced inline sections (at most ``max_values`` samples) for survey-wide amplitude statistics."""
        inlines, section_size = self.shape[-3], self.shape[-2] * self.shape[-1]
        count = int(np.clip(max_values // max(section_size, 1), 1, min(STATS_MAX_SECTIONS, inlines)))
        indices = np.unique(np.linspace(0, inlines - 1, count).round().astype(int))
        return np.stack([self.read_finite_section(0, int(i)) for i in indices])

    def close(self) -> None:
        """Release the source."""

    def __enter__(self) -> "VolumeReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


__all__ = [
    "SECTION_AXES",
    "SectionAxis",
    "VolumeReader",
    "get_axis_name",
    "get_section_axes",
    "parse_section_key",
    "section_key",
]
