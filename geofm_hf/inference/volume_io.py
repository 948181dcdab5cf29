"""Reading and writing whole surveys one section at a time, with bounded memory.

A volume is always seen as ``(inline, crossline, time)``: the layout of segyio's cubes and of C-ordered ``.npy`` /
``.dat`` volumes whose traces are contiguous. Readers hand out one section (a 2-D slice with one axis held fixed);
writers take values with numpy indexing (``out[key] = values``), so a plain numpy array is a writer too.

Memory maps are opened here rather than with ``np.memmap`` because pages an ``np.memmap`` has touched stay resident
(and count in the process's RSS) until it is closed: streaming a volume through one grows to the volume's size.
:class:`MappedArray` hands its pages back to the OS after every section, so memory stays at a few sections.
Writers fill a temporary file next to the destination and rename it into place only when complete.
"""

from __future__ import annotations

import io
import logging
import math
import mmap
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segyio
from PIL import Image

logger = logging.getLogger(__name__)

# Span of a mapping a read or write may cover before its pages are released. A strided section (a time slice of a
# C-ordered volume has a sample on every page) is moved in pieces of at most this span: a page fault maps whole
# page-cache folios (often larger than a page), so only the span bounds what becomes resident.
RELEASE_BYTES = 8 * 2**20
# Values read for global amplitude statistics: the processor subsamples to this many anyway.
STATS_MAX_VALUES = 2_000_000
STATS_MAX_SECTIONS = 32
# Duplicate/missing traces listed in messages; the rest are counted.
_LISTED_TRACES = 8


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


def refuse_non_finite(values: np.ndarray, source: str, where: Callable[[tuple[int, ...]], str]) -> None:
    """Raise ``ValueError`` if ``values`` hold NaN/Inf, naming ``where`` (given the array index) the first one is."""
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{source}: {int(bad.sum())} NaN/Inf samples; the first ({values[first]}) is at {where(first)}. "
            "Fill or mask them before prediction"
        )


def section_key(axis: int, index: int, leading: int = 0) -> tuple:
    """Numpy index of section ``index`` along volume ``axis`` of an array with ``leading`` extra leading axes."""
    return (slice(None),) * (leading + axis) + (index,)


def _parse_section_key(key) -> tuple[int, int]:
    """``(axis, index)`` of a key made by :func:`section_key` with no leading axes."""
    key = key if isinstance(key, tuple) else (key,)
    *fixed, index = key
    if not all(part == slice(None) for part in fixed) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"expected a whole-section index like out[i], out[:, i] or out[:, :, i]; got {key!r}")
    return len(fixed), int(index)


