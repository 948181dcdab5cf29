"""From sections to a Hub dataset: validate, stream into a ``DatasetDict``, write a Hub-layout folder, upload.

A built folder is what a dataset repo on the Hub holds::

    <folder>/README.md                          card; its YAML ``configs`` point at the shards
    <folder>/id2label.json                      class ids and names of the task
    <folder>/data/<split>-00000-of-0000N.parquet

so ``datasets.load_dataset(<folder>)`` works locally and ``load_dataset("org/name")`` after an upload of the folder.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import itertools
import json
import math
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import Array2D, Dataset, DatasetDict, Features, Image, List, Value
from datasets.exceptions import DatasetGenerationError
from huggingface_hub import CommitInfo
from tqdm.auto import tqdm

from ..hub import CardInfo, make_dataset_card, push_folder, split_statistics
from ..io.atomic import staged_folder
from ..models.tasks import TaskSpec, get_task
from .preview import image_preview, label_preview
from .records import SOURCES, Section, get_source

SPLITS = ("train", "validation", "test")
# Modules whose import registers readers in SOURCES.
SOURCE_MODULES = ("geofm_hf.data.sources", "geofm_hf.data.study", "geofm_hf.data.synthetic")
# Bytes of sections buffered before the Arrow cache writer flushes; bounds memory for 1000x1000 sections too.
WRITER_BATCH_BYTES = 64 * 2**20
MAX_SHARD_BYTES = 500 * 2**20
DEFAULT_HOLDOUT = 0.1


def load_sources() -> None:
    """Import every module that registers a source reader (original formats, the study's layout, synthetic)."""
    for module in SOURCE_MODULES:
        importlib.import_module(module)


# --- reading ----------------------------------------------------------------------------------------------------


def read_source(
    source: str, task: TaskSpec, input_dir: Path | None = None, options: Mapping[str, Any] | None = None
) -> dict[str, Iterator[Section]]:
    """Call the reader of ``source`` for ``task``: ``reader(input_dir, task, **options)``.

    Raises:
        ValueError: the source does not exist or cannot feed ``task``, or an option is not one the reader takes.
    """
    load_sources()
    reader = get_source(source, task).reader
    options = dict(options or {})
    parameters = inspect.signature(reader).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted = [name for name, p in list(parameters.items())[2:] if p.kind is not inspect.Parameter.VAR_KEYWORD]
    unknown = sorted(set(options) - set(accepted))
    if unknown and not takes_any:
        raise ValueError(
            f"Source {source!r} does not take option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(accepted) or 'none'}"
        )
    return reader(Path(input_dir) if input_dir is not None else None, task, **options)


def _where(section: Section) -> str:
    if section.section_index >= 0:
        return f"{section.source_file} ({section.section_axis or 'section'} {section.section_index})"
    return section.source_file or "<section without source_file>"


def _check_array(array: Any, dtype: np.dtype, what: str, where: str) -> None:
    if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != 2 or array.size == 0:
        got = f"{array.dtype} array of shape {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise ValueError(f"{where}: {what} must be a non-empty 2-D {dtype} array, got a {got}")


def validate_section(section: Section, task: TaskSpec) -> None:
    """Check one section against the :class:`Section` contract and ``task``; errors name its source file."""
    where = _where(section)
    _check_array(section.image, np.dtype(np.float32), "image", where)
    _check_array(section.label, np.dtype(np.uint8), "label", where)
    if section.label.shape != section.image.shape:
        raise ValueError(f"{where}: label shape {section.label.shape} differs from image shape {section.image.shape}")
    bad = section.image.size - np.count_nonzero(np.isfinite(section.image))
    if bad:
        raise ValueError(f"{where}: image holds {bad} NaN or Inf value(s)")
    top = int(section.label.max())
    if top >= task.num_labels:
        raise ValueError(
            f"{where}: label holds class id {top}, but task {task.name!r} has ids 0..{task.num_labels - 1}"
        )


# --- building ---------------------------------------------------------------------------------------------------


def section_features(width: int | None) -> Features:
    """Columns of a dataset: ``Array2D`` images when every section is ``width`` wide, nested lists otherwise, and a
    grey picture of each section and a colour picture of its labels for the Hub's dataset viewer.

    Both array types store the float32 values losslessly; ``Array2D`` reads back faster and shows its shape.
    """
    if width is None:
        image, label = List(List(Value("float32"))), List(List(Value("uint8")))
    else:
        image, label = Array2D(shape=(None, width), dtype="float32"), Array2D(shape=(None, width), dtype="uint8")
    return Features(
        {
            "image_preview": Image(),
            "label_preview": Image(),
            "image": image,
            "label": label,
            "source_file": Value("string"),
            "section_index": Value("int64"),
            "section_axis": Value("string"),
            "depth": Value("float64"),
        }
    )


def _row(section: Section) -> dict[str, Any]:
    return {
        "image_preview": {"bytes": image_preview(section.image), "path": None},
        "label_preview": {"bytes": label_preview(section.label), "path": None},
        "image": section.image,
        "label": section.label,
        "source_file": section.source_file,
        "section_index": int(section.section_index),
        "section_axis": section.section_axis,
        "depth": None if section.depth is None else float(section.depth),
    }


def assign_splits(counts: Mapping[str, int], validation_fraction: float, test_fraction: float) -> dict[str, range]:
    """Rows of each split, for rows stored as the source's splits in :data:`SPLITS` order.

    Splits the source lacks are carved out of the END of train, contiguously, in reading order
    (``[train | validation | test]``): neighbouring sections of a volume are near-duplicates, so a random pick would
    leak them between splits. Each carved split gets ``round(fraction * n_train)`` rows, at least one.
    """
    n_train = counts["train"]
    fractions = {"validation": validation_fraction, "test": test_fraction}
    missing = [split for split in SPLITS[1:] if split not in counts]
    for split in missing:
        if not 0.0 < fractions[split] < 1.0:
            raise ValueError(f"{split}_fraction={fractions[split]}: expected a share of train between 0 and 1")
    carved = {split: max(1, round(n_train * fractions[split])) for split in missing}
    kept = n_train - sum(carved.values())
    if kept < 1:
        raise ValueError(f"{n_train} train section(s) are too few to carve {' and '.join(carved)} out of them")
    ranges, start = {"train": range(0, kept)}, kept
    for split, size in carved.items():
        ranges[split], start = range(start, start + size), start + size
    for split in SPLITS[1:]:
        if split in counts:
            ranges[split], start = range(start, start + counts[split]), start + counts[split]
    return {split: ranges[split] for split in SPLITS}


def split_note(present: Iterable[str], validation_fraction: float, test_fraction: float) -> str:
    """Sentence for the card saying which splits were carved out of train."""
    fractions = {"validation": validation_fraction, "test": test_fraction}
    carved = [split for split in SPLITS[1:] if split not in present]
    if not carved:
        return "The splits are the source's own."
    shares = " and ".join(f"`{split}` ({fractions[split]:.0%} of train)" for split in carved)
    verb = "was" if len(carved) == 1 else "were"
    return (
        f"The source has no {' or '.join(carved)} split: {shares} {verb} taken from the end of its train split, in "
        "reading order, so that neighbouring sections stay in the same split."
    )


@contextlib.contextmanager
def _quiet_datasets_progress() -> Iterator[None]:
    """Hide the "Generating train split" bar while our own bar counts the same sections."""
    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()


def check_every_class_present(class_pixels: np.ndarray, task: TaskSpec) -> None:
    """Refuse a dataset without a single pixel of one of the task's classes: a model cannot learn it, and it
    usually means a reader dropped what it could not place (boxes outside their image, unmatched label files).

    Raises:
        ValueError: naming the absent classes.
    """
    absent = [name for name, count in zip(task.label_names, class_pixels.tolist()) if count == 0]
    if absent:
        raise ValueError(
            f"The {task.name} dataset would hold no pixel of class(es) {absent} "
            f"(pixels per class: {dict(zip(task.label_names, class_pixels.tolist()))}); check the source's labels "
            "and the warnings above about what the reader dropped"
        )


def build_dataset_dict(
    splits: Mapping[str, Iterable[Section]],
    task: TaskSpec,
    *,
    cache_dir: str | Path | None = None,
    validation_fraction: float = DEFAULT_HOLDOUT,
    test_fraction: float = DEFAULT_HOLDOUT,
) -> DatasetDict:
    """Stream sections into a ``DatasetDict`` with splits train/validation/test, validating each one.

    Sections go through an Arrow cache file in ``cache_dir`` (``datasets``' cache if None), a bounded number at a time,
    so inputs larger than memory are fine. Splits missing from ``splits`` are carved out of train
    (:func:`assign_splits`).

    Raises:
        ValueError: an unknown or empty split, no train split, a section failing :func:`validate_section`, or a
            class of the task without a single pixel (:func:`check_every_class_present`).
    """
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or "train" not in splits:
        raise ValueError(f"Sources must yield a 'train' split and only {', '.join(SPLITS)}; got {sorted(splits)}")
    counts: Counter[str] = Counter()
    widths: set[int] = set()
    class_pixels = np.zeros(task.num_labels, dtype=np.int64)

    def checked() -> Iterator[Section]:
        for split in (s for s in SPLITS if s in splits):
            for section in splits[split]:
                validate_section(section, task)
                counts[split] += 1
                widths.add(section.image.shape[1])
                class_pixels[:] += np.bincount(section.label.ravel(), minlength=task.num_labels)[: task.num_labels]
                yield section

    stream = iter(tqdm(checked(), desc=f"{task.name}: reading sections", unit=" sections"))
    first = next(stream, None)
    if first is None:
        raise ValueError("The source yielded no sections")
    writer_batch_size = max(1, WRITER_BATCH_BYTES // (first.image.nbytes + first.label.nbytes))

    def rows() -> Iterator[dict[str, Any]]:
        for section in itertools.chain([first], stream):
            yield _row(section)

    try:
        with _quiet_datasets_progress():
            dataset = Dataset.from_generator(
                rows,
                features=section_features(None),
                cache_dir=str(cache_dir) if cache_dir is not None else None,
                writer_batch_size=writer_batch_size,
                # A fresh fingerprint: the generator's output is not a function of its code, never reuse a cache.
                fingerprint=uuid.uuid4().hex,
            )
    except DatasetGenerationError as error:
        # datasets wraps what the reader or the validation raised; the user needs that error, which names the file.
        if error.__cause__ is None:
            raise
        raise error.__cause__ from None
    empty = [split for split in splits if counts[split] == 0]
    if empty:
        raise ValueError(f"The source yielded no sections for split(s) {', '.join(empty)}")
    check_every_class_present(class_pixels, task)
    if len(widths) == 1:
        dataset = dataset.cast(
            section_features(widths.pop()), batch_size=writer_batch_size, writer_batch_size=writer_batch_size
        )
    ranges = assign_splits(counts, validation_fraction, test_fraction)
    return DatasetDict({split: dataset.select(selected) for split, selected in ranges.items()})


# --- writing ----------------------------------------------------------------------------------------------------


def _write_shards(dataset: Dataset, data_dir: Path, split: str, num_bytes: int) -> list[Path]:
    num_shards = max(1, math.ceil(num_bytes / MAX_SHARD_BYTES))
    paths = [data_dir / f"{split}-{index:05d}-of-{num_shards:05d}.parquet" for index in range(num_shards)]
    for index, path in enumerate(paths):
        dataset.shard(num_shards, index, contiguous=True).to_parquet(str(path))
    return paths


def write_dataset_files(dataset_dict: DatasetDict, task: TaskSpec, folder: Path, card_info: CardInfo) -> None:
    """Write the files of a Hub dataset repo into the existing folder ``folder`` (see the module docstring)."""
    data_dir = folder / "data"
    data_dir.mkdir()
    statistics, shards = {}, []
    for split, dataset in dataset_dict.items():
        statistics[split] = split_statistics(dataset, task.num_labels)
        shards += _write_shards(dataset, data_dir, split, statistics[split].num_bytes)
    (folder / "id2label.json").write_text(
        json.dumps({str(i): name for i, name in task.id2label.items()}, indent=2) + "\n", encoding="utf-8"
    )
    features = next(iter(dataset_dict.values())).features
    download_size = sum(path.stat().st_size for path in shards)
    make_dataset_card(task, card_info, statistics, features, download_size).save(folder / "README.md")


def write_dataset_folder(
    dataset_dict: DatasetDict, task: TaskSpec, folder: str | Path, card_info: CardInfo, *, overwrite: bool = False
) -> Path:
    """Write ``dataset_dict`` as a Hub dataset repo folder: Parquet shards, ``README.md`` card, ``id2label.json``.

    Everything is written to a staging folder next to ``folder`` and renamed at the end
    (:func:`geofm_hf.io.atomic.staged_folder`): a failure leaves no partial output behind.

    Args:
        dataset_dict: splits with the columns of :func:`section_features`.
        task: the task the labels belong to.
        folder: output folder; must be missing or empty unless ``overwrite``.
        card_info: build details for the card.
        overwrite: replace an existing non-empty ``folder``.

    Returns:
        ``folder`` as a ``Path``.
    """
    with staged_folder(folder, overwrite=overwrite) as staging:
        write_dataset_files(dataset_dict, task, staging, card_info)
    return Path(folder)


def build_dataset_folder(
    task: str | TaskSpec,
    source: str,
    output: str | Path,
    *,
    input_dir: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    command: str = "",
    repo_id: str | None = None,
    overwrite: bool = False,
    validation_fraction: float = DEFAULT_HOLDOUT,
    test_fraction: float = DEFAULT_HOLDOUT,
) -> Path:
    """Read ``source`` for ``task`` and write the dataset folder ``output`` (see :func:`write_dataset_folder`).

    ``output`` is checked before anything is read, and the build's Arrow cache lives in the staging folder until the
    shards are written: a failure at any point leaves neither ``output`` nor temporary folders behind.

    Args:
        task: task name (or alias) or spec.
        source: registered source name (``study``, ``synthetic``, or an original format).
        output: output folder.
        input_dir: the source's input folder (None for ``synthetic``).
        options: reader options (see each reader's signature).
        command: the command line that made the build, recorded in the card.
        repo_id: Hub repo named in the card's usage example (defaults to the task's).
        overwrite: replace a non-empty ``output``.
        validation_fraction: share of train carved out as validation when the source has no validation split.
        test_fraction: share of train carved out as test when the source has no test split.
    """
    spec = get_task(task) if isinstance(task, str) else task
    with staged_folder(output, overwrite=overwrite) as staging:
        splits = read_source(source, spec, input_dir, options)
        info = CardInfo(
            source=source,
            command=command,
            source_description=SOURCES[source].description,
            split_note=split_note(splits, validation_fraction, test_fraction),
            repo_id=repo_id,
        )
        with tempfile.TemporaryDirectory(dir=staging, prefix=".cache-") as cache_dir:
            dataset_dict = build_dataset_dict(
                splits, spec, cache_dir=cache_dir, validation_fraction=validation_fraction, test_fraction=test_fraction
            )
            write_dataset_files(dataset_dict, spec, staging, info)
    return Path(output)


# --- uploading --------------------------------------------------------------------------------------------------


def push_dataset_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload dataset built with geofm_hf",
) -> CommitInfo:
    """Upload a built dataset folder as the root of the dataset repo ``repo_id`` (created if needed), in one commit.

    :func:`geofm_hf.hub.push_folder` with ``repo_type="dataset"``.

    Raises:
        FileNotFoundError: ``folder`` has no ``README.md`` (not a built dataset folder).
        geofm_hf.hub.HubPushError: no token, offline, or refused by the Hub; the message gives the ``hf upload``
            command that sends the (complete) folder later.
    """
    return push_folder(
        folder, repo_id, repo_type="dataset", token=token, private=private, commit_message=commit_message
    )
