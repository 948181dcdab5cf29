"""Distributed acoustic sensing (DAS) records with event times or picks.

A record is a 2-D strain(-rate) array in an ``.npz`` file (array ``key``, default ``data``) or an HDF5 file (dataset
``key``; needs h5py), stored channel x time (``layout=channel_time``, the default) or time x channel. Labels mark
event windows: ``events=t1,t2`` (seconds after the record's first sample) mark every channel from ``t - pre`` to
``t + window``; a picks CSV (``channel,time[,record]``, channel index from 0, time in seconds) marks that window on
the picked channel only. Records are cut into (time, channel) patches, n1 being time as in every Section, and read
patch by patch (an HDF5 dataset is sliced on disk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...models.tasks import TaskSpec
from ..records import Section, register_source
from ._common import (
    as_finite_float32,
    find_column,
    list_files,
    numbers,
    parse_patch,
    patch_windows,
    read_rows,
    relative,
    require_dir,
    require_file,
)
from ...io.options import as_choice, as_float, as_floats

# Names under which records commonly store their sampling rate in Hz, looked up when fs= is not given.
FS_KEYS = ("fs", "fs_hz", "sampling_rate")
# Axis positions of (time, channel) in the stored array.
LAYOUTS = {"channel_time": (1, 0), "time_channel": (0, 1)}

Record = tuple[Any, dict[str, Any]]  # the array (ndarray or h5py.Dataset) and its scalar metadata


@contextmanager
def _open_npz(path: Path, key: str) -> Iterator[Record]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: cannot read as .npz ({error})") from None
    with archive:
        if key not in archive.files:
            raise ValueError(f"{path}: no array {key!r} (it holds {archive.files}); pass key=NAME")
        yield archive[key], {name: archive[name] for name in FS_KEYS if name in archive.files}


@contextmanager
def _open_hdf5(path: Path, key: str) -> Iterator[Record]:
    try:
        import h5py
    except ImportError:
        raise ImportError(f"Reading the HDF5 DAS record {path} needs h5py: pip install h5py") from None
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: cannot read as HDF5 ({error})") from None
    with handle:
        if key not in handle:
            raise ValueError(f"{path}: no dataset {key!r} (top level: {list(handle)}); pass key=PATH")
        data = handle[key]
        attributes = {**handle.attrs, **data.attrs}
        yield data, {name: attributes[name] for name in FS_KEYS if name in attributes}


RECORD_OPENERS: dict[str, Callable[[Path, str], AbstractContextManager[Record]]] = {
    ".npz": _open_npz,
    ".h5": _open_hdf5,
    ".hdf5": _open_hdf5,
}


@dataclass(frozen=True)
class EventWindows:
    """Event windows in seconds: ``everywhere`` (N, 2) start, stop on all channels; ``picks`` (M, 3) channel, start,
    stop on one channel."""

    everywhere: np.ndarray
    picks: np.ndarray

    def check(self, path: Path, duration: float, n_channels: int) -> None:
        """Raise ``ValueError`` naming ``path`` if there is no window, or one misses the record."""
        starts = np.concatenate([self.everywhere[:, 0], self.picks[:, 1]])
        stops = np.concatenate([self.everywhere[:, 1], self.picks[:, 2]])
        if starts.size == 0:
            raise ValueError(f"{path}: no event or pick for this record; pass events=T1,T2 or picks=FILE")
        if ((stops <= 0) | (starts >= duration)).any():
            raise ValueError(f"{path}: an event window lies outside the record's 0..{duration:g} s")
        channels = self.picks[:, 0]
        if ((channels < 0) | (channels >= n_channels) | (channels != np.round(channels))).any():
            raise ValueError(f"{path}: picked channels must be integers in 0..{n_channels - 1}")

    def label(self, times: np.ndarray, channels: range) -> np.ndarray:
        """uint8 (time, channel) label of the samples at ``times`` (seconds) on ``channels``."""
        label = np.zeros((times.size, len(channels)), dtype=np.uint8)
        for start, stop in self.everywhere:
            label[(times >= start) & (times < stop)] = 1
        for channel, start, stop in self.picks:
            if channels.start <= channel < channels.stop:
                label[(times >= start) & (times < stop), int(channel) - channels.start] = 1
        return label


@dataclass(frozen=True)
class Picks:
    """Picks of a CSV: (M, 2) channel and time, and the record each belongs to (None: every record)."""

    values: np.ndarray
    records: list[str | None]

    @classmethod
    def read(cls, path: Path) -> Picks:
        rows = read_rows(path, "DAS picks")
        if not rows:
            raise ValueError(f"{path}: empty picks file; expected a header channel,time[,record]")
        header, body = rows[0], rows[1:]
        columns = [find_column(header, (name,), path) for name in ("channel", "time")]
        lowered = [cell.lower() for cell in header]
        record = lowered.index("record") if "record" in lowered else None
        return cls(numbers(body, columns, path), [row[record] if record is not None else None for row in body])

    def of(self, record: Path) -> np.ndarray:
        """Channel and time of the picks that belong to ``record`` (matched by file name or stem)."""
        keep = [name in (None, record.name, record.stem) for name in self.records]
        return self.values[np.asarray(keep, dtype=bool)].reshape(-1, 2)


def _sampling_rate(path: Path, fs: float | None, metadata: dict[str, Any]) -> float:
    if fs is not None:
        rate = fs
    elif metadata:  # holds the FS_KEYS found, in FS_KEYS order; HDF5 attributes may be 1-element arrays
        rate = float(np.ravel(next(iter(metadata.values())))[0])
    else:
        raise ValueError(f"{path}: no sampling rate stored (looked for {', '.join(FS_KEYS)}); pass fs=HZ")
    if rate <= 0:
        raise ValueError(f"{path}: sampling rate must be > 0, got {rate}")
    return rate


@dataclass(frozen=True)
class DasOptions:
    """Parsed options of the DAS reader."""

    key: str
    fs: float | None
    layout: tuple[int, int]
    events: tuple[float, ...]
    picks: Picks | None
    window: float
    pre: float
    patch: tuple[int, int]
    stride: tuple[int, int]

    def windows(self, record: Path) -> EventWindows:
        events = np.asarray(self.events, dtype=np.float64)
        picks = self.picks.of(record) if self.picks is not None else np.zeros((0, 2))
        return EventWindows(
            everywhere=np.stack([events - self.pre, events + self.window], axis=1).reshape(-1, 2),
            picks=np.column_stack([picks[:, 0], picks[:, 1] - self.pre, picks[:, 1] + self.window]),
        )


def _read_window(data: Any, layout: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    key: list[slice] = [slice(None), slice(None)]
    key[layout[0]], key[layout[1]] = rows, cols
    block = np.asarray(data[tuple(key)])
    return block.T if layout[0] == 1 else block


def _record_sections(paths: list[Path], root: Path, options: DasOptions) -> Iterator[Section]:
    for path in paths:
        with RECORD_OPENERS[path.suffix.lower()](path, options.key) as (data, metadata):
            if data.ndim != 2:
                raise ValueError(f"{path}: {options.key!r} has shape {data.shape}; expected a 2-D record")
            fs = _sampling_rate(path, options.fs, metadata)
            n_time, n_channels = data.shape[options.layout[0]], data.shape[options.layout[1]]
            windows = options.windows(path)
            windows.check(path, n_time / fs, n_channels)
            source = relative(path, root)
            for rows, cols in patch_windows((n_time, n_channels), options.patch, options.stride, source):
                where = f"samples {rows.start}..{rows.stop - 1}, channels {cols.start}..{cols.stop - 1}"
                yield Section(
                    image=as_finite_float32(_read_window(data, options.layout, rows, cols), source, where),
                    label=windows.label(np.arange(rows.start, rows.stop) / fs, range(cols.start, cols.stop)),
                    source_file=source,
                    section_index=rows.start,
                    section_axis="time",
                )


@register_source(
    "npz",
    tasks=("das-event",),
    description="DAS records (.npz, or HDF5 with h5py) with event times or channel picks, cut into patches",
)
def read_das(
    input_dir: Path,
    task: TaskSpec,
    *,
    key: str = "data",
    fs: str | float | None = None,
    layout: str = "channel_time",
    events: str | None = None,
    picks: str | None = None,
    window: str | float = 2.0,
    pre: str | float = 0.0,
    patch: str = "512,512",
    stride: str | None = None,
) -> dict[str, Iterator[Section]]:
    """Read the DAS records of ``input_dir`` and label their event windows.

    Args:
        input_dir: folder of ``.npz`` / ``.h5`` / ``.hdf5`` records.
        task: the das-event task.
        key: name of the array (npz) or dataset path (HDF5).
        fs: sampling rate in Hz (default: the record's ``fs``, ``fs_hz`` or ``sampling_rate``).
        layout: ``channel_time`` or ``time_channel``, the order of the stored axes.
        events: event times in seconds after the first sample, applied to every record and channel.
        picks: CSV in ``input_dir`` with columns ``channel,time`` and optionally ``record`` (file name or stem).
        window, pre: a window covers ``time - pre`` to ``time + window`` seconds.
        patch, stride: (time, channel) patch size and step; edge patches are shifted inwards, not padded.

    Returns:
        ``{"train": sections}``; ``section_index`` is the first time sample of each patch.
    """
    root = require_dir(input_dir)
    paths = list_files(root, tuple(RECORD_OPENERS), "DAS records")
    event_times = () if events is None else as_floats("events", events)
    pick_table = None if picks is None else Picks.read(require_file(root / picks, "picks file"))
    if not event_times and pick_table is None:
        raise ValueError("The npz source needs events=T1,T2 (seconds from the record start) or picks=FILE")
    patch_size, patch_stride = parse_patch(patch, stride)
    options = DasOptions(
        key=str(key),
        fs=None if fs is None else as_float("fs", fs),
        layout=LAYOUTS[as_choice("layout", layout, tuple(LAYOUTS))],
        events=event_times,
        picks=pick_table,
        window=as_float("window", window),
        pre=as_float("pre", pre),
        patch=patch_size,
        stride=patch_stride,
    )
    if options.window <= 0 or options.pre < 0:
        raise ValueError(f"Options window={window!r} must be > 0 and pre={pre!r} >= 0 (seconds)")
    return {"train": _record_sections(paths, root, options)}
