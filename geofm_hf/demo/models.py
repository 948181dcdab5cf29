"""The models a demo page offers: the zoo's entries and those named on the command line, loaded on first use."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..evaluation import load_model_and_processor
from ..evaluation.evaluate import label_names
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..zoo import ZOO_PREFIX, list_entries

# Models kept loaded at once: each DINOv2-S model holds ~90 MB, and a page rarely switches between more.
MODELS_KEPT = 3


@dataclass(frozen=True)
class ModelChoice:
    """A model the page offers.

    Attributes:
        reference: what :func:`~geofm_hf.evaluation.load_model_and_processor` loads (``zoo:NAME``, a folder or a
            Hub id).
        label: what the model chooser shows.
        task: the model's task where known without loading it, else None.
        about: Markdown lines about it (summary, training data licence, recorded scores), without its classes.
    """

    reference: str
    label: str
    task: str | None
    about: str


def _score_line(scores: dict) -> str:
    """The entry's headline: its test mIoU next to the UNet at the same budget and the study's figures."""
    parts = [f"test mIoU {scores['test_miou']:.3f} on {scores['test_sections']} test sections"]
    if "unet_test_miou" in scores:
        parts.append(f"UNet at the same budget {scores['unet_test_miou']:.3f}")
    parts.append(f"the study (its own data) {scores['study_best_miou']:.3f} / UNet {scores['study_unet_miou']:.3f}")
    return "; ".join(parts)


def _zoo_choice(entry) -> ModelChoice:
    lines = [f"**{entry.name}** ({entry.task}): {entry.summary}", f"Training data licence: {entry.licence}"]
    if entry.scores:
        lines.append(f"Scores: {_score_line(entry.scores)}. Labels: {entry.data.labels}")
    return ModelChoice(f"{ZOO_PREFIX}{entry.name}", f"{entry.name} ({entry.task})", entry.task, "  \n".join(lines))


def _shipped(entry) -> bool:
    return entry.shipped


def _local_task(reference: str) -> str | None:
    """The task written in a local model folder's config, without loading the model (None for Hub ids)."""
    config = Path(reference) / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("task")


def model_choices(references: Sequence[str] = ()) -> list[ModelChoice]:
    """The models named in ``references`` first (what the user asked to see; the first is chosen when the page
    opens), then the zoo's other shipped entries.

    Raises:
        ValueError: there is nothing to offer (no zoo entry and no reference).
    """
    # Entries whose weights are not shipped yet cannot be loaded: they are not offered.
    zoo = {choice.reference: choice for choice in map(_zoo_choice, filter(_shipped, list_entries()))}
    named = [
        zoo.pop(reference, None) or ModelChoice(reference, reference, _local_task(reference), f"**{reference}**")
        for reference in dict.fromkeys(str(reference) for reference in references)
    ]
    choices = named + list(zoo.values())
    if not choices:
        raise ValueError("no model to offer: the zoo has no shipped entries; name one with --model PATH_OR_REPO_ID")
    return choices


@functools.lru_cache(maxsize=MODELS_KEPT)
def load_choice(reference: str) -> tuple[nn.Module, GeoFMImageProcessor]:
    """The model and image processor of ``reference``, loaded once and kept (the :data:`MODELS_KEPT` last used)."""
    model, processor = load_model_and_processor(reference)
    return model.eval(), processor


def class_names(model: nn.Module) -> list[str]:
    """The model's class names in class-id order."""
    return label_names(model.config)


__all__ = ["MODELS_KEPT", "ModelChoice", "class_names", "load_choice", "model_choices"]
