"""Decoder registry: one module per decoder, each registering itself under a name used by ``GeoFMConfig.decoder``."""

from .base import DECODERS, GeoDecoder, build_decoder, register_decoder
from . import dpt, linear, mla, pup, upernet  # noqa: F401  (import registers the decoders)

__all__ = ["DECODERS", "GeoDecoder", "build_decoder", "register_decoder"]
