"""geofm_hf: Hugging Face-native adaptation of vision foundation models to geophysical data.

Importing the package registers its configs, models and image processor with transformers' Auto classes.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForSemanticSegmentation

from .backbones import BACKBONE_PRESETS
from .configuration_geofm import GeoFMConfig
from .configuration_unet import GeoUNetConfig
from .decoders import DECODERS
from .image_processing_geofm import GeoFMImageProcessor
from .inference import predict_tiled
from .modeling_geofm import GeoFMForSemanticSegmentation
from .modeling_unet import GeoUNetForSemanticSegmentation
from .tasks import TASKS, get_task

__version__ = "0.1.0"


def _register_auto_classes() -> None:
    for config_class, model_class in (
        (GeoFMConfig, GeoFMForSemanticSegmentation),
        (GeoUNetConfig, GeoUNetForSemanticSegmentation),
    ):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoModelForSemanticSegmentation.register(config_class, model_class, exist_ok=True)
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": GeoFMImageProcessor}, exist_ok=True)


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
    "get_task",
    "predict_tiled",
]
