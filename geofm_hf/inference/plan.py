"""The plan of a prediction: what is stored, along which directions, in which tiles, and the result's shape.

:func:`plan_prediction` works all of it out once from the model's config, the input's shape and the user's options,
and refuses a bad option with a one-line ``ValueError`` naming it and what it may be, before any section is read.
:func:`~geofm_hf.inference.predict_tiled` and ``geofm predict`` both build a :class:`PredictionPlan` with it and hand
it to :func:`~geofm_hf.inference.predict_with_plan`; nothing else derives any of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..precision import PRECISIONS
from ..io import SectionAxis, VolumeReader, get_section_axes
from ..study import STUDY
from .blending import check_blend

# Tile side used when the model's task does not say how large its training sections were.
DEFAULT_TILE = 224
DEFAULT_OVERLAP = 0.25
DEFAULT_BLEND = "gaussian"
DEFAULT_BATCH_SIZE = 8
# bf16 where the hardware computes it natively, else fp32 (geofm_hf.precision).
DEFAULT_PRECISION = "auto"
OUTPUT_KINDS = ("labels", "probabilities")


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one section go.

    Attributes:
        shape: (height, width) of the section.
        tile: (height, width) of every tile: the requested tile, shrunk along axes where the section is smaller, but
            never below the model's minimum input size.
        padded_shape: the section's shape after reflect padding up to at least ``tile`` (only sections smaller than
            the model's minimum input are padded).
        starts: tile origins along each axis; the first is 0, the last ends flush with the padded section, and the
            ones between are evenly spaced, so neighbours overlap by at least ``overlap``.
        overlap: the requested overlap in samples along each axis.
    """

    shape: tuple[int, int]
    tile: tuple[int, int]
    padded_shape: tuple[int, int]
    starts: tuple[tuple[int, ...], tuple[int, ...]]
    overlap: tuple[int, int]

    @classmethod
    def plan(
        cls,
        shape: tuple[int, int],
        tile: int | tuple[int, int],
        overlap: float | int = DEFAULT_OVERLAP,
        min_size: int = 1,
    ) -> "TileGrid":
        """Tile a section of ``shape``.

        Args:
            shape: (height, width) of the section.
            tile: tile side, or (height, width).
            overlap: a float in [0, 1) is a fraction of the tile; an int is a number of samples (less than the tile).
            min_size: smallest input the model accepts (its padding multiple).
        """
        requested = _pair(tile, "tile")
        if min(requested) < min_size:
            raise ValueError(f"tile={tile} is smaller than the model's minimum input of {min_size} samples")
        laps = tuple(_overlap_samples(overlap, side) for side in requested)
        tiles = tuple(max(min(side, length), min_size) for side, length in zip(requested, shape))
        padded = tuple(max(length, side) for length, side in zip(shape, tiles))
        starts = tuple(_starts(length, side, lap) for length, side, lap in zip(padded, tiles, laps))
        return cls(tuple(shape), tiles, padded, starts, laps)

    @property
    def origins(self) -> list[tuple[int, int]]:
        """(row, column) of every tile's top-left corner, row by row."""
        return [(row, col) for row in self.starts[0] for col in self.starts[1]]

    def __len__(self) -> int:
        return len(self.starts[0]) * len(self.starts[1])

    def window(self, origin: tuple[int, int]) -> tuple[slice, slice]:
        """Index of the tile at ``origin`` in the padded section."""
        return tuple(slice(start, start + side) for start, side in zip(origin, self.tile))


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(f"{name}={value!r}: expected a positive int or a (height, width) pair of positive ints")
    return int(pair[0]), int(pair[1])


def _overlap_samples(overlap: float | int, tile: int) -> int:
    if isinstance(overlap, (int, np.integer)) and not isinstance(overlap, bool):
        samples = int(overlap)
    elif isinstance(overlap, float) and 0.0 <= overlap < 1.0:
        samples = round(overlap * tile)
    else:
        raise ValueError(f"overlap={overlap!r}: expected a fraction in [0, 1) or a number of samples (int)")
    if not 0 <= samples < tile:
        raise ValueError(f"overlap={overlap!r} is {samples} samples; expected 0 <= overlap < tile ({tile})")
    return samples


