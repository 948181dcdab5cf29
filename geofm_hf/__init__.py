"""geofm_hf: Hugging Face-native adaptation of vision foundation models to geophysical data.

Importing the package loads only the model layer (:mod:`geofm_hf.models`), which registers its configs, models and
image processor with transformers' Auto classes. The workflows (``data``, ``training``, ``evaluation``,
``inference``, ``hub``, ``io``) are imported when used; :func:`predict_tiled` is loaded on first access.
"""

from __future__ import annotations

from typing import Any

from . import models
from .models import (
    BACKBONE_PRESETS,
    DECODERS,
    TASKS,
    GeoFMConfig,
    GeoFMForSemanticSegmentation,
    GeoFMImageProcessor,
    GeoUNetConfig,
    GeoUNetForSemanticSegmentation,
    SECTION_TASK,
    SectionSegmentationPipeline,
    build_segmenter,
    get_task,
    segmenter_config,
)

__version__ = "0.2.0"

# Public names served from workflow packages, imported on first access (they pull in segyio and friends).
_LAZY = {"predict_tiled": "geofm_hf.inference"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geofm_hf' has no attribute {name!r}")


__all__ = [*models.__all__, "__version__", "predict_tiled"]