class MappedArray:
    """A numpy array on a file mapping whose pages are handed back to the OS after every read or write.

    ``mapped[key]`` returns a copy and ``mapped[key] = values`` writes through; a strided selection is moved in
    pieces spanning at most ``RELEASE_BYTES`` of the file, so a time slice does not map the whole volume at once.

    Args:
        path: file to map.
        shape, dtype: of the array.
        offset: bytes before the array data (e.g. a ``.npy`` header).
        fortran_order: whether the first axis varies fastest.
        writable: map read-write (the file must exist at its full size).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape: tuple[int, ...],
        dtype: np.dtype | str,
        offset: int = 0,
        fortran_order: bool = False,
        writable: bool = False,
    ):
        self.path = os.fspath(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        needed = offset + math.prod(self.shape) * self.dtype.itemsize
        self._file = open(self.path, "r+b" if writable else "rb")
        size = os.fstat(self._file.fileno()).st_size
        if size != needed:
            self._file.close()
            raise ValueError(
                f"{self.path}: file holds {size} bytes, but shape {self.shape} of {self.dtype} after a {offset}-byte "
                f"header needs {needed} bytes: check the shape, dtype and header"
            )
        self._writable = writable
        self._map = mmap.mmap(self._file.fileno(), needed, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        order = "F" if fortran_order else "C"
        self.array = np.ndarray(self.shape, self.dtype, buffer=self._map, offset=offset, order=order)

    @classmethod
    def create(
        cls, path: str | os.PathLike, shape: tuple[int, ...], dtype: np.dtype | str, header: bytes = b""
    ) -> "MappedArray":
        """Create (or truncate) ``path`` as ``header`` followed by a zero-filled array, and map it writable."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        with open(path, "wb") as handle:
            handle.write(header)
            handle.truncate(len(header) + nbytes)
        return cls(path, shape, dtype, offset=len(header), writable=True)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        view = self._view(key)
        values = np.empty(view.shape, view.dtype)
        for piece in _pieces(view):
            values[piece] = view[piece]
            self.release()
        return values

    def __setitem__(self, key, values) -> None:
        view = self._view(key)
        values = np.broadcast_to(np.asarray(values, dtype=view.dtype), view.shape)
        for piece in _pieces(view):
            view[piece] = values[piece]
            self.release()

    def _view(self, key) -> np.ndarray:
        """``self.array[key]`` as an array view (a trailing ``...`` keeps even a single element a view)."""
        key = key if isinstance(key, tuple) else (key,)
        return self.array[key if Ellipsis in key else (*key, Ellipsis)]

    def release(self) -> None:
        """Drop this process's pages of the mapping; the data stay in the file (and the OS page cache)."""
        if hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        """Flush writes and unmap."""
        if self._map.closed:
            return
        self.array = None
        if self._writable:
            self._map.flush()
        self._map.close()
        self._file.close()


def _span(view: np.ndarray) -> int:
    """Bytes from the first to the last element of a strided view."""
    return view.itemsize + sum((n - 1) * abs(stride) for n, stride in zip(view.shape, view.strides) if n > 0)


def _pieces(view: np.ndarray, prefix: tuple = ()) -> Iterator[tuple]:
    """Indices of consecutive pieces of ``view``, each spanning at most ``RELEASE_BYTES`` of the file where possible."""
    if view.ndim == 0 or _span(view) <= RELEASE_BYTES:
        yield (*prefix, Ellipsis)
        return
    inner = _span(view[0])
    if inner > RELEASE_BYTES:
        for index in range(view.shape[0]):
            yield from _pieces(view[index], (*prefix, index))
        return
    per_piece = 1 + (RELEASE_BYTES - inner) // max(abs(view.strides[0]), 1)
    for start in range(0, view.shape[0], per_piece):
        yield (*prefix, slice(start, start + per_piece))


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def map_npy(path: str | os.PathLike) -> MappedArray:
    """Map a ``.npy`` file (header parsed by ``np.load(mmap_mode="r")``; never unpickled)."""
    header_view = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(header_view, np.memmap):
        raise ValueError(f"{path}: expected a .npy array file")
    fortran_order = header_view.flags.f_contiguous and not header_view.flags.c_contiguous
    layout = (header_view.shape, header_view.dtype, header_view.offset, fortran_order)
    del header_view
    shape, dtype, offset, fortran_order = layout
    return MappedArray(path, shape, dtype, offset=offset, fortran_order=fortran_order)


