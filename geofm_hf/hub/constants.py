"""What every repo published by ``geofm_hf`` shares: the card's file, tags and licence, the adapter layout, the
default commit messages and the card templates shipped with the package."""

from __future__ import annotations

from pathlib import Path

# The Hub reads a repo's card, model or dataset alike, from this file at the repo root.
CARD_FILE = "README.md"
# The name training code reads a saved model card by.
MODEL_CARD_FILE = CARD_FILE

PIPELINE_TAG = "image-segmentation"
# Hub search tags of every card; model cards add the pipeline tag, both add the task's own tags.
BASE_TAGS = ("geophysics", "geofm_hf")
MODEL_TAGS = (*BASE_TAGS, PIPELINE_TAG)
# Licence of the models (the datasets keep their source's licence, `TaskSpec.license`).
MODEL_LICENSE = "apache-2.0"

ADAPTER_SUBFOLDER = "adapter"
# peft's file names (peft.utils.constants), spelled out so that staging does not import peft.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

REPO_TYPES = ("model", "dataset")
DEFAULT_COMMIT_MESSAGE = "Upload with geofm_hf"
DEFAULT_MODEL_COMMIT_MESSAGE = "Upload model trained with geofm_hf"

# Jinja templates of the card bodies, rendered by `huggingface_hub`'s `ModelCard`/`DatasetCard.from_template`.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MODEL_CARD_TEMPLATE = TEMPLATES_DIR / "model_card.md"
DATASET_CARD_TEMPLATE = TEMPLATES_DIR / "dataset_card.md"

__all__ = [
    "ADAPTER_FILES",
    "ADAPTER_SUBFOLDER",
    "BASE_TAGS",
    "CARD_FILE",
    "DATASET_CARD_TEMPLATE",
    "DEFAULT_COMMIT_MESSAGE",
    "DEFAULT_MODEL_COMMIT_MESSAGE",
    "MODEL_CARD_FILE",
    "MODEL_CARD_TEMPLATE",
    "MODEL_LICENSE",
    "MODEL_TAGS",
    "PIPELINE_TAG",
    "REPO_TYPES",
    "TEMPLATES_DIR",
]
