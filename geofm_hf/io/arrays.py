"""``.npy`` and headerless ``.dat`` arrays, mapped from disk and moved one section at a time with bounded memory.

Raw ``.dat`` files follow one convention everywhere (``geofm dataset --source dat``, ``geofm predict``): their shape
is given as ``N1,N2[,N3]``, N1 the samples of a trace (time or depth), N2 the traces of a section, N3 the sections
of a volume, and ``order`` says which axis varies fastest in the file: ``F`` (the default) N1, i.e. contiguous
traces, as Madagascar, the Mines Java Toolkit and Wu et al.'s fault data store them
(``np.fromfile(f, ">f4").reshape(n2, n1).T``); ``C`` the last axis. A 2-D file is one ``(N1, N2)`` section (time
down the rows); a 3-D file is the ``(inline, crossline, time) = (N3, N2, N1)`` volume.

Files are mapped here rather than with ``np.memmap`` because pages an ``np.memmap`` has touched stay resident (and
count in the process's RSS) until it is closed: streaming a volume through one grows to the volume's size.
:class:`MappedArray` hands its pages back to the OS after every section, so memory stays at a few sections.
"""

from __future__ import annotations

import io
import math
import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .atomic import AtomicOutput
from .options import BYTE_ORDERS, as_choice, as_dtype, as_ints, as_order
from .volumes import VolumeReader, section_key

# Span of a mapping a read or write may cover before its pages are released. A strided section (a time slice of a
# C-ordered volume has a sample on every page) is moved in pieces of at most this span: a page fault maps whole
# page-cache folios (often larger than a page), so only the span bounds what becomes resident.
RELEASE_BYTES = 8 * 2**20


def file_axes(ndim: int, order: str) -> tuple[int, ...]:
    """The axes of an ``ndim`` array from slowest to fastest in a file of ``order`` ``C`` or ``F``."""
    return tuple(range(ndim)) if order == "C" else tuple(reversed(range(ndim)))


class MappedArray:
    """A numpy array on a file mapping whose pages are handed back to the OS after every read or write.

    ``mapped[key]`` returns a copy and ``mapped[key] = values`` writes through; a strided selection is moved in
    pieces spanning at most ``RELEASE_BYTES`` of the file, so a time slice does not map the whole volume at once.

    Args:
        path: file to map.
        shape, dtype: of the array.
        offset: bytes before the array data (e.g. a ``.npy`` header).
        axes: the array's axes from slowest to fastest in the file (default: C order, the first slowest).
        writable: map read-write (the file must exist at its full size).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape: tuple[int, ...],
        dtype: np.dtype | str,
        offset: int = 0,
        axes: tuple[int, ...] | None = None,
        writable: bool = False,
    ):
        self.path = os.fspath(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        axes = tuple(range(len(self.shape))) if axes is None else tuple(axes)
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
        stored = np.ndarray(tuple(self.shape[a] for a in axes), self.dtype, buffer=self._map, offset=offset)
        self.array = stored.transpose(np.argsort(axes))

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        shape: tuple[int, ...],
        dtype: np.dtype | str,
        header: bytes = b"",
        axes: tuple[int, ...] | None = None,
    ) -> "MappedArray":
        """Create (or truncate) ``path`` as ``header`` followed by a zero-filled array, and map it writable."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        with open(path, "wb") as handle:
            handle.write(header)
            handle.truncate(len(header) + nbytes)
        return cls(path, shape, dtype, offset=len(header), axes=axes, writable=True)

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


def map_npy(path: str | os.PathLike) -> MappedArray:
    """Map a numeric ``.npy`` file (header parsed by ``np.load(mmap_mode="r")``; never unpickled).

    Raises:
        ValueError: naming the file, if it is not a ``.npy`` array of numbers.
    """
    try:
        header_view = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: cannot read as a numeric .npy array ({error})") from None
    if not isinstance(header_view, np.memmap) or header_view.dtype.kind not in "biuf":
        raise ValueError(f"{path}: cannot read as a numeric .npy array (got {type(header_view).__name__})")
    order = "F" if header_view.flags.f_contiguous and not header_view.flags.c_contiguous else "C"
    layout = (header_view.shape, header_view.dtype, header_view.offset, file_axes(header_view.ndim, order))
    del header_view  # close np.load's memmap before mapping the file our way
    shape, dtype, offset, axes = layout
    return MappedArray(path, shape, dtype, offset=offset, axes=axes)


def raw_layout(
    path: str | os.PathLike, shape: Any, dtype: Any = "float32", byte_order: Any = "little", order: Any = "F"
) -> tuple[tuple[int, ...], np.dtype, tuple[int, ...]]:
    """Parse a raw file's ``shape``, ``dtype``, ``byte_order`` and ``order`` options and check the file's size.

    Returns:
        The shape ``(N1, N2[, N3])``, the dtype with its byte order, and the axes from slowest to fastest in the file.

    Raises:
        ValueError: naming the file and the option, for a bad option or a size that does not match.
    """
    if shape is None:
        raise ValueError(f"{path}: a raw .dat file has no header: give its shape (shape=N1,N2[,N3], --shape)")
    shape = as_ints("shape", shape, (2, 3))
    dtype = as_dtype("dtype", dtype, as_choice("byte_order", byte_order, tuple(BYTE_ORDERS)))
    expected = math.prod(shape) * dtype.itemsize
    actual = os.path.getsize(path)
    if actual != expected:
        raise ValueError(
            f"{path}: file holds {actual} bytes but shape {','.join(map(str, shape))} of {dtype.name} needs "
            f"{expected}; check shape= and dtype= (--shape, --dtype)"
        )
    return shape, dtype, file_axes(len(shape), as_order("order", order))


