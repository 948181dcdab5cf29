"""What every reader yields: one 2-D section with its label and where it came from.

Readers are registered by source name in :data:`SOURCES`; the dataset builder looks them up there, so a new source
format is one decorated function, not a new branch in the builder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..models.tasks import TaskSpec


@dataclass
class Section:
    """A 2-D training example.

    Attributes:
        image: float32 array (n1, n2); n1 is depth/time/row, n2 is trace/channel/column.
        label: uint8 array (n1, n2) of class ids 0..C-1.
        source_file: the file the image was read from (relative to the input folder where possible).
        section_index: index of the section along ``section_axis`` in its source volume (-1 for plain 2-D files).
        section_axis: "inline", "crossline", "time", "" for 2-D sources.
        depth: depth or time of the section where the source gives one (e.g. TGS ``depths.csv``), else None.
    """

    image: np.ndarray
    label: np.ndarray
    source_file: str
    section_index: int = -1
    section_axis: str = ""
    depth: float | None = None


# A reader maps (input folder, task, reader options) to split name -> iterator of sections. Split names are
# "train", "validation", "test"; a reader of a source that has no splits yields everything as "train" and lets the
# builder carve validation/test out deterministically.
Reader = Callable[..., dict[str, Iterator[Section]]]


@dataclass(frozen=True)
class SourceSpec:
    """A registered source format: its reader and the tasks it can feed."""

    name: str
    reader: Reader
    tasks: tuple[str, ...]
    description: str


SOURCES: dict[str, SourceSpec] = {}


def register_source(name: str, tasks: tuple[str, ...], description: str) -> Callable[[Reader], Reader]:
    """Decorator registering ``reader`` as source ``name`` for the given task names."""

    def decorate(reader: Reader) -> Reader:
        if name in SOURCES:
            raise ValueError(f"Source {name!r} is registered twice")
        SOURCES[name] = SourceSpec(name=name, reader=reader, tasks=tasks, description=description)
        return reader

    return decorate


def get_source(name: str, task: TaskSpec) -> SourceSpec:
    """Return the source ``name`` if it can feed ``task``; otherwise raise ``ValueError`` listing what can."""
    usable = sorted(s.name for s in SOURCES.values() if task.name in s.tasks)
    spec = SOURCES.get(name)
    if spec is None or task.name not in spec.tasks:
        raise ValueError(f"Source {name!r} cannot feed task {task.name!r}; sources for it: {', '.join(usable)}")
    return spec

