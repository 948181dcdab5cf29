"""Whole-survey inference: tiled, blended prediction of sections and volumes, streamed from and to disk.

A prediction is planned once (:func:`plan_prediction`: output mode, directions, tiles, result shape) and run by
:func:`predict_with_plan`; :func:`predict_tiled` does both, ``geofm predict`` builds the plan itself to size its output.
"""

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
from .plan import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    OutputMode,
    PredictionPlan,
    TileGrid,
    default_tile,
    plan_prediction,
    resolve_class,
)
from .tiling import SectionPredictor, as_prediction_input, predict_tiled, predict_with_plan

__all__ = [
    "BLEND_WINDOWS",
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "SECTION_AXES",
    "ArrayReader",
    "MappedArray",
    "OutputMode",
    "PredictionPlan",
    "SectionPredictor",
    "SegyReader",
    "SegyWriter",
    "SurveyGeometry",
    "TileGrid",
    "VolumeReader",
    "as_prediction_input",
    "create_output",
    "default_tile",
    "open_input",
    "plan_prediction",
    "predict_tiled",
    "predict_with_plan",
    "resolve_class",
    "window_weights",
]
