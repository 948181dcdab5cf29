"""Tiled prediction of sections and volumes of any size, with blended overlaps.

A section is cut into overlapping tiles of a fixed size; each tile's softmax probabilities are weighted by a
window (:mod:`.blending`), summed where tiles overlap and divided by the summed weights. Tiles from several
sections share a batch, so small sections still fill the model's batches. A volume is predicted section by section
along one or several directions, reading from a :class:`~geofm_hf.io.VolumeReader` and writing into any array-like
``out``, so its size is bounded by the disk, not the memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..io import (
    ArrayReader,
    MappedArray,
    SectionAxis,
    VolumeReader,
    get_section_axes,
    check_finite,
    section_key,
)
from ..models.geofm.image_processing_geofm import AmplitudeStats, GeoFMImageProcessor
from ..study import STUDY
from .blending import window_weights

# Tile side used when the model's task does not say how large its training sections were.
DEFAULT_TILE = 224
DEFAULT_OVERLAP = 0.25


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
    def from_arguments(cls, output: str, output_class: int | str | None, config) -> "OutputMode":
        """The mode for ``predict_tiled``'s ``output`` and ``output_class`` arguments and a model's config."""
        if output not in ("labels", "probabilities"):
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
        return np.min_scalar_type(self.num_labels - 1) if self.labels else np.dtype(np.float32)

    def result_shape(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
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


@dataclass
class _SectionSum:
    """Weighted probability sum of one section while its tiles are in flight."""

    padded: np.ndarray
    total: np.ndarray
    tiles_left: int


class SectionPredictor:
    """Predicts class probabilities of equally sized sections, batching tiles across sections.

    Args:
        model: returns ``.logits`` of shape (batch, num_labels, h, w) for ``pixel_values`` (batch, 1, h, w).
        grid: tiling of the sections.
        blend: window name (see :data:`~.blending.BLEND_WINDOWS`).
        batch_size: tiles per forward pass.
        device: where the model runs.
    """

    def __init__(self, model: nn.Module, grid: TileGrid, blend: str, batch_size: int, device: torch.device):
        self.model, self.grid, self.batch_size, self.device = model, grid, batch_size, device
        self.num_labels = model.config.num_labels
        self.weights = window_weights(grid.tile, grid.overlap, blend)
        # Summed in the same tile order as the probabilities, so a sample whose tiles all agree gets it exactly.
        self.weight_sum = np.zeros(grid.padded_shape, dtype=np.float32)
        for origin in grid.origins:
            self.weight_sum[grid.window(origin)] += self.weights

    def predict(self, sections: Iterable[np.ndarray], progress: tqdm | None = None) -> Iterator[np.ndarray]:
        """Yield the (num_labels, height, width) probabilities of each section, in order, as soon as it is done."""
        pending: deque[_SectionSum] = deque()
        batch: list[tuple[_SectionSum, tuple[int, int]]] = []
        for section in sections:
            pending.append(self._start(section))
            for origin in self.grid.origins:
                batch.append((pending[-1], origin))
                if len(batch) == self.batch_size:
                    self._forward(batch, progress)
                    batch = []
                    yield from self._finished(pending)
        if batch:
            self._forward(batch, progress)
        yield from self._finished(pending)

    def _start(self, section: np.ndarray) -> _SectionSum:
        if section.shape != self.grid.shape:
            raise ValueError(f"section of shape {section.shape} given to a tiling planned for {self.grid.shape}")
        pad = [(0, padded - length) for padded, length in zip(self.grid.padded_shape, section.shape)]
        padded = np.pad(section, pad, mode="reflect") if any(after for _, after in pad) else section
        total = np.zeros((self.num_labels, *self.grid.padded_shape), dtype=np.float32)
        return _SectionSum(padded, total, len(self.grid))

    def _forward(self, batch: list[tuple[_SectionSum, tuple[int, int]]], progress: tqdm | None) -> None:
        tiles = np.stack([job.padded[self.grid.window(origin)] for job, origin in batch])
        pixel_values = torch.from_numpy(tiles).unsqueeze(1).to(self.device)
        logits = self.model(pixel_values=pixel_values).logits
        expected = (len(batch), self.num_labels, *self.grid.tile)
        if tuple(logits.shape) != expected:
            raise ValueError(
                f"model returned logits of shape {tuple(logits.shape)} for tiles {tuple(pixel_values.shape)}; "
                f"expected {expected}"
            )
        probabilities = logits.float().softmax(dim=1).cpu().numpy()
        for (job, origin), tile_probabilities in zip(batch, probabilities):
            job.total[(slice(None), *self.grid.window(origin))] += tile_probabilities * self.weights
            job.tiles_left -= 1
        if progress is not None:
            progress.update(len(batch))

    def _finished(self, pending: deque[_SectionSum]) -> Iterator[np.ndarray]:
        height, width = self.grid.shape
        while pending and pending[0].tiles_left == 0:
            job = pending.popleft()
            yield (job.total / self.weight_sum)[:, :height, :width]


@contextlib.contextmanager
def _evaluating(model: nn.Module):
    """Eval mode (dropout off, so results are deterministic) and no autograd, restoring the model's mode after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _check_channels(model: nn.Module, source: str) -> None:
    in_channels = getattr(model.config, "in_channels", 1)
    if in_channels != 1:
        raise ValueError(
            f"{source} is single-channel amplitude data, but the model expects {in_channels} input channels "
            "(config.in_channels): use a model trained on single-channel sections (in_channels=1)"
        )


