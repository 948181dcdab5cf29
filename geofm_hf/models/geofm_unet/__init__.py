"""The study's UNet baseline, trained from scratch (it uses the GeoFM image processor)."""

from .configuration_geofm_unet import GeoUNetConfig
from .modeling_geofm_unet import GeoUNetForSemanticSegmentation, GeoUNetPreTrainedModel

__all__ = ["GeoUNetConfig", "GeoUNetForSemanticSegmentation", "GeoUNetPreTrainedModel"]
