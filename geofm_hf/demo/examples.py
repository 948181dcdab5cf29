"""The examples bundled with the demo: small sections with their labels, listed in ``examples/examples.json``.

They are synthetic (made by :mod:`geofm_hf.data.synthetic`) or crops of data whose licence allows redistribution
with attribution (F3 Netherlands, CC BY-SA 3.0; Penobscot, CC BY 4.0); ``scripts/make_demo_examples.py`` writes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MANIFEST_FILE = "examples.json"


@dataclass(frozen=True)
class Example:
    """One bundled example.

    Attributes:
        name: short identifier (the file stem).
        title: what the page shows in the examples table.
        task: the geofm_hf task whose models it suits (a name in :data:`~geofm_hf.models.tasks.TASKS`).
        section: the section file (PNG, ``.npy`` or SEG-Y).
        label: its label file (class ids), or None.
        label_names: the class names of the label's ids, in id order.
        source: where it comes from.
        licence: the licence and attribution of its data.
    """

    name: str
    title: str
    task: str
    section: Path
    label: Path | None
    label_names: tuple[str, ...]
    source: str
    licence: str


@cache
def list_examples() -> tuple[Example, ...]:
    """The bundled examples, in the manifest's order."""
    records = json.loads((EXAMPLES_DIR / MANIFEST_FILE).read_text(encoding="utf-8"))
    return tuple(
        Example(
            name=record["name"],
            title=record["title"],
            task=record["task"],
            section=EXAMPLES_DIR / record["section"],
            label=EXAMPLES_DIR / record["label"] if record.get("label") else None,
            label_names=tuple(record["label_names"]),
            source=record["source"],
            licence=record["licence"],
        )
        for record in records
    )


def _digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@cache
def _examples_by_digest() -> dict[str, Example]:
    return {_digest(example.section): example for example in list_examples()}


def find_example(path: str | os.PathLike | None) -> Example | None:
    """The bundled example whose section file has the same bytes as ``path``, or None.

    Compared by content, not name: the page hands over copies of the examples under other folders, and a user's own
    file may share an example's name.
    """
    if path is None or not any(os.path.getsize(path) == example.section.stat().st_size for example in list_examples()):
        return None
    return _examples_by_digest().get(_digest(path))


__all__ = ["EXAMPLES_DIR", "MANIFEST_FILE", "Example", "find_example", "list_examples"]