def _starts(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    if length <= tile:
        return (0,)
    count = 1 + math.ceil((length - tile) / (tile - overlap))
    return tuple(int(s) for s in np.linspace(0, length - tile, count).round())


@dataclass(frozen=True)
class OutputMode:
    """What is stored per sample: class labels, all class probabilities, or the probability of one class.

    Attributes:
        labels: store the argmax class.
        class_index: with ``labels=False``, the one class whose probability is stored (None: all classes).
        num_labels: classes of the model.
    """

    labels: bool
    class_index: int | None
    num_labels: int

    @classmethod
    def from_arguments(cls, output: str | None, output_class: int | str | None, config) -> "OutputMode":
        """The mode for an ``output`` kind and ``output_class`` given a model's config.

        Args:
            output: ``"labels"`` or ``"probabilities"``; None: labels, or the probability of ``output_class`` when
                one is given.
            output_class: with probabilities, keep only this class (index or name in ``config.id2label``).
            config: the model's config (``num_labels``, ``id2label``).
        """
        if output is None:
            output = "labels" if output_class is None else "probabilities"
        if output not in OUTPUT_KINDS:
            raise ValueError(f"output={output!r}: expected 'labels' or 'probabilities'")
        if output == "labels" and output_class is not None:
            raise ValueError(f"output_class={output_class!r} selects a class probability: use output='probabilities'")
        class_index = None if output_class is None else resolve_class(config, output_class)
        return cls(output == "labels", class_index, config.num_labels)

    @property
    def leading_axes(self) -> int:
        """Axes before the spatial ones in the stored values: a class axis when every probability is kept."""
        return int(not self.labels and self.class_index is None)

    @property
    def kept_classes(self) -> int:
        """Probabilities that must be kept (and averaged) to finish a sample."""
        return 1 if self.class_index is not None else self.num_labels

    @property
    def dtype(self) -> np.dtype:
        """Smallest unsigned integer type holding every class id for labels; float32 for probabilities."""
        return np.min_scalar_type(self.num_labels - 1) if self.labels else np.dtype(np.float32)

    def result_shape(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the stored values for an input of shape ``spatial``."""
        return (self.num_labels,) * self.leading_axes + tuple(spatial)

    def keep(self, probabilities: np.ndarray) -> np.ndarray:
        """The kept probabilities of (classes, ...) ``probabilities``."""
        return probabilities if self.class_index is None else probabilities[self.class_index : self.class_index + 1]

    def finish(self, kept: np.ndarray) -> np.ndarray:
        """Stored values from kept probabilities."""
        if self.labels:
            return kept.argmax(axis=0).astype(self.dtype)
        return kept if self.leading_axes else kept[0]


def resolve_class(config, value: int | str) -> int:
    """Index of a class given by index (int or digit string) or by name in ``config.id2label``."""
    names = {name: int(index) for index, name in config.id2label.items()}
    if isinstance(value, (int, np.integer)) or str(value).isdigit():
        index = int(value)
        if 0 <= index < config.num_labels:
            return index
    elif value in names:
        return names[value]
    raise ValueError(f"class {value!r} is not one of the model's classes: {dict(sorted(config.id2label.items()))}")


def default_tile(config) -> tuple[int, int]:
    """The section size the study used for the model's task (rounded up to the padding multiple), else 224."""
    study = STUDY.get(getattr(config, "task", None))
    if study is None:
        return DEFAULT_TILE, DEFAULT_TILE
    multiple = getattr(config, "pad_multiple", 1)
    return tuple(multiple * math.ceil(side / multiple) for side in study.native_size)


@dataclass(frozen=True)
class PredictionPlan:
    """Everything a prediction needs besides the model and the data, checked and worked out once.

    Attributes:
        input_shape: (time/depth rows, trace columns) of a section, or (inline, crossline, time) of a volume.
        mode: what is stored per sample.
        axes: a volume's section directions, in the order they are predicted (their probabilities are averaged);
            empty for a section.
        grids: the tiling of the sections (as the model sees them): one per direction in ``axes``, or the section's
            one grid.
        blend: the window weighting every tile (a name in :data:`~geofm_hf.inference.BLEND_WINDOWS`).
        batch_size: tiles per forward pass.
        precision: as asked (``auto``, ``bf16``, ``fp16``, ``fp32``; see :mod:`geofm_hf.precision`); made concrete for
            the device when the prediction runs.
    """

    input_shape: tuple[int, ...]
    mode: OutputMode
    axes: tuple[SectionAxis, ...]
    grids: tuple[TileGrid, ...]
    blend: str
    batch_size: int
    precision: str = DEFAULT_PRECISION

    @property
    def is_volume(self) -> bool:
        return bool(self.axes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the result: the input's, after a class axis when every class probability is stored."""
        return self.mode.result_shape(self.input_shape)

    @property
    def output_dtype(self) -> np.dtype:
        return self.mode.dtype

    @property
    def section_count(self) -> int:
        """Sections along the first direction (1 for a section)."""
        return self.input_shape[self.axes[0].index] if self.is_volume else 1


def plan_prediction(
    config,
    data: np.ndarray | VolumeReader,
    *,
    tile: int | tuple[int, int] | None = None,
    overlap: float | int = DEFAULT_OVERLAP,
    blend: str = DEFAULT_BLEND,
    batch_size: int = DEFAULT_BATCH_SIZE,
    output: str | None = None,
    output_class: int | str | None = None,
    axis: str | tuple[str, ...] = "inline",
    precision: str = DEFAULT_PRECISION,
) -> PredictionPlan:
    """Check the options against the model and the input, and plan the prediction; reads no section.

    Args:
        config: the model's config: ``num_labels`` and ``id2label``, optionally ``in_channels``, ``pad_multiple``
            (the smallest input, which tiles may not go below) and ``task`` (for the default tile).
        data: a 2-D section array, or a :class:`~geofm_hf.io.VolumeReader` of an (inline, crossline, time) volume;
            only its shape (and name, for messages) is used.
        tile, overlap, blend, batch_size, output, output_class, axis: as in
            :func:`~geofm_hf.inference.predict_tiled`, except that ``output=None`` means labels, or the probability
            of ``output_class`` when one is given (``geofm predict``'s default). ``axis`` is checked for a section too,
            where it is not used.

    Raises:
        ValueError: naming the option (or the input) and what it may be.
    """
    is_volume = isinstance(data, VolumeReader)
    source = data.name if is_volume else "the input section"
    shape = tuple(int(length) for length in data.shape)
    if len(shape) != (3 if is_volume else 2):
        kind = "a volume (inline, crossline, time)" if is_volume else "a 2-D section (rows, columns)"
        raise ValueError(f"{source}: expected {kind}; got shape {shape}")
    _check_single_channel(config, source)
    mode = OutputMode.from_arguments(output, output_class, config)
    check_blend(blend)
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is unknown; expected one of {', '.join(PRECISIONS)}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a whole number of tiles per forward pass, at least 1")
    # Checked for sections too, so that a misspelt axis is refused whatever the input.
    axes = get_section_axes(axis)
    tile = default_tile(config) if tile is None else tile
    min_size = getattr(config, "pad_multiple", 1)
    # The sections as the model sees them: one shape per direction of a volume, or the section itself.
    section_shapes = [direction.picture_shape(shape) for direction in axes] if is_volume else [shape]
    grids = tuple(TileGrid.plan(section_shape, tile, overlap, min_size) for section_shape in section_shapes)
    return PredictionPlan(shape, mode, axes if is_volume else (), grids, blend, int(batch_size), precision)


def _check_single_channel(config, source: str) -> None:
    """Surveys are single-channel amplitudes: a model that takes several channels cannot predict them."""
    in_channels = getattr(config, "in_channels", 1)
    if in_channels != 1:
        raise ValueError(
            f"{source} is single-channel amplitude data, but the model expects {in_channels} input channels "
            "(config.in_channels): use a model trained on single-channel sections (in_channels=1)"
        )


__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_PRECISION",
    "DEFAULT_TILE",
    "OUTPUT_KINDS",
    "OutputMode",
    "PredictionPlan",
    "TileGrid",
    "default_tile",
    "plan_prediction",
    "resolve_class",
]
