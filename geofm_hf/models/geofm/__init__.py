"""GeoFM: a vision foundation-model backbone with a light segmentation decoder, and its image processor."""

from .configuration_geofm import GeoFMConfig
from .image_processing_geofm import GeoFMImageProcessor
from .modeling_geofm import GeoFMForSemanticSegmentation, GeoFMPreTrainedModel

__all__ = ["GeoFMConfig", "GeoFMForSemanticSegmentation", "GeoFMImageProcessor", "GeoFMPreTrainedModel"]
