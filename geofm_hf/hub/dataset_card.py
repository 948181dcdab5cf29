"""Dataset cards: the YAML the Hub and ``datasets`` read (configs, features, licence, tags) and a body that says where
the sections came from, how they were converted, and what is in each split.

The body is rendered from ``templates/dataset_card.md`` (shipped with the package) by
:meth:`huggingface_hub.DatasetCard.from_template`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Array2D, Dataset, DatasetInfo, Features
from datasets.info import DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from huggingface_hub import DatasetCard, DatasetCardData

from ..models.tasks import TaskSpec
from ..study import STUDY_CITATION
from .constants import BASE_TAGS, DATASET_CARD_TEMPLATE, PIPELINE_TAG

# Upper bounds of the Hub's size_categories, with their names.
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
STATISTICS_BATCH_ROWS = 32
MAX_SIZES_SHOWN = 5


@dataclass(frozen=True)
class CardInfo:
    """What the card says about the build, beyond the task and the data themselves.

    Attributes:
        source: registered source name the sections were read with.
        command: exact command that built the folder.
        source_description: what the source is (its :class:`~geofm_hf.data.records.SourceSpec` description).
        split_note: how the splits were made (e.g. which were carved out of train).
        repo_id: Hub repo shown in the usage example; defaults to the task's ``hub_dataset_id``.
    """

    source: str
    command: str
    source_description: str = ""
    split_note: str = ""
    repo_id: str | None = None


@dataclass
class SplitStatistics:
    """What the card reports about one split."""

    num_rows: int = 0
    num_bytes: int = 0
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    value_min: float = float("inf")
    value_max: float = float("-inf")
    sizes: Counter = field(default_factory=Counter)

    @property
    def class_fractions(self) -> np.ndarray:
        return self.class_pixels / max(1, int(self.class_pixels.sum()))


def _storage(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    return array.storage if isinstance(array, pa.ExtensionArray) else array


def _leaf_values(array: pa.Array) -> np.ndarray:
    """All values of a (nested) list array as one flat numpy array of the stored dtype (no int64 upcast)."""
    while pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        array = array.flatten()
    return array.to_numpy(zero_copy_only=False)


def _row_shapes(array: pa.Array) -> list[tuple[int, int]]:
    """(n1, n2) of every row of a list-of-lists array (rows are rectangular: the builder checked)."""
    heights = pc.list_value_length(array).to_numpy()
    widths = pc.list_value_length(array.flatten()).to_numpy()
    first_rows = np.concatenate([[0], np.cumsum(heights)[:-1]]).astype(np.int64)
    return list(zip(heights.tolist(), widths[first_rows].tolist()))


def split_statistics(dataset: Dataset, num_labels: int) -> SplitStatistics:
    """Rows, bytes, per-class pixel counts, value range and section sizes of one split, read batch by batch."""
    stats = SplitStatistics(class_pixels=np.zeros(num_labels, dtype=np.int64))
    for table in dataset.with_format("arrow").iter(batch_size=STATISTICS_BATCH_ROWS):
        images, labels = _storage(table["image"]), _storage(table["label"])
        values = _leaf_values(images)
        stats.num_rows += table.num_rows
        stats.num_bytes += table.nbytes
        stats.class_pixels += np.bincount(_leaf_values(labels), minlength=num_labels)[:num_labels]
        stats.value_min = min(stats.value_min, float(values.min()))
        stats.value_max = max(stats.value_max, float(values.max()))
        stats.sizes.update(_row_shapes(images))
    return stats


def size_category(num_rows: int) -> str:
    """The Hub's ``size_categories`` value for ``num_rows`` examples."""
    return next((name for bound, name in SIZE_CATEGORIES if num_rows < bound), "n>1M")


def _format_sizes(sizes: Counter) -> str:
    shown = [f"{n1} x {n2}: {count}" for (n1, n2), count in sizes.most_common(MAX_SIZES_SHOWN)]
    hidden = len(sizes) - MAX_SIZES_SHOWN
    return ", ".join(shown) + (f", and {hidden} other sizes" if hidden > 0 else "")


def _array_type(feature: object, dtype: str) -> str:
    if isinstance(feature, Array2D):
        return f"Array2D(shape=(None, {feature.shape[1]}), dtype={dtype})"
    return f"List(List({dtype})) (sections differ in width)"


def _card_data(
    task: TaskSpec, statistics: Mapping[str, SplitStatistics], features: Features, download_size: int
) -> DatasetCardData:
    total_rows = sum(stats.num_rows for stats in statistics.values())
    card_data = DatasetCardData(
        pretty_name=f"geofm_hf {task.name}",
        license=task.license,
        task_categories=[PIPELINE_TAG],
        task_ids=["semantic-segmentation"],
        tags=[*BASE_TAGS, *task.tags],
        size_categories=[size_category(total_rows)],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*"} for split in statistics],
            }
        ],
    )
    splits = SplitDict()
    for split, stats in statistics.items():
        splits.add(SplitInfo(name=split, num_bytes=stats.num_bytes, num_examples=stats.num_rows))
    info = DatasetInfo(
        features=features,
        splits=splits,
        download_size=download_size,
        dataset_size=sum(stats.num_bytes for stats in statistics.values()),
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    return card_data


def make_dataset_card(
    task: TaskSpec,
    info: CardInfo,
    statistics: Mapping[str, SplitStatistics],
    features: Features,
    download_size: int = 0,
) -> DatasetCard:
    """Render the dataset card of a built folder.

    Args:
        task: the task of the dataset.
        info: build details (source, command, split note, repo id).
        statistics: per-split statistics, in split order, from :func:`split_statistics`.
        features: the dataset's features (written as ``dataset_info`` so the Hub shows the schema).
        download_size: total bytes of the Parquet shards.
    """
    image_type, label_type = _array_type(features["image"], "float32"), _array_type(features["label"], "uint8")
    classes = [
        {
            "id": class_id,
            "name": name,
            "fractions": [f"{stats.class_fractions[class_id]:.2%}" for stats in statistics.values()],
        }
        for class_id, name in task.id2label.items()
    ]
    splits = [
        {
            "name": split,
            "rows": stats.num_rows,
            "sizes": _format_sizes(stats.sizes),
            "value_range": f"{stats.value_min:.6g} .. {stats.value_max:.6g}",
        }
        for split, stats in statistics.items()
    ]
    return DatasetCard.from_template(
        _card_data(task, statistics, features, download_size),
        template_path=str(DATASET_CARD_TEMPLATE),
        task_name=task.name,
        num_labels=task.num_labels,
        source=info.source,
        source_description=info.source_description or info.source,
        task_source=task.source,
        command=info.command,
        split_note=info.split_note,
        repo_id=info.repo_id or task.hub_dataset_id,
        image_type=image_type,
        label_type=label_type,
        classes=classes,
        splits=splits,
        license=task.license,
        task_citation=task.citation,
        study_citation=STUDY_CITATION,
    )


__all__ = ["CardInfo", "SplitStatistics", "make_dataset_card", "size_category", "split_statistics"]
