"""What the demo reads and writes: an uploaded section (a picture, a ``.npy``, or one section of a SEG-Y or ``.npy``
volume), its optional label, and the SEG-Y of a predicted section.

Everything is read through :mod:`geofm_hf.io`, so a file reads in the page as it does in ``geofm predict``; the checks
here add what a web page needs: a size limit, and messages that say what to upload instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segyio
from PIL import Image

from ..io import SECTION_AXES, SectionAxis, SegyReader, VolumeReader, check_finite, get_axis_name, open_input
from ..io.arrays import map_npy

# A section larger than this is refused: its tiles take minutes on a CPU, and its probabilities would fill the
# server's memory. `geofm predict` streams surveys of any size.
MAX_SECTION_SAMPLES = 2048 * 2048
# The smallest section side: smaller ones are less than one ViT patch with room to pad.
MIN_SECTION_SIDE = 16
SECTION_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy", ".sgy", ".segy")
LABEL_SUFFIXES = (".png", ".npy")
PICTURE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
SEGY_SUFFIXES = (".sgy", ".segy")
# Picture modes whose stored values are the class ids (a colour picture's are not).
LABEL_PICTURE_MODES = ("1", "L", "P", "I", "I;16")
# The two values of a black-and-white mask picture (e.g. TGS salt masks): read as classes 0 and 1 by a 2-class model.
MASK_PICTURE_VALUES = (0, 255)


@dataclass(frozen=True)
class UploadSummary:
    """What an upload holds, for the page's section selector.

    Attributes:
        name: the file's name.
        shape: (rows, columns) of a section, or (inline, crossline, time) of a volume.
        is_volume: whether a section must be chosen (direction and index).
        is_segy: whether the file is SEG-Y (its prediction can be written back as SEG-Y).
        description: one line for the page.
    """

    name: str
    shape: tuple[int, ...]
    is_volume: bool
    is_segy: bool
    description: str

    def section_count(self, axis: str) -> int:
        """Sections of a volume along ``axis`` (1 for a section)."""
        return self.shape[_axis(axis).index] if self.is_volume else 1


@dataclass(frozen=True)
class SectionInput:
    """One section ready to predict.

    Attributes:
        values: (rows, columns) float32 amplitudes, time/depth down the rows for vertical sections.
        title: the file, and for a volume the section's direction and number.
        source: the uploaded file.
        axis, index, number: the section's direction, index and line number (or time) in a volume (None for a
            section file).
        stats_sample: sections of the whole volume, so that amplitudes are normalised as ``geofm predict`` does for
            the survey (None: the section's own statistics).
        axis_labels: (x, y) names of the section's axes.
    """

    values: np.ndarray
    title: str
    source: Path
    axis: SectionAxis | None = None
    index: int | None = None
    number: float | None = None
    stats_sample: np.ndarray | None = None
    axis_labels: tuple[str, str] = ("trace", "sample")

    @property
    def is_segy(self) -> bool:
        return self.axis is not None and self.source.suffix.lower() in SEGY_SUFFIXES


def _axis(name: str) -> SectionAxis:
    if name not in SECTION_AXES:
        raise ValueError(f"section direction {name!r}: expected one of {', '.join(SECTION_AXES)}")
    return SECTION_AXES[name]


def _check_suffix(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in suffixes:
        found = path.suffix or "no suffix"
        raise ValueError(f"{path.name}: a {what} must be one of {', '.join(suffixes)}; got {found}")


def _peek_shape(path: Path) -> tuple[int, ...] | None:
    """The array shape of a picture or ``.npy`` without reading its values (None for SEG-Y, whose reader is lazy)."""
    suffix = path.suffix.lower()
    if suffix in PICTURE_SUFFIXES:
        with Image.open(path) as image:
            return image.height, image.width
    if suffix == ".npy":
        mapped = map_npy(path)
        mapped.close()
        return mapped.shape
    return None


def check_section_shape(shape: tuple[int, int], name: str) -> None:
    """Refuse a section the demo cannot predict: too small for the model or too large for the page.

    Raises:
        ValueError: naming the file, its size and the limit.
    """
    rows, cols = shape
    if min(shape) < MIN_SECTION_SIDE:
        raise ValueError(f"{name}: the section is {rows} x {cols} samples; each side needs at least {MIN_SECTION_SIDE}")
    if rows * cols > MAX_SECTION_SAMPLES:
        raise ValueError(
            f"{name}: the section is {rows} x {cols} = {rows * cols:,} samples, more than the demo's "
            f"{MAX_SECTION_SAMPLES:,}; crop it, or predict it with `geofm predict`, which streams any size"
        )


def _open(path: Path) -> np.ndarray | VolumeReader:
    """Open an upload as a 2-D section or a 3-D volume reader, checking its dimensions before reading any values."""
    _check_suffix(path, SECTION_SUFFIXES, "section")
    shape = _peek_shape(path)
    if shape is not None and len(shape) not in (2, 3):
        raise ValueError(f"{path.name}: expected a 2-D section or a 3-D (inline, crossline, time) volume; got {shape}")
    if shape is not None and len(shape) == 2:
        check_section_shape(shape, path.name)
    return open_input(path)


def _segy_extent(reader: SegyReader) -> str:
    inlines, crosslines, samples = (reader.axis_values(axis) for axis in range(3))
    return (
        f"{len(inlines)} inlines ({inlines[0]}-{inlines[-1]}) x {len(crosslines)} crosslines "
        f"({crosslines[0]}-{crosslines[-1]}) x {len(samples)} samples ({samples[0]:g}-{samples[-1]:g} ms)"
    )


def describe_upload(path: str | os.PathLike) -> UploadSummary:
    """Open an upload far enough to know what it holds; reads no amplitudes of a volume.

    Raises:
        ValueError: an unknown suffix, a file that cannot be read, or a section of the wrong size.
    """
    path = Path(path)
    data = _open(path)
    if not isinstance(data, VolumeReader):
        rows, cols = data.shape
        description = f"{path.name}: a section of {rows} x {cols} samples"
        return UploadSummary(path.name, (rows, cols), False, False, description)
    with data:
        shape = tuple(int(n) for n in data.shape)
        if len(shape) != 3:
            raise ValueError(f"{path.name}: expected a 3-D (inline, crossline, time) volume; got shape {shape}")
        is_segy = isinstance(data, SegyReader)
        extent = _segy_extent(data) if is_segy else " x ".join(str(n) for n in shape) + " (inline, crossline, time)"
        kind = "SEG-Y survey" if is_segy else "volume"
        return UploadSummary(path.name, shape, True, is_segy, f"{path.name}: {kind} of {extent}; choose a section")


def read_section(path: str | os.PathLike, axis: str = "inline", index: int = 0) -> SectionInput:
    """The section to predict: the whole file for a section, or section ``index`` along ``axis`` of a volume.

    Raises:
        ValueError: the file cannot be read, the section is outside the volume, of the wrong size, or holds NaN/Inf.
    """
    path = Path(path)
    data = _open(path)
    if not isinstance(data, VolumeReader):
        values = np.asarray(data, dtype=np.float32)
        check_finite(values, path.name, lambda first: f"row {first[0]}, column {first[1]}", hint="Fill or crop them")
        return SectionInput(values, path.name, path)
    with data:
        return _volume_section(data, path, _axis(axis), int(index))


def _volume_section(reader: VolumeReader, path: Path, axis: SectionAxis, index: int) -> SectionInput:
    if len(reader.shape) != 3:
        raise ValueError(f"{path.name}: expected a 3-D (inline, crossline, time) volume; got shape {reader.shape}")
    count = reader.shape[axis.index]
    if not 0 <= index < count:
        raise ValueError(f"{path.name}: {axis.name} index {index} is outside 0..{count - 1}")
    check_section_shape(axis.picture_shape(reader.shape), f"{path.name}, {axis.name} {index}")
    values = axis.orient(reader.read_finite_section(axis.index, index))
    number = float(reader.axis_values(axis.index)[index])
    # Vertical sections have time down the rows; a time slice has inlines down the rows.
    rows_axis, cols_axis = [i for i in range(3) if i != axis.index][:: -1 if axis.time_down else 1]
    title = f"{path.name}: {axis.name} {number:g} (index {index})"
    axis_labels = (get_axis_name(cols_axis), get_axis_name(rows_axis))
    return SectionInput(
        np.ascontiguousarray(values), title, path, axis, index, number, reader.stats_sample(), axis_labels
    )


def read_label(path: str | os.PathLike, shape: tuple[int, int], class_names: list[str]) -> np.ndarray:
    """Class ids of an uploaded label (PNG or ``.npy``) for a section of ``shape`` and a model of ``class_names``.

    A black-and-white mask picture (values 0 and 255 only) given to a two-class model is read as classes 0 and 1.

    Raises:
        ValueError: an unreadable file, a shape other than the section's, or values that are not the model's class ids.
    """
    path = Path(path)
    _check_suffix(path, LABEL_SUFFIXES, "label")
    found = _peek_shape(path)
    if tuple(found) != tuple(shape):
        sizes = " x ".join(map(str, found)), f"{shape[0]} x {shape[1]}"
        raise ValueError(f"{path.name}: the label is {sizes[0]}; the section is {sizes[1]}")
    if path.suffix.lower() == ".npy":
        values = np.load(path, allow_pickle=False)
    else:
        with Image.open(path) as image:
            if image.mode not in LABEL_PICTURE_MODES:
                raise ValueError(
                    f"{path.name}: a {image.mode} picture; a label picture holds class ids as grey values or palette "
                    f"indices (modes {', '.join(LABEL_PICTURE_MODES)})"
                )
            values = np.asarray(image)
    present = np.unique(values)
    if len(class_names) == 2 and set(present.tolist()) <= set(MASK_PICTURE_VALUES):
        return (values > 0).astype(np.uint8)
    classes = f"the model's classes are 0..{len(class_names) - 1} ({', '.join(class_names)})"
    if not np.array_equal(present, np.round(present)):
        example = present[present != np.round(present)][0]
        raise ValueError(f"{path.name}: holds values that are not whole class ids (e.g. {example}); {classes}")
    outside = [int(value) for value in present if not 0 <= value < len(class_names)]
    if outside:
        raise ValueError(f"{path.name}: holds class ids {outside[:10]}; {classes}")
    return values.astype(np.uint8)


def write_section_segy(path: str | os.PathLike, section: SectionInput, values: np.ndarray) -> Path:
    """Write ``values`` of a section taken from a SEG-Y survey as a SEG-Y file with the section's trace headers.

    An inline or crossline keeps the survey's samples and the headers of its traces (missing traces are left out); a
    time slice becomes one sample per trace of the survey, at the slice's time.

    Args:
        path: the SEG-Y file to write (IEEE float32, format 5, the survey's byte order and text headers).
        section: a section read from a SEG-Y survey by :func:`read_section`.
        values: (rows, columns) values of the section, as the model saw it.
    """
    if not section.is_segy:
        raise ValueError(f"{section.title}: SEG-Y output needs a section of a SEG-Y survey")
    with SegyReader(section.source) as reader:
        source, geometry = reader.file, reader.geometry
        in_volume_order = section.axis.orient(np.asarray(values, dtype=np.float32))
        if section.axis.index == 2:
            traces = np.arange(source.tracecount)
            data = in_volume_order[geometry.inline_positions, geometry.crossline_positions][:, None]
            samples = reader.samples[section.index : section.index + 1]
        else:
            along = geometry.traces_of(section.axis.index, section.index)
            traces, data, samples = along[along >= 0], in_volume_order[along >= 0], reader.samples
        spec = segyio.spec()
        spec.format, spec.samples, spec.tracecount = 5, samples, len(traces)
        spec.endian, spec.ext_headers = source.endian, source.ext_headers
        with segyio.create(os.fspath(path), spec) as out:
            for text_index in range(1 + source.ext_headers):
                out.text[text_index] = source.text[text_index]
            out.bin = source.bin
            out.bin.update({segyio.BinField.Format: 5, segyio.BinField.Samples: len(samples)})
            for row, trace in enumerate(traces):
                header = dict(source.header[int(trace)])
                header[segyio.TraceField.TRACE_SAMPLE_COUNT] = len(samples)
                if section.axis.index == 2:
                    header[segyio.TraceField.DelayRecordingTime] = int(round(samples[0]))
                out.header[row] = header
                out.trace[row] = np.ascontiguousarray(data[row], dtype=np.float32)
    return Path(path)


__all__ = [
    "LABEL_SUFFIXES",
    "MAX_SECTION_SAMPLES",
    "MIN_SECTION_SIDE",
    "SECTION_SUFFIXES",
    "SectionInput",
    "UploadSummary",
    "check_section_shape",
    "describe_upload",
    "read_label",
    "read_section",
    "write_section_segy",
]
