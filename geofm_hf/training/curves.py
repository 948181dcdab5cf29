"""Training curves: the history as JSON lines (written as training goes) and as a PNG (written at the end)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.atomic import write_atomically


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as a line of JSON (flushed, so a killed run keeps what it logged)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace the file with ``records`` (used on resume: entries logged after the checkpoint are dropped)."""
    text = "".join(json.dumps(record) + "\n" for record in records)
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def plot_training_curves(history: Iterable[Mapping[str, Any]], path: str | os.PathLike, title: str = "") -> Path:
    """Draw training loss, learning rates and validation scores against the optimiser step, as a PNG.

    Args:
        history: records with ``step`` and either ``loss``/``learning_rate``/``head_learning_rate`` (training
            logs) or ``validation`` (a dict of scores with ``mean_iou`` and ``mean_pixel_accuracy``).
        path: PNG to write (through a temporary sibling, then renamed).
        title: figure title.
    """
    history = list(history)
    train = [r for r in history if "loss" in r]
    evals = [r for r in history if "validation" in r]
    figure = Figure(figsize=(12, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, lr_axes, eval_axes = figure.subplots(1, 3)
    loss_axes.plot([r["step"] for r in train], [r["loss"] for r in train], marker=".")
    loss_axes.set(xlabel="optimiser step", ylabel="training loss", title="loss")
    for key, label in (("learning_rate", "backbone"), ("head_learning_rate", "head")):
        lr_axes.plot([r["step"] for r in train], [r[key] for r in train], label=label)
    lr_axes.set(xlabel="optimiser step", ylabel="learning rate", title="learning rate")
    lr_axes.legend()
    for key, label in (("mean_iou", "mIoU"), ("mean_pixel_accuracy", "mPA")):
        eval_axes.plot([r["step"] for r in evals], [r["validation"][key] for r in evals], marker="o", label=label)
    eval_axes.set(xlabel="optimiser step", ylabel="score", title="validation (dataset-level)", ylim=(0, 1))
    eval_axes.legend()
    if title:
        figure.suptitle(title)
    return write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))


__all__ = ["append_jsonl", "plot_training_curves", "write_jsonl"]