def map_raw(path: str | os.PathLike, shape: tuple[int, ...], dtype: str = "float32", byte_order: str = "little"):
    """Map a headerless raw file (e.g. the study's float32 ``.dat``) of C-ordered ``shape``."""
    if byte_order not in ("little", "big"):
        raise ValueError(f"{path}: byte_order={byte_order!r}; expected 'little' or 'big'")
    return MappedArray(path, shape, np.dtype(dtype).newbyteorder("<" if byte_order == "little" else ">"))


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
        refuse_non_finite(
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


class ArrayReader(VolumeReader):
    """Reader over an in-memory array or a :class:`MappedArray`.

    Args:
        array: ``(..., inline, crossline, time)`` values.
        name: how messages call the source.
    """

    def __init__(self, array: np.ndarray | MappedArray, name: str = "input volume"):
        if array.ndim < 3:
            raise ValueError(f"{name}: expected a volume (inline, crossline, time); got shape {tuple(array.shape)}")
        self.array = array
        self.name = name
        self.shape = tuple(array.shape)

    def read_section(self, axis: int, index: int) -> np.ndarray:
        return np.asarray(self.array[section_key(axis, index, leading=len(self.shape) - 3)])

    def describe(self, position: tuple[int, int, int]) -> str:
        inline, crossline, sample = position
        return f"index [{inline}, {crossline}, {sample}] (inline, crossline, time)"

    def close(self) -> None:
        if isinstance(self.array, MappedArray):
            self.array.close()


@dataclass(frozen=True)
class SurveyGeometry:
    """Where each trace of a SEG-Y file sits in the (inline, crossline) grid.

    Attributes:
        inlines, crosslines: sorted distinct line numbers (grid coordinates).
        inline_positions, crossline_positions: per trace, its row/column in the grid.
        trace_index: (inlines, crosslines) grid of trace numbers, -1 where the survey has no trace.
    """

    inlines: np.ndarray
    crosslines: np.ndarray
    inline_positions: np.ndarray
    crossline_positions: np.ndarray
    trace_index: np.ndarray

    @classmethod
    def from_headers(cls, name: str, inline_numbers: np.ndarray, crossline_numbers: np.ndarray) -> "SurveyGeometry":
        """Geometry from per-trace inline/crossline numbers in any order.

        Traces may come unsorted and the grid may have holes (reported, later filled with zeros); a repeated
        (inline, crossline) pair is refused. If every trace carries the same pair (a 2-D line without 3-D numbering),
        the traces form one inline in file order.
        """
        pairs = np.stack([inline_numbers, crossline_numbers], axis=1)
        if len(pairs) > 1 and (pairs == pairs[0]).all():
            count = len(pairs)
            return cls(pairs[:1, 0], np.arange(count), np.zeros(count, int), np.arange(count), np.arange(count)[None])
        _refuse_duplicates(name, pairs)
        inlines, inline_positions = np.unique(inline_numbers, return_inverse=True)
        crosslines, crossline_positions = np.unique(crossline_numbers, return_inverse=True)
        trace_index = np.full((len(inlines), len(crosslines)), -1, dtype=np.int64)
        trace_index[inline_positions, crossline_positions] = np.arange(len(pairs))
        geometry = cls(inlines, crosslines, inline_positions, crossline_positions, trace_index)
        geometry._report_missing(name)
        return geometry

    def _report_missing(self, name: str) -> None:
        missing = np.argwhere(self.trace_index < 0)
        if len(missing):
            listed = ", ".join(f"({self.inlines[i]}, {self.crosslines[j]})" for i, j in missing[:_LISTED_TRACES])
            logger.warning(
                "%s: %d of %d (inline, crossline) grid positions have no trace, e.g. %s; they are read as zeros and "
                "not written to SEG-Y output",
                name,
                len(missing),
                self.trace_index.size,
                listed,
            )


def _refuse_duplicates(name: str, pairs: np.ndarray) -> None:
    _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    repeats = np.flatnonzero(first[inverse] != np.arange(len(pairs)))
    if len(repeats):
        listed = "; ".join(
            f"trace {t} (inline {pairs[t, 0]}, crossline {pairs[t, 1]}) repeats trace {first[inverse[t]]}"
            for t in repeats[:_LISTED_TRACES]
        )
        raise ValueError(
            f"{name}: {len(repeats)} traces repeat an (inline, crossline) pair of an earlier trace: {listed}. "
            "Check the inline/crossline header bytes (iline=, xline=) or remove the duplicates"
        )


def _as_trace_slice(indices: np.ndarray) -> slice | None:
    """``indices`` as one slice (evenly spaced, increasing, all present), so segyio moves them in one call."""
    if len(indices) == 0 or indices.min() < 0:
        return None
    steps = np.diff(indices)
    step = int(steps[0]) if len(steps) else 1
    if step < 1 or (steps != step).any():
        return None
    return slice(int(indices[0]), int(indices[-1]) + 1, step)


class SegyReader(VolumeReader):
    """Sections of a SEG-Y file, geometry taken from the trace headers (any trace order, holes filled with zeros).

    Args:
        path: the SEG-Y file.
        iline, xline: trace header byte positions of the inline and crossline numbers (SEG-Y rev1: 189, 193).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        iline: int = segyio.TraceField.INLINE_3D,
        xline: int = segyio.TraceField.CROSSLINE_3D,
    ):
        self.name = os.fspath(path)
        self.file = segyio.open(self.name, "r", ignore_geometry=True)
        try:
            inline_numbers = self.file.attributes(iline)[:]
            crossline_numbers = self.file.attributes(xline)[:]
            self.geometry = SurveyGeometry.from_headers(self.name, inline_numbers, crossline_numbers)
        except Exception:
            self.file.close()
            raise
        self.samples = np.asarray(self.file.samples)
        self.shape = (len(self.geometry.inlines), len(self.geometry.crosslines), len(self.samples))

    def _trace_row(self, axis: int, index: int) -> np.ndarray:
        return self.geometry.trace_index[index] if axis == 0 else self.geometry.trace_index[:, index]

    def read_section(self, axis: int, index: int) -> np.ndarray:
        if axis == 2:
            section = np.zeros(self.shape[:2], dtype=np.float32)
            values = self.file.depth_slice[index]
            section[self.geometry.inline_positions, self.geometry.crossline_positions] = values
            return section
        traces = self._trace_row(axis, index)
        as_slice = _as_trace_slice(traces)
        if as_slice is not None:
            return np.asarray(self.file.trace.raw[as_slice], dtype=np.float32)
        section = np.zeros((len(traces), self.shape[2]), dtype=np.float32)
        for row, trace in enumerate(traces):
            if trace >= 0:
                section[row] = self.file.trace[int(trace)]
        return section

    def describe(self, position: tuple[int, int, int]) -> str:
        inline, crossline, sample = position
        trace = self.geometry.trace_index[inline, crossline]
        where = f"trace {trace}" if trace >= 0 else "a missing trace"
        return (
            f"{where} (inline {self.geometry.inlines[inline]}, crossline {self.geometry.crosslines[crossline]}), "
            f"sample {sample} (t = {self.samples[sample]:g})"
        )

    def axis_values(self, axis: int) -> np.ndarray:
        return (self.geometry.inlines, self.geometry.crosslines, self.samples)[axis]

    def close(self) -> None:
        self.file.close()


class AtomicOutput(ABC):
    """An output written to a temporary file in the destination's folder and renamed into place on :meth:`commit`.

    Use as a context manager: leaving the block normally commits, an exception deletes the temporary file, so a
    failed or interrupted run never leaves a half-written output under the final name.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False):
        self.path = os.fspath(path)
        refuse_existing(self.path, overwrite)
        self.temp_path = make_temp_path(self.path)
        try:
            self._open()
        except BaseException:
            os.unlink(self.temp_path)
            raise

    @abstractmethod
    def _open(self) -> None:
        """Open ``self.temp_path`` for writing."""

    @abstractmethod
    def _close(self) -> None:
        """Finish and close the temporary file."""

    def commit(self) -> None:
        self._close()
        os.replace(self.temp_path, self.path)

    def abort(self) -> None:
        self._close()
        if os.path.exists(self.temp_path):
            os.unlink(self.temp_path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def make_temp_path(path: str | os.PathLike) -> str:
    """Create an empty hidden file next to ``path`` (same file system, so a rename moves it into place atomically).

    Unlike ``tempfile.mkstemp`` (mode 0600) the file gets the permissions the umask gives any new file, which the
    final output keeps.
    """
    folder, name = os.path.split(os.path.abspath(path))
    temp_path = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.partial")
    os.close(os.open(temp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    return temp_path


def refuse_existing(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise ``FileExistsError`` when ``path`` exists and ``overwrite`` is not set."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{os.fspath(path)} already exists; pass overwrite=True (--overwrite) to replace it")


class MappedFileWriter(AtomicOutput):
    """``.npy`` or raw ``.dat`` output filled through a :class:`MappedArray` (``out[key] = values``).

    Args:
        path: destination.
        shape, dtype: of the stored array.
        header: bytes before the data (a ``.npy`` header, or nothing for raw files).
        overwrite: replace an existing file.
    """

    def __init__(self, path, shape: tuple[int, ...], dtype, header: bytes = b"", overwrite: bool = False):
        self.shape, self.dtype, self._header = tuple(shape), np.dtype(dtype), header
        super().__init__(path, overwrite)

    def _open(self) -> None:
        self.mapped = MappedArray.create(self.temp_path, self.shape, self.dtype, self._header)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __setitem__(self, key, values) -> None:
        self.mapped[key] = values

    def _close(self) -> None:
        self.mapped.close()


class SegyWriter(AtomicOutput):
    """SEG-Y output with the geometry and every header of an input SEG-Y, samples as IEEE float32 (format 5).

    The text headers, the binary header (with its format code set to 5) and every trace header (inline/crossline
    numbers, coordinates, sample interval, ...) are copied from ``template``; sections are written with
    ``out[key] = values`` as with a numpy array of shape ``template.shape``.
    """

    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, path, template: SegyReader, overwrite: bool = False):
        self.template, self.geometry, self.shape = template, template.geometry, template.shape
        super().__init__(path, overwrite)

    def _open(self) -> None:
        source = self.template.file
        spec = segyio.spec()
        spec.format = 5
        spec.samples = source.samples
        spec.tracecount = source.tracecount
        spec.endian = source.endian
        spec.ext_headers = source.ext_headers
        self.file = segyio.create(self.temp_path, spec)
        for index in range(1 + source.ext_headers):
            self.file.text[index] = source.text[index]
        self.file.bin = source.bin
        self.file.bin.update({segyio.BinField.Format: 5})
        self.file.header = source.header

    def __setitem__(self, key, values) -> None:
        axis, index = _parse_section_key(key)
        values = np.asarray(values, dtype=np.float32)
        geometry = self.geometry
        if axis == 2:
            self.file.depth_slice[index] = np.ascontiguousarray(
                values[geometry.inline_positions, geometry.crossline_positions]
            )
            return
        traces = geometry.trace_index[index] if axis == 0 else geometry.trace_index[:, index]
        as_slice = _as_trace_slice(traces)
        if as_slice is not None:
            self.file.trace.raw[as_slice] = np.ascontiguousarray(values)
            return
        for row, trace in enumerate(traces):
            if trace >= 0:
                self.file.trace[int(trace)] = np.ascontiguousarray(values[row])

    def _close(self) -> None:
        self.file.close()


def _open_segy(path: str, **options) -> SegyReader:
    return SegyReader(path, **{key: options[key] for key in ("iline", "xline") if key in options})


def _reader_or_section(mapped: MappedArray, path: str) -> VolumeReader | np.ndarray:
    if mapped.ndim == 2:
        section = mapped[...]
        mapped.close()
        return section
    return ArrayReader(mapped, name=path)


def _open_npy(path: str, **options) -> VolumeReader | np.ndarray:
    return _reader_or_section(map_npy(path), path)


def _open_raw(
    path: str, shape: tuple[int, ...] | None = None, dtype: str = "float32", byte_order: str = "little", **options
) -> VolumeReader | np.ndarray:
    if shape is None:
        raise ValueError(f"{path}: a raw .dat file has no header: give its shape (shape=, --shape n1,n2[,n3])")
    return _reader_or_section(map_raw(path, shape, dtype, byte_order), path)


def _open_image(path: str, **options) -> np.ndarray:
    with Image.open(path) as image:
        # Colour pictures become grey: the models take single-channel amplitudes.
        grey = image if image.mode in ("L", "I", "I;16", "F") else image.convert("L")
        return np.asarray(grey, dtype=np.float32)


INPUT_FORMATS: dict[str, Callable[..., VolumeReader | np.ndarray]] = {
    ".sgy": _open_segy,
    ".segy": _open_segy,
    ".npy": _open_npy,
    ".dat": _open_raw,
    ".png": _open_image,
    ".tif": _open_image,
    ".tiff": _open_image,
    ".jpg": _open_image,
    ".jpeg": _open_image,
}


def open_input(path: str | os.PathLike, **options) -> VolumeReader | np.ndarray:
    """Open a survey: a 2-D section comes back as a float32 array, a volume as a :class:`VolumeReader`.

    Args:
        path: ``.sgy``/``.segy``, ``.npy``, raw ``.dat`` or a picture (``.png``, ``.tif``, ``.jpg``).
        **options: ``shape``, ``dtype`` and ``byte_order`` for raw ``.dat``; ``iline`` and ``xline`` header
            bytes for SEG-Y.
    """
    path = os.fspath(path)
    opener = INPUT_FORMATS.get(Path(path).suffix.lower())
    if opener is None:
        raise ValueError(f"{path}: unknown input type; expected one of {sorted(INPUT_FORMATS)}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    return opener(path, **options)


def _create_npy(path, shape, dtype, template, overwrite) -> MappedFileWriter:
    return MappedFileWriter(path, shape, dtype, _npy_header(shape, dtype), overwrite)


def _create_raw(path, shape, dtype, template, overwrite) -> MappedFileWriter:
    return MappedFileWriter(path, shape, np.dtype("<f4"), b"", overwrite)


def _create_segy(path, shape, dtype, template, overwrite) -> SegyWriter:
    if not isinstance(template, SegyReader):
        raise ValueError(f"{path}: SEG-Y output copies the geometry of a SEG-Y input; the input is not SEG-Y")
    if tuple(shape) != template.shape:
        raise ValueError(
            f"{path}: SEG-Y output holds one value per input sample, shape {template.shape}; got {tuple(shape)} "
            "(choose labels or the probabilities of one class)"
        )
    return SegyWriter(path, template, overwrite)


OUTPUT_FORMATS: dict[str, Callable[..., AtomicOutput]] = {
    ".npy": _create_npy,
    ".dat": _create_raw,
    ".sgy": _create_segy,
    ".segy": _create_segy,
}


def create_output(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    template: VolumeReader | None = None,
    overwrite: bool = False,
) -> AtomicOutput:
    """A writer for ``path`` chosen by its suffix; use it as a context manager.

    Args:
        path: ``.npy`` (keeps ``dtype``), ``.dat`` (raw little-endian float32) or ``.sgy``/``.segy`` (float32, needs
            a SEG-Y ``template`` whose headers and geometry it copies).
        shape: of the values to store.
        dtype: of the values to store, where the format can keep it.
        template: the input reader.
        overwrite: replace an existing file (otherwise ``FileExistsError``).
    """
    path = os.fspath(path)
    factory = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if factory is None:
        raise ValueError(f"{path}: unknown output type; expected one of {sorted(OUTPUT_FORMATS)}")
    return factory(path, tuple(shape), np.dtype(dtype), template, overwrite)


__all__ = [
    "SECTION_AXES",
    "SectionAxis",
    "get_axis_name",
    "get_section_axes",
    "section_key",
    "MappedArray",
    "map_npy",
    "map_raw",
    "VolumeReader",
    "ArrayReader",
    "SegyReader",
    "SurveyGeometry",
    "AtomicOutput",
    "MappedFileWriter",
    "SegyWriter",
    "open_input",
    "create_output",
    "refuse_existing",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
]
