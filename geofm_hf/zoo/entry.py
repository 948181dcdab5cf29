"""A zoo entry as data: what it segments, the data and recipe that make it, its licence, weights and scores.

Each entry is one JSON file in ``geofm_hf/zoo/entries/``: the parts a maintainer writes (task, data, recipe,
licence, citations) and the parts :func:`geofm_hf.zoo.ship.ship_run` fills from a finished run (``model``,
``weights``, ``scores``, ``reference_predictions``). Reading never imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENTRIES_DIR = Path(__file__).resolve().parent / "entries"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
ZOO_PREFIX = "zoo:"
# ``zoo:NAME@hub``: the entry's pushed repo at its pinned commit instead of the weights inside the package.
HUB_SUFFIX = "@hub"
# A pin is a commit: a branch or a tag can move after the scores were measured.
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class DataPart:
    """Sections read by one registered source (`geofm_hf.data.records.SOURCES`).

    Attributes:
        source: source name (``tgs``, ``png``, ``boxes``, ``dat``, ``npz``, ``synthetic``, ...).
        input: the source's folder, relative to the data root given to ``geofm zoo train`` (None for synthetic).
        options: the reader's options.
    """

    source: str
    input: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ZooData:
    """The data an entry is trained and tested on.

    Attributes:
        train: sections of the train split; validation (and test, when ``test`` is empty) are carved from its end.
        test: parts read as the test split instead (real data for models trained on synthetic sections).
        validation_fraction, test_fraction: shares of train carved out (`geofm_hf.data.builder.assign_splits`).
        split: how the split is made, in words (for the card and ``geofm zoo list``).
        labels: where the labels come from and how far to trust them.
        citation: BibTeX of the data the entry was trained and tested on.
    """

    train: DataPart
    split: str
    labels: str
    citation: str
    test: tuple[DataPart, ...] = ()
    validation_fraction: float = 0.1
    test_fraction: float = 0.2


@dataclass(frozen=True)
class ZooWeights:
    """The shipped files of an entry (a peft LoRA adapter with the trained decoder), pinned by sha256."""

    folder: str
    sha256: dict[str, str]
    dtype: str
    num_bytes: int


@dataclass(frozen=True)
class ZooHub:
    """Where an entry was published (``geofm zoo push NAME REPO_ID --pin``): a Hub model repo at one commit."""

    repo_id: str
    revision: str

    def __post_init__(self) -> None:
        if not COMMIT_SHA.fullmatch(self.revision):
            raise ValueError(
                f"hub.revision must be a 40-hex commit sha (a branch or tag can move); got {self.revision!r}"
            )


@dataclass(frozen=True)
class ZooEntry:
    """One trained model of the zoo.

    Attributes:
        name: the entry's name (``zoo:NAME``).
        task: task name (`geofm_hf.models.tasks.TASKS`).
        summary: one line on what it segments.
        licence: licence of the training and test data (the weights inherit its terms).
        data: see :class:`ZooData`.
        recipe: the `geofm_hf.training.TrainingConfig` settings besides ``dataset`` and ``output_dir``.
        baseline: what changes in ``recipe`` for the UNet trained at the same budget.
        threads: CPU threads the recipe's budget was measured with.
        extracted_lora_rank: for a fully fine-tuned recipe, the rank of the LoRA adapter extracted from it to ship
            (`geofm_hf.zoo.extract`); None when the recipe trains LoRA itself.
        model: model settings and provenance of the shipped weights (filled when shipped).
        weights: the shipped files (filled when shipped).
        scores: measured scores (filled when shipped).
        reference_predictions: predictions of the shipped model on fixed inputs, checked by the test suite.
        hub: the pushed repo and commit ``zoo:NAME@hub`` loads (and ``zoo:NAME`` when nothing is shipped); None
            when the entry has not been pushed.
    """

    name: str
    task: str
    summary: str
    licence: str
    data: ZooData
    recipe: dict[str, Any]
    baseline: dict[str, Any]
    threads: int = 1
    extracted_lora_rank: int | None = None
    model: dict[str, Any] | None = None
    weights: ZooWeights | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    reference_predictions: list[dict[str, Any]] = field(default_factory=list)
    hub: ZooHub | None = None

    @property
    def file(self) -> Path:
        return ENTRIES_DIR / f"{self.name}.json"

    @property
    def shipped(self) -> bool:
        return self.weights is not None

    @property
    def weights_dir(self) -> Path:
        if self.weights is None:
            raise ValueError(f"zoo entry {self.name!r} has no shipped weights yet (train it: geofm zoo train {self.name})")
        return WEIGHTS_DIR / self.weights.folder

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "ZooEntry":
        """Build an entry from its JSON data; a missing or unknown field raises ValueError naming ``source``."""
        try:
            raw = dict(data)
            zoo_data = dict(raw.pop("data"))
            zoo_data["train"] = DataPart(**zoo_data["train"])
            zoo_data["test"] = tuple(DataPart(**part) for part in zoo_data.get("test", ()))
            weights, hub = raw.pop("weights", None), raw.pop("hub", None)
            return cls(
                data=ZooData(**zoo_data),
                weights=None if weights is None else ZooWeights(**weights),
                hub=None if hub is None else ZooHub(**hub),
                **raw,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: not a valid zoo entry ({error})") from None


def read_entry(path: Path) -> ZooEntry:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    return ZooEntry.from_dict(data, str(path))


def read_entries() -> dict[str, ZooEntry]:
    """Every entry in ``geofm_hf/zoo/entries``, by name."""
    entries = {}
    for path in sorted(ENTRIES_DIR.glob("*.json")):
        entry = read_entry(path)
        if entry.name != path.stem:
            raise ValueError(f"{path}: its name {entry.name!r} differs from the file's name {path.stem!r}")
        entries[entry.name] = entry
    return entries


def split_reference(reference: str) -> tuple[str, bool]:
    """The entry name in ``reference`` (``NAME``, ``zoo:NAME`` or ``zoo:NAME@hub``) and whether it asks for the Hub."""
    name = reference.removeprefix(ZOO_PREFIX)
    return name.removesuffix(HUB_SUFFIX), name.endswith(HUB_SUFFIX)


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name`` (with or without the ``zoo:`` prefix and ``@hub`` suffix); KeyError lists them."""
    entries = read_entries()
    key, _ = split_reference(name)
    if key not in entries:
        raise KeyError(f"no zoo entry {key!r}; the zoo holds: {', '.join(entries) or 'nothing'}")
    return entries[key]


__all__ = [
    "DataPart",
    "ENTRIES_DIR",
    "HUB_SUFFIX",
    "WEIGHTS_DIR",
    "ZOO_PREFIX",
    "ZooData",
    "ZooEntry",
    "ZooHub",
    "ZooWeights",
    "get_entry",
    "read_entries",
    "split_reference",
]
