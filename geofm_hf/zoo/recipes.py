"""Reproducing a zoo entry: its dataset folder from the data it names, then its recipe (or the UNet baseline)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..data.builder import build_dataset_dict, split_note
from ..data.records import Section
from ..hub.dataset_card import CardInfo
from ..models.tasks import get_task
from ..training.config import TrainingConfig, load_config
from ..training.layout import RunLayout
from .entry import DataPart, ZooEntry

RUN_SUBFOLDER = "run"
BASELINE_SUBFOLDER = "unet"


def _read_part(part: DataPart, data_root: Path, task: str) -> dict[str, Iterator[Section]]:
    from ..data.builder import read_source

    input_dir = None if part.input is None else data_root / part.input
    if input_dir is not None and not input_dir.exists():
        raise ValueError(f"{input_dir}: not found (the zoo entry reads {part.source!r} data from DATA_ROOT/{part.input})")
    return read_source(part.source, get_task(task), input_dir, part.options)


def entry_splits(entry: ZooEntry, data_root: Path) -> dict[str, Iterator[Section]]:
    """The entry's sections by split: its train part's, with the test parts (if any) as the test split."""
    splits = _read_part(entry.data.train, data_root, entry.task)
    if entry.data.test:
        splits["test"] = itertools.chain.from_iterable(
            _read_part(part, data_root, entry.task)["train"] for part in entry.data.test
        )
    return splits


def build_entry_dataset(entry: ZooEntry, data_root: Path, output: Path, overwrite: bool = False) -> Path:
    """Write the entry's dataset folder (train / validation / test) into ``output`` (atomically)."""
    from ..data.builder import write_dataset_folder
    from ..data.records import SOURCES

    task = get_task(entry.task)
    splits = entry_splits(entry, data_root)
    data = entry.data
    sources = [data.train.source, *(part.source for part in data.test)]
    info = CardInfo(
        source="+".join(dict.fromkeys(sources)),
        command=shlex.join(["geofm", "zoo", "train", entry.name, "--data-root", str(data_root)]),
        source_description="; ".join(SOURCES[source].description for source in dict.fromkeys(sources)),
        split_note=f"{data.split} {split_note(splits, data.validation_fraction, data.test_fraction)}",
    )
    dataset_dict = build_dataset_dict(
        splits, task, validation_fraction=data.validation_fraction, test_fraction=data.test_fraction
    )
    return write_dataset_folder(dataset_dict, task, output, info, overwrite=overwrite)


def training_settings(entry: ZooEntry, dataset: Path, output_dir: Path, baseline: bool) -> dict[str, Any]:
    """The `TrainingConfig` mapping of the entry's recipe (or its UNet baseline) on ``dataset``."""
    recipe = {**entry.recipe, **entry.baseline} if baseline else dict(entry.recipe)
    recipe = {key: value for key, value in recipe.items() if value is not None}
    return {**recipe, "task": entry.task, "dataset": str(dataset), "output_dir": str(output_dir)}


def recipe_config(
    entry: ZooEntry, dataset: Path, output_dir: Path, baseline: bool, seed: int | None = None
) -> TrainingConfig:
    """The `TrainingConfig` the entry's recipe (or its UNet baseline) trains with on ``dataset``; ``seed`` replaces the
    recipe's."""
    settings = training_settings(entry, dataset, output_dir, baseline)
    if seed is not None:
        settings["seed"] = seed
    return TrainingConfig.from_dict(settings, f"zoo entry {entry.name}")


def baseline_fingerprint(entry: ZooEntry) -> str:
    """sha256 of what trains the entry's UNet: its settings and the entry's data.

    A recorded UNet score stands while this holds, so that a lever of the DINOv2 recipe alone need not retrain it.
    """
    settings = training_settings(entry, Path(), Path(), baseline=True)
    del settings["dataset"], settings["output_dir"]
    text = json.dumps({"settings": settings, "data": dataclasses.asdict(entry.data)}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Where a run read and wrote, and whether it was resumed: not what it learnt.
PLACE_FIELDS = ("dataset", "output_dir", "resume_from_checkpoint")


def recipe_differences(entry: ZooEntry, run_config: TrainingConfig, baseline: bool = False) -> list[str]:
    """The training settings in which ``run_config`` departs from the entry's recipe (``baseline``: its UNet), each as
    ``"field: the run's value (the recipe's: value)"``; places and resumption (:data:`PLACE_FIELDS`) left out."""
    expected = recipe_config(entry, Path(run_config.dataset), Path(run_config.output_dir), baseline).to_dict()
    actual = run_config.to_dict()
    return [
        f"{field}: {actual[field]!r} (the recipe's: {expected[field]!r})"
        for field in expected
        if field not in PLACE_FIELDS and actual[field] != expected[field]
    ]


def check_run_matches_recipe(entry: ZooEntry, run_dir: Path, baseline: bool = False) -> None:
    """Refuse to ship a run, or its UNet, that the entry's current recipe did not train (an older recipe, another seed).

    Raises:
        ValueError: naming the run's config file and each setting that differs.
    """
    config_file = RunLayout(run_dir).config_file
    differences = recipe_differences(entry, load_config(config_file), baseline)
    if differences:
        what = "UNet baseline" if baseline else "recipe"
        raise ValueError(
            f"{config_file}: not trained by zoo entry {entry.name}'s {what}: {'; '.join(differences)} "
            f"(train it with geofm zoo train {entry.name}{' --baseline' if baseline else ''})"
        )


def dataset_folder(entry: ZooEntry, output: Path) -> Path:
    """Where ``geofm zoo train`` keeps the entry's dataset (its name is the one cards and results show)."""
    return output / f"{entry.name}-dataset"


def train_entry(
    entry: ZooEntry, data_root: Path, output: Path, baseline: bool = False, seed: int | None = None
) -> Path:
    """Train the entry's recipe (``baseline``: the UNet at the same budget) into ``output``; returns the run folder.

    The dataset folder ``output/<name>-dataset`` is built on first use and reused after. Training uses ``entry.threads`` CPU
    threads, the setting its budget was measured with. ``seed`` replaces the recipe's, to measure how far runs of one
    recipe spread (such a run is not shippable: see `check_run_matches_recipe`).
    """
    from ..training import train

    dataset = dataset_folder(entry, output)
    if not (dataset / "README.md").is_file():
        build_entry_dataset(entry, data_root, dataset, overwrite=True)
    run_dir = output / (BASELINE_SUBFOLDER if baseline else RUN_SUBFOLDER)
    config = recipe_config(entry, dataset, run_dir, baseline, seed)
    if config.max_steps is None:
        raise ValueError(f"zoo entry {entry.name}: its recipe needs max_steps (the schedule's length)")
    torch.set_num_threads(entry.threads)
    train(config)
    return run_dir


__all__ = [
    "PLACE_FIELDS",
    "baseline_fingerprint",
    "build_entry_dataset",
    "check_run_matches_recipe",
    "dataset_folder",
    "entry_splits",
    "recipe_config",
    "recipe_differences",
    "train_entry",
    "training_settings",
]
