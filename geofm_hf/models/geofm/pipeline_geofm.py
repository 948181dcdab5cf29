"""A transformers pipeline for amplitude sections: ``pipeline("section-segmentation", model=...)``.

``pipeline("image-segmentation")`` takes pictures (PIL images, PNG paths); seismic, DAS and DEM data are float
arrays, which transformers' ``load_image`` refuses. This pipeline takes a 2-D float array (numpy, torch or nested
lists), a ``.npy`` file, or a SEG-Y file with a section index, and returns the class map, the class probabilities and
one mask per class. It is saved next to every geofm model (``config.json`` ``custom_pipelines``), so
``pipeline("section-segmentation", model=repo_id, trust_remote_code=True)`` works where geofm_hf is not installed.
Whole surveys are better served by ``geofm_hf.predict_tiled`` / ``geofm predict`` (tiles, blending, bounded memory).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import Pipeline

SECTION_TASK = "section-segmentation"
SEGY_SUFFIXES = (".sgy", ".segy")
SEGY_AXES = ("inline", "crossline", "time")


def _segy_section(path: str, index: int, axis: str) -> np.ndarray:
    """One section of a regular SEG-Y file as (samples or crosslines, traces) float32, depth/time down."""
    try:  # imported here: arrays need no segyio, and `import geofm_hf` must not load it
        import segyio
    except ImportError as error:
        raise ImportError(f"{path}: reading SEG-Y needs segyio (pip install segyio)") from error
    if axis not in SEGY_AXES:
        raise ValueError(f"axis={axis!r} is unknown; expected one of {', '.join(SEGY_AXES)}")
    with segyio.open(path, "r") as handle:
        lines = {"inline": handle.ilines, "crossline": handle.xlines, "time": range(len(handle.samples))}[axis]
        if not 0 <= index < len(lines):
            raise ValueError(f"{path}: section={index} is outside 0..{len(lines) - 1} along {axis}")
        if axis == "time":
            return np.asarray(handle.depth_slice[index], dtype=np.float32)
        view = handle.iline if axis == "inline" else handle.xline
        return np.asarray(view[lines[index]], dtype=np.float32).T


def load_section(section: Any, index: int = 0, axis: str = "inline") -> np.ndarray:
    """A 2-D float32 array from an array-like, a ``.npy`` path or a SEG-Y path (``index``/``axis`` pick the section)."""
    if isinstance(section, str):
        if section.lower().endswith(SEGY_SUFFIXES):
            return _segy_section(section, index, axis)
        if section.lower().endswith(".npy"):
            section = np.load(section, allow_pickle=False)
        else:
            raise ValueError(f"{section}: expected a .npy or SEG-Y ({', '.join(SEGY_SUFFIXES)}) file")
    array = section.detach().cpu().numpy() if isinstance(section, torch.Tensor) else np.asarray(section)
    if array.ndim != 2:
        raise ValueError(f"a section must be 2-D (height, width); got shape {array.shape}")
    return array.astype(np.float32, copy=False)


class SectionSegmentationPipeline(Pipeline):
    """Segment one amplitude section.

    Call with a section (array, ``.npy`` or SEG-Y path); for SEG-Y also ``section=INDEX`` and
    ``axis="inline" | "crossline" | "time"``. Returns a dict: ``segmentation`` (height, width) class ids,
    ``probabilities`` (num_labels, height, width) float32, ``masks`` (a list of ``{"label", "mask"}`` per class
    present, boolean masks) and ``id2label``.
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(self, section: int | None = None, axis: str | None = None, **kwargs):
        preprocess = {key: value for key, value in (("index", section), ("axis", axis)) if value is not None}
        return preprocess, {}, {}

    def preprocess(self, inputs: Any, index: int = 0, axis: str = "inline") -> dict[str, Any]:
        array = load_section(inputs, index, axis)
        return dict(self.image_processor(array, return_tensors="pt"))

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(pixel_values=model_inputs["pixel_values"].to(self.device)).logits}

    def postprocess(self, model_outputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        logits = model_outputs["logits"][0].float()
        probabilities = logits.softmax(dim=0).cpu().numpy()
        segmentation = probabilities.argmax(axis=0)
        id2label = {int(key): value for key, value in self.model.config.id2label.items()}
        masks = [{"label": id2label[int(c)], "mask": segmentation == c} for c in np.unique(segmentation)]
        return {"segmentation": segmentation, "probabilities": probabilities, "masks": masks, "id2label": id2label}


def custom_pipelines_entry() -> dict[str, dict[str, Any]]:
    """The ``custom_pipelines`` of a saved ``config.json``: how transformers finds this pipeline in a model folder."""
    return {
        SECTION_TASK: {
            "impl": f"{__name__.split('.')[-1]}.{SectionSegmentationPipeline.__name__}",
            "pt": ["AutoModelForSemanticSegmentation"],
            "type": "image",
        }
    }


__all__ = ["SECTION_TASK", "SectionSegmentationPipeline", "custom_pipelines_entry", "load_section"]
