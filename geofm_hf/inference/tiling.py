"""Tiled prediction of sections and volumes of any size, with blended overlaps.

A section is cut into overlapping tiles of a fixed size; each tile's softmax probabilities are weighted by a
window (:mod:`.blending`), summed where tiles overlap and divided by the summed weights. Tiles from several
sections share a batch, so small sections still fill the model's batches. A volume is predicted section by section
along one or several directions, reading from a :class:`~geofm_hf.io.VolumeReader` and writing into any array-like
``out``, so its size is bounded by the disk, not the memory. What is stored, the directions and the tiles come from
a :class:`~.plan.PredictionPlan` made (and checked) before any section is read.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..io.checks import NON_FINITE_LOGITS_HINT, check_finite_tensor
from ..precision import autocast, evaluation_mode, prefer_channels_last, resolve_precision
from ..io import ArrayReader, MappedArray, SectionAxis, VolumeReader, check_finite, section_key
from ..models.geofm.image_processing_geofm import AmplitudeStats, GeoFMImageProcessor
from .blending import window_weights
from .plan import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BLEND,
    DEFAULT_OVERLAP,
    DEFAULT_PRECISION,
    PredictionPlan,
    TileGrid,
    plan_prediction,
)


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
        precision: ``bf16``, ``fp16`` or ``fp32`` (resolved): the model runs under autocast, probabilities are float32.
    """

    def __init__(
        self, model: nn.Module, grid: TileGrid, blend: str, batch_size: int, device: torch.device, precision: str = "fp32"
    ):
        self.model, self.grid, self.batch_size, self.device = model, grid, batch_size, device
        self.precision = precision
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
        with autocast(self.precision, self.device):
            logits = self.model(pixel_values=pixel_values).logits
        expected = (len(batch), self.num_labels, *self.grid.tile)
        if tuple(logits.shape) != expected:
            raise ValueError(
                f"model returned logits of shape {tuple(logits.shape)} for tiles {tuple(pixel_values.shape)}; "
                f"expected {expected}"
            )
        probabilities = logits.float().softmax(dim=1)
        # Checked after the softmax: a logit of -inf is a probability of 0, but NaN or +inf make NaN probabilities.
        check_finite_tensor(probabilities, "the model's class probabilities", NON_FINITE_LOGITS_HINT)
        probabilities = probabilities.cpu().numpy()
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


def survey_stats(processor: GeoFMImageProcessor, reader: VolumeReader) -> AmplitudeStats:
    """The survey's amplitude statistics, from ``reader.stats_sample()``.

    Raises:
        ValueError: the processor's normalisation refuses the survey's values (e.g. ``byte`` outside 0-255); the
            message names the survey.
    """
    try:
        return processor.amplitude_stats(reader.stats_sample())
    except ValueError as error:
        raise ValueError(f"{reader.name}: {error}") from error


class _Normalizer:
    """Applies the processor's normalisation with statistics shared by every section of a survey."""

    def __init__(
        self,
        processor: GeoFMImageProcessor | None,
        stats: AmplitudeStats | None,
        own_stats: Callable[[GeoFMImageProcessor], AmplitudeStats],
    ):
        if processor is None and stats is not None:
            raise ValueError("stats were given without a processor to apply them")
        self.processor = processor
        self.stats = stats if stats is not None or processor is None else own_stats(processor)

    def __call__(self, section: np.ndarray) -> np.ndarray:
        if self.processor is None:
            return np.ascontiguousarray(section, dtype=np.float32)
        return np.ascontiguousarray(self.processor.normalize(section, self.stats), dtype=np.float32)