class _Normalizer:
    """Applies the processor's normalisation with statistics shared by every section of a survey."""

    def __init__(
        self,
        processor: GeoFMImageProcessor | None,
        stats: AmplitudeStats | None,
        sample: Callable[[], np.ndarray],
    ):
        if processor is None and stats is not None:
            raise ValueError("stats were given without a processor to apply them")
        self.processor = processor
        self.stats = stats if stats is not None or processor is None else processor.amplitude_stats(sample())

    def __call__(self, section: np.ndarray) -> np.ndarray:
        if self.processor is None:
            return np.ascontiguousarray(section, dtype=np.float32)
        return np.ascontiguousarray(self.processor.normalize(section, self.stats), dtype=np.float32)


@dataclass(frozen=True)
class _Settings:
    tile: int | tuple[int, int]
    overlap: float | int
    blend: str
    batch_size: int
    device: torch.device
    progress: bool
    min_size: int

    def predictor(self, model: nn.Module, shape: tuple[int, int]) -> SectionPredictor:
        grid = TileGrid.plan(shape, self.tile, self.overlap, self.min_size)
        return SectionPredictor(model, grid, self.blend, self.batch_size, self.device)

    def progress_bar(self, total: int, description: str) -> tqdm:
        return tqdm(total=total, desc=description, unit="tile", disable=not self.progress)


def predict_tiled(
    model: nn.Module,
    data: np.ndarray | VolumeReader,
    tile: int | tuple[int, int] | None = None,
    overlap: float | int = DEFAULT_OVERLAP,
    blend: str = "gaussian",
    batch_size: int = 8,
    device: str | torch.device | None = None,
    output: str = "probabilities",
    output_class: int | str | None = None,
    axis: str | tuple[str, ...] = "inline",
    processor: GeoFMImageProcessor | None = None,
    stats: AmplitudeStats | None = None,
    out=None,
    progress: bool = True,
    scratch_dir: str | os.PathLike | None = None,
):
    """Predict a whole section or survey with a segmentation model, tile by tile, blending the overlaps.

    Each tile's softmax probabilities are weighted by a window that falls towards the tile's edges, summed, and
    divided by the summed weights, so the output has no seams; edges are covered by tiles flush with them. Where the
    data fit in one tile, the result equals a single forward pass over the whole section. Results are deterministic
    (eval mode, fixed tile order).

    Args:
        model: a segmentation model: ``model(pixel_values=x).logits`` with x (B, 1, H, W) gives (B, num_labels, H, W),
            with ``model.config.num_labels`` (and optionally ``in_channels``, ``pad_multiple``, ``task``, ``id2label``).
        data: a 2-D section (rows = time/depth, columns = traces), a 3-D ``(inline, crossline, time)`` array (memory
            maps welcome), or a :class:`~geofm_hf.io.VolumeReader` (SEG-Y, ``.npy``, ``.dat``) for surveys larger than
            memory.
        tile: tile side or (height, width). Default: the model task's training section size rounded up to the model's
            padding multiple (e.g. 896 for faults), else 224. Multiples of the patch size (14 for DINOv2) waste no
            padding inside the model. Larger tiles give more context and fewer edges, and cost more memory per batch.
        overlap: between neighbouring tiles, as a fraction of the tile in [0, 1) or a number of samples (int).
        blend: ``"gaussian"`` (default), ``"cosine"`` (flat top, sin^2 ramps over the overlap) or ``"constant"``
            (plain average; may show seams).
        batch_size: tiles per forward pass (tiles of several sections are batched together).
        device: where to run the model (the model is moved there); default: where the model is.
        output: ``"probabilities"`` (float32) or ``"labels"`` (argmax class ids, smallest unsigned dtype).
        output_class: with ``output="probabilities"``, keep only this class (index or name in ``config.id2label``).
        axis: for volumes, the section direction: ``"inline"``, ``"crossline"``, ``"time"``, several of them (a tuple
            or comma-separated string) or ``"all"``; several directions average their probabilities.
        processor: a :class:`~geofm_hf.GeoFMImageProcessor`; amplitudes are normalised with statistics of the whole
            survey (computed once, never per tile: per-tile normalisation makes seams). None: data are already
            model input.
        stats: precomputed ``AmplitudeStats`` for ``processor``.
        out: where to write the result: an array (or memory map) of the result's shape, or a writer from
            :func:`~geofm_hf.io.create_output`. Default: a new in-memory array.
        progress: show a tqdm progress bar.
        scratch_dir: folder for the on-disk float32 accumulator used when several directions are averaged
            (default: the system's temporary folder).

    Returns:
        ``out`` (or the new array): for a section (H, W), for a volume (inline, crossline, time); with all class
        probabilities, a leading class axis.

    Example:

    ```python
    >>> probabilities = predict_tiled(model, section, tile=224, overlap=0.25, processor=processor)
    >>> labels = predict_tiled(model, volume, output="labels", axis=("inline", "crossline"))
    ```
    """
    mode = OutputMode.from_arguments(output, output_class, model.config)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected at least 1 tile per forward pass")
    if device is None:
        device = next(model.parameters(), torch.empty(0)).device
    device = torch.device(device)
    model.to(device)
    tile = default_tile(model.config) if tile is None else tile
    settings = _Settings(tile, overlap, blend, batch_size, device, progress, getattr(model.config, "pad_multiple", 1))
    data = data if isinstance(data, VolumeReader) else np.asarray(data)
    with _evaluating(model):
        if isinstance(data, np.ndarray) and data.ndim == 2:
            return _predict_section(model, data, mode, processor, stats, out, settings)
        reader = data if isinstance(data, VolumeReader) else ArrayReader(data)
        axes = get_section_axes(axis)
        return _predict_volume(model, reader, mode, axes, processor, stats, out, settings, scratch_dir)


