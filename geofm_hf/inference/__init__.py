"""Whole-survey inference: tiled, blended prediction of sections and volumes, streamed from and to disk."""

from ..io import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    SECTION_AXES,
    ArrayReader,
    MappedArray,
    SegyReader,
    SegyWriter,
    SurveyGeometry,
    VolumeReader,
    create_output,
    open_input,
)
from .blending import BLEND_WINDOWS, window_weights
from .tiling import DEFAULT_TILE, OutputMode, SectionPredictor, TileGrid, default_tile, predict_tiled, resolve_class

__all__ = [
    "BLEND_WINDOWS",
    "DEFAULT_TILE",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "SECTION_AXES",
    "ArrayReader",
    "MappedArray",
    "OutputMode",
    "SectionPredictor",
    "SegyReader",
    "SegyWriter",
    "SurveyGeometry",
    "TileGrid",
    "VolumeReader",
    "create_output",
    "default_tile",
    "open_input",
    "predict_tiled",
    "resolve_class",
    "window_weights",
]