def predict_tiled(
    model: nn.Module,
    data: np.ndarray | VolumeReader,
    tile: int | tuple[int, int] | None = None,
    overlap: float | int = DEFAULT_OVERLAP,
    blend: str = DEFAULT_BLEND,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    output: str = "probabilities",
    output_class: int | str | None = None,
    axis: str | tuple[str, ...] = "inline",
    processor: GeoFMImageProcessor | None = None,
    stats: AmplitudeStats | None = None,
    out=None,
    progress: bool = True,
    scratch_dir: str | os.PathLike | None = None,
    precision: str = DEFAULT_PRECISION,
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
        precision: ``"auto"`` (bf16 where the device computes it natively, else fp32), ``"bf16"``, ``"fp16"`` (CUDA)
            or ``"fp32"``: the model runs under autocast; probabilities and outputs are float32 either way.

    Returns:
        ``out`` (or the new array): for a section (H, W), for a volume (inline, crossline, time); with all class
        probabilities, a leading class axis.

    Example:

    ```python
    >>> probabilities = predict_tiled(model, section, tile=224, overlap=0.25, processor=processor)
    >>> labels = predict_tiled(model, volume, output="labels", axis=("inline", "crossline"))
    ```
    """
    data = as_prediction_input(data)
    plan = plan_prediction(
        model.config,
        data,
        tile=tile,
        overlap=overlap,
        blend=blend,
        batch_size=batch_size,
        output=output,
        output_class=output_class,
        axis=axis,
        precision=precision,
    )
    return predict_with_plan(
        model, data, plan, device, processor=processor, stats=stats, out=out, progress=progress, scratch_dir=scratch_dir
    )


def as_prediction_input(data: np.ndarray | VolumeReader) -> np.ndarray | VolumeReader:
    """A 2-D section as an array; a volume (array, memory map or reader) as a :class:`~geofm_hf.io.VolumeReader`."""
    if isinstance(data, VolumeReader):
        return data
    array = np.asarray(data)
    return array if array.ndim == 2 else ArrayReader(array)


def predict_with_plan(
    model: nn.Module,
    data: np.ndarray | VolumeReader,
    plan: PredictionPlan,
    device: str | torch.device | None = None,
    *,
    processor: GeoFMImageProcessor | None = None,
    stats: AmplitudeStats | None = None,
    out=None,
    progress: bool = True,
    scratch_dir: str | os.PathLike | None = None,
):
    """Run a prediction planned by :func:`~geofm_hf.inference.plan_prediction` for ``data``.

    Args:
        model, device, processor, stats, out, progress, scratch_dir: as in :func:`predict_tiled`.
        data: what the plan was made for: a 2-D section array or a volume reader (see :func:`as_prediction_input`).
        plan: the output mode, directions and tiles.

    Returns:
        ``out`` (or a new array) of shape ``plan.output_shape``.
    """
    if tuple(data.shape) != plan.input_shape:
        raise ValueError(f"data of shape {tuple(data.shape)} given to a plan made for {plan.input_shape}")
    run = _Run.start(model, plan, device, progress)
    with evaluation_mode(model), torch.inference_mode():
        if plan.is_volume:
            return _predict_volume(run, data, processor, stats, out, scratch_dir)
        return _predict_section(run, data, processor, stats, out)


@dataclass(frozen=True)
class _Run:
    """A plan with the model and device it runs on."""

    model: nn.Module
    plan: PredictionPlan
    device: torch.device
    progress: bool
    precision: str

    @classmethod
    def start(cls, model: nn.Module, plan: PredictionPlan, device: str | torch.device | None, progress: bool) -> "_Run":
        """Move ``model`` to ``device`` (default: where it is) in the memory format its precision prefers."""
        if device is None:
            device = next(model.parameters(), torch.empty(0)).device
        device = torch.device(device)
        model.to(device)
        precision = resolve_precision(plan.precision, device)
        prefer_channels_last(model, precision)
        return cls(model, plan, device, progress, precision)

    def predictor(self, grid: TileGrid) -> SectionPredictor:
        return SectionPredictor(self.model, grid, self.plan.blend, self.plan.batch_size, self.device, self.precision)

    def progress_bar(self, total: int, description: str) -> tqdm:
        return tqdm(total=total, desc=description, unit="tile", disable=not self.progress)

    def prepare_out(self, out):
        """``out``, checked against the plan's output shape, or a new array."""
        shape = self.plan.output_shape
        if out is None:
            return np.empty(shape, dtype=self.plan.output_dtype)
        if tuple(out.shape) != shape:
            raise ValueError(f"out has shape {tuple(out.shape)}; this prediction needs {shape}")
        return out


def _predict_section(run: _Run, data: np.ndarray, processor, stats, out):
    section = np.asarray(data, dtype=np.float32)
    check_finite(section, "input section", lambda first: f"row {first[0]}, column {first[1]}")
    normalize = _Normalizer(processor, stats, lambda own: own.amplitude_stats(section))
    out = run.prepare_out(out)
    mode, predictor = run.plan.mode, run.predictor(run.plan.grids[0])
    with run.progress_bar(len(predictor.grid), "predict section") as bar:
        probabilities = next(predictor.predict([normalize(section)], bar))
    out[...] = mode.finish(mode.keep(probabilities))
    return out


def _predict_volume(run: _Run, reader: VolumeReader, processor, stats, out, scratch_dir):
    normalize = _Normalizer(processor, stats, lambda own: survey_stats(own, reader))
    out = run.prepare_out(out)
    mode, directions = run.plan.mode, list(zip(run.plan.axes, run.plan.grids))
    if len(directions) == 1:
        for index, probabilities in _predict_direction(run, reader, *directions[0], normalize):
            out[section_key(directions[0][0].index, index, mode.leading_axes)] = mode.finish(mode.keep(probabilities))
        return out
    # Several directions: their kept probabilities are summed on disk, then averaged section by section.
    with tempfile.TemporaryDirectory(prefix="geofm-predict-", dir=scratch_dir) as folder:
        shape = (mode.kept_classes, *reader.shape)
        total = MappedArray.create(os.path.join(folder, "probability_sum.f32"), shape, np.float32)
        try:
            for axis, grid in directions:
                for index, probabilities in _predict_direction(run, reader, axis, grid, normalize):
                    key = section_key(axis.index, index, leading=1)
                    total[key] = total[key] + mode.keep(probabilities)
            for index in range(reader.shape[0]):
                mean = total[section_key(0, index, leading=1)] / np.float32(len(directions))
                out[section_key(0, index, mode.leading_axes)] = mode.finish(mean)
        finally:
            total.close()
    return out


def _predict_direction(
    run: _Run,
    reader: VolumeReader,
    axis: SectionAxis,
    grid: TileGrid,
    normalize: _Normalizer,
    indices: range | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Probabilities (classes, ...) of the sections ``indices`` (default: all) along ``axis``, in volume axis order."""
    indices = range(reader.shape[axis.index]) if indices is None else indices
    predictor = run.predictor(grid)
    sections = (normalize(axis.orient(reader.read_finite_section(axis.index, i))) for i in indices)
    with run.progress_bar(len(indices) * len(grid), f"predict {axis.name}s") as bar:
        for index, probabilities in zip(indices, predictor.predict(sections, bar)):
            yield index, axis.orient(probabilities)


__all__ = ["SectionPredictor", "as_prediction_input", "predict_tiled", "predict_with_plan", "survey_stats"]