def _prepare_out(out, shape: tuple[int, ...], dtype: np.dtype):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}; this prediction needs {tuple(shape)}")
    return out


def _predict_section(model, data, mode: OutputMode, processor, stats, out, settings: _Settings):
    _check_channels(model, "the input section")
    section = np.asarray(data, dtype=np.float32)
    check_finite(section, "input section", lambda first: f"row {first[0]}, column {first[1]}")
    normalize = _Normalizer(processor, stats, lambda: section)
    out = _prepare_out(out, mode.result_shape(section.shape), mode.dtype)
    predictor = settings.predictor(model, section.shape)
    with settings.progress_bar(len(predictor.grid), "predict section") as bar:
        probabilities = next(predictor.predict([normalize(section)], bar))
    out[...] = mode.finish(mode.keep(probabilities))
    return out


def _predict_volume(
    model, reader: VolumeReader, mode, axes: tuple[SectionAxis, ...], processor, stats, out, settings, scratch_dir
):
    if len(reader.shape) != 3:
        raise ValueError(f"{reader.name}: expected a volume (inline, crossline, time); got shape {reader.shape}")
    _check_channels(model, reader.name)
    normalize = _Normalizer(processor, stats, reader.stats_sample)
    out = _prepare_out(out, mode.result_shape(reader.shape), mode.dtype)
    if len(axes) == 1:
        for index, probabilities in _predict_direction(model, reader, axes[0], normalize, settings):
            out[section_key(axes[0].index, index, mode.leading_axes)] = mode.finish(mode.keep(probabilities))
        return out
    with tempfile.TemporaryDirectory(prefix="geofm-predict-", dir=scratch_dir) as folder:
        shape = (mode.kept_classes, *reader.shape)
        total = MappedArray.create(os.path.join(folder, "probability_sum.f32"), shape, np.float32)
        try:
            for axis in axes:
                for index, probabilities in _predict_direction(model, reader, axis, normalize, settings):
                    key = section_key(axis.index, index, leading=1)
                    total[key] = total[key] + mode.keep(probabilities)
            for index in range(reader.shape[0]):
                mean = total[section_key(0, index, leading=1)] / np.float32(len(axes))
                out[section_key(0, index, mode.leading_axes)] = mode.finish(mean)
        finally:
            total.close()
    return out


def _predict_direction(
    model, reader: VolumeReader, axis: SectionAxis, normalize: _Normalizer, settings: _Settings
) -> Iterator[tuple[int, np.ndarray]]:
    """Probabilities (classes, ...) of every section along ``axis``, in volume axis order."""
    count = reader.shape[axis.index]
    predictor = settings.predictor(model, axis.picture_shape(reader.shape))
    sections = (normalize(axis.orient(reader.read_finite_section(axis.index, i))) for i in range(count))
    with settings.progress_bar(count * len(predictor.grid), f"predict {axis.name}s") as bar:
        for index, probabilities in enumerate(predictor.predict(sections, bar)):
            yield index, axis.orient(probabilities)


__all__ = ["predict_tiled", "TileGrid", "SectionPredictor", "OutputMode", "resolve_class", "default_tile"]
