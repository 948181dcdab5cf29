"""SEG-Y surveys: one reader, whose geometry always comes from the trace headers, and one writer copying them.

The (inline, crossline) grid is built from the inline and crossline numbers of every trace header (bytes 189 and 193
by default, ``iline_byte=``/``xline_byte=`` otherwise), never from the trace order: unsorted files, files segyio
cannot infer a geometry for, and surveys with holes are read correctly. Missing traces read as zeros and are counted
in a warning; two traces at the same (inline, crossline) are refused.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import segyio

from .atomic import AtomicOutput
from .options import BYTE_ORDERS, as_choice, as_int
from .volumes import VolumeReader, parse_section_key

logger = logging.getLogger(__name__)

INLINE_BYTE = int(segyio.TraceField.INLINE_3D)
CROSSLINE_BYTE = int(segyio.TraceField.CROSSLINE_3D)
# SEG-Y layout: textual + binary file header, then traces of a fixed header size; extended textual headers follow
# the binary header.
SEGY_FILE_HEADER_BYTES = 3600
SEGY_TEXT_HEADER_BYTES = 3200
SEGY_TRACE_HEADER_BYTES = 240
# Duplicate/missing traces listed in messages; the rest are counted.
_LISTED_TRACES = 8


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

    @property
    def missing(self) -> int:
        """Number of grid positions without a trace."""
        return int((self.trace_index < 0).sum())

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

    def traces_of(self, axis: int, index: int) -> np.ndarray:
        """Trace numbers (-1 where missing) of inline (``axis`` 0) or crossline (1) section ``index``."""
        return self.trace_index[index] if axis == 0 else self.trace_index[:, index]


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
            "Check the header bytes of the line numbers (iline_byte=, xline_byte=; --iline-byte, --xline-byte), "
            "or remove the duplicates (a pre-stack file has one trace per offset: stack it first)"
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
        iline_byte, xline_byte: trace-header bytes of the inline and crossline numbers (SEG-Y rev1: 189, 193).
        byte_order: ``big`` (the SEG-Y standard) or ``little``.

    Raises:
        ValueError: naming the file, if it cannot be read as SEG-Y with these options or repeats a trace position.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        iline_byte: Any = INLINE_BYTE,
        xline_byte: Any = CROSSLINE_BYTE,
        byte_order: Any = "big",
    ):
        self.name = os.fspath(path)
        header_bytes = {"iline_byte": iline_byte, "xline_byte": xline_byte}
        iline, xline = (as_int(option, value, minimum=1) for option, value in header_bytes.items())
        endian = as_choice("byte_order", byte_order, tuple(BYTE_ORDERS))
        try:
            self.file = segyio.open(self.name, "r", ignore_geometry=True, endian=endian)
        except (RuntimeError, ValueError, OSError) as error:
            raise ValueError(
                f"{self.name}: cannot read as {endian}-endian SEG-Y ({error}); check byte_order= (--byte-order)"
            ) from None
        try:
            self._check_whole_traces()
            self.geometry = SurveyGeometry.from_headers(self.name, *self._line_numbers(iline, xline))
        except BaseException:
            self.file.close()
            raise
        self.samples = np.asarray(self.file.samples)
        self.shape = (len(self.geometry.inlines), len(self.geometry.crosslines), len(self.samples))

    def _check_whole_traces(self) -> None:
        """Refuse a file that ends inside a trace: segyio counts whole traces only, so the cut-off one (and, for a
        truncated copy, every trace after it) would silently be missing."""
        trace_bytes = SEGY_TRACE_HEADER_BYTES + len(self.file.samples) * self.file.dtype.itemsize
        data_start = SEGY_FILE_HEADER_BYTES + SEGY_TEXT_HEADER_BYTES * self.file.ext_headers
        extra = (os.path.getsize(self.name) - data_start) % trace_bytes
        if extra:
            raise ValueError(
                f"{self.name}: ends {extra} bytes into a trace after {self.file.tracecount} whole traces of "
                f"{trace_bytes} bytes: the file is truncated (an interrupted copy?) or not a SEG-Y file of this layout"
            )

    def _line_numbers(self, iline: int, xline: int) -> tuple[np.ndarray, np.ndarray]:
        numbers = []
        for option, byte in (("iline_byte", iline), ("xline_byte", xline)):
            try:
                numbers.append(np.asarray(self.file.attributes(byte)[:]))
            except (KeyError, IndexError, RuntimeError, ValueError):
                raise ValueError(
                    f"{self.name}: {option}={byte} is not the first byte of a trace-header field (e.g. 189 and 193, "
                    "the SEG-Y rev1 inline and crossline numbers, or 9 and 21, field record and CDP numbers)"
                ) from None
        return numbers[0], numbers[1]

    def read_section(self, axis: int, index: int) -> np.ndarray:
        if axis == 2:
            section = np.zeros(self.shape[:2], dtype=np.float32)
            values = self.file.depth_slice[index]
            section[self.geometry.inline_positions, self.geometry.crossline_positions] = values
            return section
        traces = self.geometry.traces_of(axis, index)
        as_slice = _as_trace_slice(traces)
        if as_slice is not None:
            return np.asarray(self.file.trace.raw[as_slice], dtype=np.float32).reshape(len(traces), -1)
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


class SegyWriter(AtomicOutput):
    """SEG-Y output with the geometry and every header of an input SEG-Y, samples as IEEE float32 (format 5).

    The text headers, the binary header (with its format code set to 5), every trace header (inline/crossline
    numbers, coordinates, sample interval, ...) and the byte order are copied from ``template``; sections are written
    with ``out[key] = values`` as with a numpy array of shape ``template.shape``.
    """

    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, path: str | os.PathLike, template: SegyReader, overwrite: bool = False):
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
        axis, index = parse_section_key(key)
        values = np.asarray(values, dtype=np.float32)
        geometry = self.geometry
        if axis == 2:
            self.file.depth_slice[index] = np.ascontiguousarray(
                values[geometry.inline_positions, geometry.crossline_positions]
            )
            return
        traces = geometry.traces_of(axis, index)
        as_slice = _as_trace_slice(traces)
        if as_slice is not None:
            self.file.trace.raw[as_slice] = np.ascontiguousarray(values)
            return
        for row, trace in enumerate(traces):
            if trace >= 0:
                self.file.trace[int(trace)] = np.ascontiguousarray(values[row])

    def _close(self) -> None:
        self.file.close()


__all__ = ["CROSSLINE_BYTE", "INLINE_BYTE", "SegyReader", "SegyWriter", "SurveyGeometry"]
