"""The F3 Netherlands facies benchmark (Alaudah et al. 2019) as shipped: ``.npy`` volumes.

``<name>_seismic.npy`` and ``<name>_labels.npy`` hold (inline, crossline, depth) arrays, labels 0..5; the name
(``train``, ``test1``, ``test2``) gives the split. Volumes are read with bounded memory
(:func:`geofm_hf.io.open_volume`, as ``geofm predict`` reads them) and cut into inline and crossline sections
transposed so that n1 is depth, one section at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from ...io import open_volume
from ...models.tasks import TaskSpec
from ..records import Section, register_source
from ._common import SPLIT_FOLDERS, Slicing, check_same_shape, relative, require_dir, volume_sections

_SEISMIC = "_seismic.npy"
_LABELS = "_labels.npy"


def _split_of(path: Path) -> str:
    # "test1_seismic.npy" -> "test": the benchmark numbers its test volumes.
    name = path.name[: -len(_SEISMIC)]
    split = SPLIT_FOLDERS.get(name.rstrip("0123456789").rstrip("_").lower())
    if split is None:
        raise ValueError(f"{path}: cannot tell its split from the name; expected train{_SEISMIC}, test1{_SEISMIC}, ...")
    return split


def _volume_pairs(root: Path) -> dict[str, list[tuple[Path, Path]]]:
    seismic = sorted(root.rglob("*" + _SEISMIC))
    if not seismic:
        raise FileNotFoundError(f"No *{_SEISMIC} volumes under {root} (expected train{_SEISMIC}, test1{_SEISMIC}, ...)")
    pairs: dict[str, list[tuple[Path, Path]]] = {}
    for path in seismic:
        label = path.with_name(path.name[: -len(_SEISMIC)] + _LABELS)
        if not label.is_file():
            raise ValueError(f"Seismic volume {path} has no label volume {label.name} beside it")
        pairs.setdefault(_split_of(path), []).append((path, label))
    for label in sorted(root.rglob("*" + _LABELS)):
        if not label.with_name(label.name[: -len(_LABELS)] + _SEISMIC).is_file():
            raise ValueError(f"Label volume {label} has no seismic volume beside it")
    return pairs


def _f3_sections(
    pairs: list[tuple[Path, Path]], root: Path, task: TaskSpec, slicing: Slicing
) -> Iterator[Section]:
    for seismic, labels in pairs:
        with ExitStack() as stack:
            image, label = (stack.enter_context(open_volume(path)) for path in (seismic, labels))
            yield from volume_sections(image, label, task, slicing, relative(seismic, root))


def _check_pair(seismic: Path, labels: Path) -> None:
    """Open both volumes (numeric 3-D ``.npy`` files) and compare their shapes."""
    with open_volume(seismic) as image, open_volume(labels) as label:
        check_same_shape(seismic, image.shape, labels, label.shape)


@register_source(
    "f3",
    tasks=("seismic-facies",),
    description="F3 Netherlands facies benchmark (Alaudah et al. 2019): train/test *_seismic.npy + *_labels.npy",
)
def read_f3(
    input_dir: Path,
    task: TaskSpec,
    *,
    axis: str = "both",
    step: str | int = 1,
    patch: str | None = None,
    stride: str | None = None,
) -> dict[str, Iterator[Section]]:
    """Read the F3 benchmark volumes found anywhere under ``input_dir``.

    Args:
        input_dir: folder holding (possibly in sub-folders) ``train_seismic.npy``, ``train_labels.npy``,
            ``test1_seismic.npy``, ``test1_labels.npy``, ...
        task: the seismic-facies task (6 classes).
        axis, step, patch, stride: slicing, see :class:`~geofm_hf.data.sources._common.Slicing`.

    Returns:
        ``{"train": ..., "test": ...}`` for the splits present; test1 and test2 both go to ``test``.
    """
    root = require_dir(input_dir)
    slicing = Slicing.parse(axis, step, patch, stride)
    plan = _volume_pairs(root)
    for pairs in plan.values():  # fail on a bad file now, not halfway through a conversion
        for seismic, labels in pairs:
            _check_pair(seismic, labels)
    return {split: _f3_sections(pairs, root, task, slicing) for split, pairs in plan.items()}
