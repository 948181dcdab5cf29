"""Whole-survey inference: tiled, blended prediction of sections and volumes, streamed from and to disk.

A prediction is planned once (:func:`plan_prediction`: output mode, directions, tiles, result shape) and run by
:func:`predict_with_plan`; :func:`predict_tiled` does both, ``geofm predict`` builds the plan itself to size its output.
Under a launcher, :func:`predict_across_processes` splits a volume's sections over the processes of a
:class:`ProcessGroup` and assembles one output equal to the one-process result (:mod:`.distributed`).
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
from .distributed import (
    PeerFailed,
    ProcessGroup,
    assemble_shares,
    predict_across_processes,
    predict_share,
    section_share,
)
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
    "PeerFailed",
    "PredictionPlan",
    "ProcessGroup",
    "SectionPredictor",
    "SegyReader",
    "SegyWriter",
    "SurveyGeometry",
    "TileGrid",
    "VolumeReader",
    "as_prediction_input",
    "assemble_shares",
    "create_output",
    "default_tile",
    "open_input",
    "plan_prediction",
    "predict_across_processes",
    "predict_share",
    "predict_tiled",
    "predict_with_plan",
    "resolve_class",
    "section_share",
    "window_weights",
]