def open_raw(
    path: str | os.PathLike,
    shape: Any = None,
    dtype: Any = "float32",
    byte_order: Any = "little",
    order: Any = "F",
) -> VolumeReader | np.ndarray:
    """Open a headerless ``.dat`` file: a 2-D file comes back as its ``(N1, N2)`` section, a 3-D one as a reader.

    Args:
        path: the file.
        shape: ``N1,N2[,N3]`` (N1 samples per trace), as a string or a sequence.
        dtype: numpy type of the samples.
        byte_order: ``little`` or ``big``.
        order: ``F`` (N1 varies fastest, the default) or ``C`` (the last axis does); see the module docstring.

    Returns:
        The section's values (in the file's type), or an :class:`ArrayReader` of the ``(N3, N2, N1)`` volume.
    """
    path = os.fspath(path)
    shape, dtype, axes = raw_layout(path, shape, dtype, byte_order, order)
    if len(shape) == 2:
        mapped = MappedArray(path, shape, dtype, axes=axes)
        section = mapped[...]
        mapped.close()
        return section
    # The (inline, crossline, time) volume is the (N1, N2, N3) array transposed: reverse its axes and their order.
    last = len(shape) - 1
    volume = MappedArray(path, shape[::-1], dtype, axes=tuple(last - axis for axis in axes))
    return ArrayReader(volume, name=path)


def open_npy(path: str | os.PathLike) -> VolumeReader | np.ndarray:
    """Open a numeric ``.npy``: a 2-D array comes back as the section, a 3-D ``(inline, crossline, time)`` one as a
    reader."""
    path = os.fspath(path)
    mapped = map_npy(path)
    if mapped.ndim == 2:
        section = mapped[...]
        mapped.close()
        return section
    return ArrayReader(mapped, name=path)


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` header of a C-ordered array of ``shape`` and ``dtype``."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


class MappedFileWriter(AtomicOutput):
    """``.npy`` or raw ``.dat`` output filled through a :class:`MappedArray` (``out[key] = values``).

    Args:
        path: destination.
        shape, dtype: of the stored array.
        header: bytes before the data (a ``.npy`` header, or nothing for raw files).
        axes: the array's axes from slowest to fastest in the file (default: C order).
        overwrite: replace an existing file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape: tuple[int, ...],
        dtype: np.dtype | str,
        header: bytes = b"",
        axes: tuple[int, ...] | None = None,
        overwrite: bool = False,
    ):
        self.shape, self.dtype, self._header, self._axes = tuple(shape), np.dtype(dtype), header, axes
        super().__init__(path, overwrite)

    def _open(self) -> None:
        self.mapped = MappedArray.create(self.temp_path, self.shape, self.dtype, self._header, self._axes)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __setitem__(self, key, values) -> None:
        self.mapped[key] = values

    def _close(self) -> None:
        self.mapped.close()


def create_npy(path: str | os.PathLike, shape: tuple[int, ...], dtype: np.dtype, overwrite: bool = False):
    """A :class:`MappedFileWriter` of a ``.npy`` file keeping ``dtype``."""
    return MappedFileWriter(path, shape, dtype, npy_header(shape, dtype), overwrite=overwrite)


def _output_axes(ndim: int, section: bool) -> tuple[int, ...]:
    """File axis order of a raw output: time varies fastest, leading (class) axes slowest."""
    axes = tuple(range(ndim))
    return (*axes[:-2], axes[-1], axes[-2]) if section else axes


def create_raw(path: str | os.PathLike, shape: tuple[int, ...], section: bool = False, overwrite: bool = False):
    """A :class:`MappedFileWriter` of a little-endian float32 ``.dat`` file with time varying fastest.

    Read it back with the module's convention, ``order=F`` and the input's ``N1,N2[,N3]``: a volume
    ``(..., inline, crossline, time)`` is stored C-ordered, a section ``(..., time, trace)`` with its last two axes
    swapped; leading (class) axes vary slowest.
    """
    return MappedFileWriter(path, shape, np.dtype("<f4"), axes=_output_axes(len(shape), section), overwrite=overwrite)


def open_raw_output(path: str | os.PathLike, shape: tuple[int, ...]) -> ArrayReader:
    """Re-open a volume written by :func:`create_raw`, ``shape`` as given to it (class axes included)."""
    path = os.fspath(path)
    return ArrayReader(MappedArray(path, shape, np.dtype("<f4"), axes=_output_axes(len(shape), False)), name=path)


__all__ = [
    "RELEASE_BYTES",
    "ArrayReader",
    "MappedArray",
    "MappedFileWriter",
    "create_npy",
    "create_raw",
    "file_axes",
    "map_npy",
    "npy_header",
    "open_npy",
    "open_raw",
    "open_raw_output",
    "raw_layout",
]
