"""Decoders: one module per decoder, each registering itself under the name ``GeoFMConfig.decoder`` uses."""

from .base import GeoDecoder, register_decoder
from .registry import DECODERS, DEFAULT_DECODER, build_decoder, check_decoder_name

__all__ = ["DECODERS", "DEFAULT_DECODER", "GeoDecoder", "build_decoder", "check_decoder_name", "register_decoder"]
