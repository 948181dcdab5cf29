"""Image processor for geophysical sections: float amplitudes in, normalised ``pixel_values`` out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from torch.nn import functional as F
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

# How a picture's colour channels become the one amplitude channel: seismic PNGs are grey stored as R=G=B, for which
# every reduction gives the same values; "luminance" is ITU-R BT.601 for true colour pictures.
RGB_TO_GREY: dict[str, tuple[float, float, float]] = {"mean": (1 / 3, 1 / 3, 1 / 3), "luminance": (0.299, 0.587, 0.114)}

# Grey value of ImageNet's per-channel mean/std averaged over RGB: what a DINOv2 backbone saw for grey images.
GREY_IMAGENET_MEAN = 0.449
GREY_IMAGENET_STD = 0.226


@dataclass(frozen=True)
class AmplitudeStats:
    """The affine map ``(x - offset) / scale`` a normalisation applies before its own final step."""

    offset: float
    scale: float


# Arrays up to this size take np.percentile directly (a millisecond or less); larger ones (a 896x896 section: 16 ms of
# np.percentile's partition over a float64 copy) find the same order statistics by bracketed selection.
PERCENTILE_SELECTION_MIN_SIZE = 65_536
# Values of the strided sample that brackets each order statistic, and the margin (in sample ranks) on either side:
# many standard deviations of a sample rank, so a wrong bracket (then the whole array is searched) is rare.
PERCENTILE_BRACKET_SAMPLE = 16_384
PERCENTILE_BRACKET_MARGIN = 512


def _finite_sample(data: np.ndarray, max_samples: int) -> np.ndarray:
    """Up to ``max_samples`` evenly strided values of ``data`` (a view-based read, cheap on memory maps), in float32 or
    float64 as stored (without a copy where possible), other types as float64."""
    flat = np.asarray(data).reshape(-1) if not isinstance(data, np.memmap) else data.reshape(-1)
    step = max(1, flat.size // max_samples)
    dtype = flat.dtype if flat.dtype in (np.float32, np.float64) else np.float64
    return np.asarray(flat[::step], dtype=dtype)


def _order_statistics(values: np.ndarray, sample: np.ndarray, rank: int) -> tuple[float, float]:
    """The ``rank``-th and next smallest of the 1-D ``values`` (0-based), exactly, without sorting them all.

    The sorted strided ``sample`` of ``values`` brackets the two: one pass counts the values below the bracket and
    keeps those inside it, and only those are partitioned. If the sample misled (the ranks fall outside the bracket),
    the whole array is.
    """
    centre = rank / (values.size - 1) * (sample.size - 1)
    first, last = int(centre) - PERCENTILE_BRACKET_MARGIN, int(centre) + 1 + PERCENTILE_BRACKET_MARGIN
    low = sample[first] if first >= 0 else -np.inf
    high = sample[last] if last < sample.size else np.inf
    below = np.count_nonzero(values < low)
    inside = values[(values >= low) & (values <= high)]
    following = min(rank + 1, values.size - 1)
    if not below <= rank <= following < below + inside.size:
        inside, below = values, 0
    wanted = [rank - below, following - below]
    selected = np.partition(inside, wanted)
    return float(selected[wanted[0]]), float(selected[wanted[1]])


def _percentiles(values: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    """``np.percentile(values, percentiles)`` (linear method) of a 1-D float array, bit for bit, in float64.

    Large arrays find their two order statistics per percentile by :func:`_order_statistics` (a 896x896 section:
    about 3 ms instead of 16) and interpolate between them exactly as numpy's linear method does.
    """
    if values.size <= PERCENTILE_SELECTION_MIN_SIZE:
        return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), percentiles)]
    sample = np.sort(values[:: values.size // PERCENTILE_BRACKET_SAMPLE])
    results = []
    for percentile in percentiles:
        # numpy's virtual index and lerp for method="linear", in the same operation order.
        virtual = (values.size - 1) * (np.float64(percentile) / 100)
        rank = int(np.floor(virtual))
        low, high = (np.float64(v) for v in _order_statistics(values, sample, rank))
        gamma, difference = virtual - rank, high - low
        results.append(float(high - difference * (1 - gamma) if gamma >= 0.5 else low + difference * gamma))
    return results


def _percentile_stats(sample: np.ndarray, percentiles: Sequence[float]) -> AmplitudeStats:
    low, high = _percentiles(sample, percentiles)
    return AmplitudeStats(float(low), float(high - low) or 1.0)


def _standard_stats(sample: np.ndarray, percentiles: Sequence[float]) -> AmplitudeStats:
    sample = np.asarray(sample, dtype=np.float64)
    return AmplitudeStats(float(sample.mean()), float(sample.std()) or 1.0)


def _study_stats(sample: np.ndarray, percentiles: Sequence[float]) -> AmplitudeStats:
    return AmplitudeStats(0.0, 255.0)


def _byte_stats(sample: np.ndarray, percentiles: Sequence[float]) -> AmplitudeStats:
    # Clipping values outside the byte range would hide data that was never an 8-bit picture.
    low, high = float(sample.min()), float(sample.max())
    if low < 0.0 or high > 255.0:
        raise ValueError(
            f"normalization='byte' takes values on the 0-255 scale of 8-bit pictures (such as TGS's PNGs), but these "
            f"run from {low:g} to {high:g}: scale them to 0-255 first, or use a model that normalises by percentiles"
        )
    return AmplitudeStats(0.0, 255.0)


def _percentile_finish(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) - mean) / std


def _standard_finish(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return x


def _study_finish(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    # The study cast its 0-255 floats with np.uint8 (truncation) before ToTensor's /255.
    return np.floor(np.clip(x * 255.0, 0, 255)) / 255.0


@dataclass(frozen=True)
class Normalization:
    """How amplitudes become model input: statistics of the data, then a finishing step after the affine map."""

    stats: Callable[[np.ndarray, Sequence[float]], AmplitudeStats]
    finish: Callable[[np.ndarray, float, float], np.ndarray]
    description: str


NORMALIZATIONS: dict[str, Normalization] = {
    "percentile": Normalization(
        _percentile_stats,
        _percentile_finish,
        "clip to the [p_low, p_high] percentiles, scale to [0, 1], then (x - image_mean) / image_std",
    ),
    "standardize": Normalization(_standard_stats, _standard_finish, "(x - mean) / std of the data"),
    # Per-picture statistics stretch a flat, dim salt interior to the contrast of layered sediment; a fixed scale
    # keeps each picture's own brightness and contrast for the model to see.
    "byte": Normalization(
        _byte_stats,
        _percentile_finish,
        "values on the 0-255 scale of 8-bit pictures, scaled to [0, 1], then (x - image_mean) / image_std",
    ),
    "study": Normalization(
        _study_stats, _study_finish, "the study's: values taken as 0-255, truncated to integers, divided by 255"
    ),
}


def check_finite(
    values: np.ndarray,
    source: str = "image",
    where: Callable[[tuple[int, ...]], str] | None = None,
    hint: str = "Fill or mask them first",
) -> None:
    """Raise ``ValueError`` if ``values`` hold NaN/Inf, naming the source and where the first one is.

    The one non-finite check of geofm_hf: model input, dataset conversion and survey reading all use it.

    Args:
        values: the array to check.
        source: the file (and section), or the input, named first in the message.
        where: turns the first bad array index into a place in the source's own terms (trace, inline, time);
            default: the array index.
        hint: what to do about it, ending the message.
    """
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        place = where(first) if where is not None else f"index {first}"
        raise ValueError(
            f"{source}: {int(bad.sum())} NaN or Inf value(s); the first ({values[first]}) is at {place}. {hint}"
        )


class GeoFMImageProcessor(BaseImageProcessor):
    r"""
    Turns float32 amplitude sections of any range into normalised `pixel_values` of shape
    `(batch, num_channels, height, width)`, at the sections' own size (the model pads and crops itself).

    Args:
        normalization (`str`, *optional*, defaults to `"percentile"`):
            `"percentile"`: clip to the `clip_percentiles` of the data, scale to [0, 1], then subtract `image_mean`
            and divide by `image_std` (robust to spikes, which seismic has plenty of); `"standardize"`: per-image
            (x - mean) / std; `"byte"`: values of 8-bit pictures taken on their fixed 0-255 scale (each picture
            keeps its brightness and contrast; values outside 0-255 are refused), then as `"percentile"` after
            its scaling; `"study"`: the study's scaling (values assumed 0-255, truncated, divided by 255).
        clip_percentiles (`tuple[float, float]`, *optional*, defaults to `(1.0, 99.0)`):
            Percentiles used by `"percentile"`.
        image_mean (`float`, *optional*, defaults to 0.449) and image_std (`float`, *optional*, defaults to 0.226):
            Final shift and scale of `"percentile"` and `"byte"` (ImageNet's mean/std averaged over RGB, what DINOv2
            expects for a grey image).
        num_channels (`int`, *optional*, defaults to 1):
            Channels of the input sections; must equal the model's `config.in_channels`. Single-channel input is
            expanded to the backbone's three channels inside the model (`config.channel_adapter`).
        max_stat_samples (`int`, *optional*, defaults to 2_000_000):
            Statistics of larger arrays (whole volumes) are computed on an evenly strided sample of this size.
        rgb_to_grey (`str`, *optional*, defaults to `"mean"`):
            With `num_channels=1`, how a picture (a PIL image, as `pipeline("image-segmentation")` passes, or an
            `(height, width, 3 | 4)` array) becomes one channel: `"mean"` of R, G and B (exact for grey PNGs stored
            as RGB) or `"luminance"` (BT.601 weights). Alpha is dropped; palette images are converted to RGB first.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        normalization: str = "percentile",
        clip_percentiles: Sequence[float] = (1.0, 99.0),
        image_mean: float = GREY_IMAGENET_MEAN,
        image_std: float = GREY_IMAGENET_STD,
        num_channels: int = 1,
        max_stat_samples: int = 2_000_000,
        rgb_to_grey: str = "mean",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rgb_to_grey not in RGB_TO_GREY:
            raise ValueError(f"rgb_to_grey={rgb_to_grey!r} is unknown; choose from {sorted(RGB_TO_GREY)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={normalization!r} is unknown; choose from {sorted(NORMALIZATIONS)}")
        low, high = clip_percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"clip_percentiles={clip_percentiles}: expected 0 <= low < high <= 100")
        self.normalization = normalization
        self.clip_percentiles = [float(low), float(high)]
        self.image_mean = float(image_mean)
        self.image_std = float(image_std)
        self.num_channels = num_channels
        self.max_stat_samples = max_stat_samples
        self.rgb_to_grey = rgb_to_grey

    def to_dict(self) -> dict:
        """The saved settings, without ``image_processor_type``.

        Auto classes then find the processor through the model's ``config.json`` (registered classes where geofm_hf
        is installed, its ``auto_map`` and the saved code elsewhere). Naming the type here instead would make
        transformers' pipelines derive a non-existent video processor from it and ask on the terminal whether to
        run that code.
        """
        settings = super().to_dict()
        settings.pop("image_processor_type", None)
        return settings

    def amplitude_stats(self, data: np.ndarray) -> AmplitudeStats:
        """Statistics of ``data`` (a section or a whole volume, memory maps welcome) used by :meth:`normalize`.

        Compute them once per survey and pass them to every tile: per-tile statistics would make seams.
        """
        sample = _finite_sample(data, self.max_stat_samples)
        check_finite(sample, "amplitude data")
        return NORMALIZATIONS[self.normalization].stats(sample, self.clip_percentiles)

    def normalize(self, image: np.ndarray, stats: AmplitudeStats | None = None, **kwargs) -> np.ndarray:
        """Normalise an array of amplitudes (any shape) with ``stats`` (default: the array's own); float32 out."""
        image = np.asarray(image, dtype=np.float32)
        check_finite(image)
        stats = stats or self.amplitude_stats(image)
        scaled = (image - np.float32(stats.offset)) / np.float32(stats.scale)
        finished = NORMALIZATIONS[self.normalization].finish(scaled, self.image_mean, self.image_std)
        return finished.astype(np.float32, copy=False)

    def _picture_to_grey(self, picture: np.ndarray) -> np.ndarray:
        """An (height, width, 3 | 4) picture as one float32 channel, by ``rgb_to_grey`` (alpha dropped)."""
        weights = np.asarray(RGB_TO_GREY[self.rgb_to_grey], dtype=np.float32)
        return picture[..., :3].astype(np.float32) @ weights

    def _as_array(self, image: np.ndarray | torch.Tensor | PIL.Image.Image) -> np.ndarray:
        if isinstance(image, PIL.Image.Image):
            keeps_values = image.mode in ("L", "I", "F", "I;16", "I;16B", "I;16L", "RGB", "RGBA")
            return np.asarray(image if keeps_values else image.convert("RGB"))
        return image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)

    def _as_channels_first(self, image: np.ndarray | torch.Tensor | PIL.Image.Image, index: int) -> np.ndarray:
        array = self._as_array(image)
        is_picture = array.ndim == 3 and array.shape[-1] in (3, 4) and array.shape[0] != self.num_channels
        if is_picture and self.num_channels == 1:
            array = self._picture_to_grey(array)
        check_finite(array, f"image {index}")
        if array.ndim == 2 and self.num_channels == 1:
            return array[None]
        if array.ndim == 3 and array.shape[0] == self.num_channels:
            return array
        raise ValueError(
            f"image {index} has shape {array.shape}; expected (height, width), ({self.num_channels}, height, width) "
            f"or a picture (height, width, 3 | 4) for num_channels={self.num_channels}"
        )

    def preprocess(
        self,
        images: np.ndarray | torch.Tensor | PIL.Image.Image | Sequence[np.ndarray | torch.Tensor | PIL.Image.Image],
        stats: AmplitudeStats | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Normalise one section or a list of equally sized sections.

        Args:
            images: a 2-D section, a (channels, height, width) array, a picture (PIL image or (height, width, 3 | 4)
                array, reduced to grey by `rgb_to_grey`), or a list of them. A 3-D array whose first axis is not
                `num_channels` is not taken for a batch: pass a list.
            stats: statistics shared by all images (e.g. of the whole survey); default: each image's own.
            return_tensors: `"pt"` for torch tensors, `"np"` or None for numpy.
        """
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        arrays = [self.normalize(self._as_channels_first(image, i), stats) for i, image in enumerate(batch)]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"images in one call must share a shape; got {sorted(shapes)}: process them one by one")
        return BatchFeature(data={"pixel_values": np.stack(arrays)}, tensor_type=return_tensors)

    def post_process_semantic_segmentation(
        self, outputs, target_sizes: Sequence[tuple[int, int]] | None = None
    ) -> list[torch.Tensor]:
        """Class-id maps from model outputs, resized (bilinear on the logits) to ``target_sizes`` when given.

        Args:
            outputs: a `SemanticSegmenterOutput` (or anything with `.logits` of shape (batch, classes, h, w)).
            target_sizes: one (height, width) per image, e.g. the sections' original sizes.
        """
        logits = outputs.logits
        if target_sizes is not None and len(target_sizes) != len(logits):
            raise ValueError(f"target_sizes has {len(target_sizes)} entries for a batch of {len(logits)} logits")
        maps = []
        for index, image_logits in enumerate(logits):
            if target_sizes is not None and tuple(target_sizes[index]) != tuple(image_logits.shape[-2:]):
                image_logits = F.interpolate(
                    image_logits[None], size=tuple(target_sizes[index]), mode="bilinear", align_corners=False
                )[0]
            maps.append(image_logits.argmax(dim=0))
        return maps


__all__ = ["GeoFMImageProcessor", "AmplitudeStats", "NORMALIZATIONS"]
