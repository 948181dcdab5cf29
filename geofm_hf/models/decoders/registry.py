"""Every decoder, by name: importing this module registers them all in :data:`DECODERS`.

Each decoder module names itself with ``@register_decoder``; the imports below are what runs those decorators (and,
written as plain relative imports, what lets the model's code travel to the Hub as remote code).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from .base import DECODERS, GeoDecoder
from .dpt import DPTDecoder
from .linear import LinearDecoder
from .mla import MLADecoder
from .pup import PUPDecoder
from .upernet import UperNetDecoder

# The study's shipped run scripts all use MLA.
DEFAULT_DECODER = "mla"


def check_decoder_name(name: str, field: str = "decoder") -> None:
    """Refuse a decoder name that is not registered, listing the registered ones."""
    if name not in DECODERS:
        raise ValueError(f"{field}={name!r} is unknown; known decoders: {', '.join(sorted(DECODERS))}")


def build_decoder(name: str, in_channels: Sequence[int], num_labels: int, settings: dict | None = None) -> GeoDecoder:
    """Instantiate the decoder called ``name``; unknown names and settings raise errors listing what is accepted."""
    check_decoder_name(name)
    decoder_class = DECODERS[name]
    accepted = list(inspect.signature(decoder_class).parameters)[2:]
    unknown = sorted(set(settings or {}) - set(accepted))
    if unknown:
        raise ValueError(
            f"decoder_kwargs has unknown keys {unknown} for decoder {name!r}; valid keys: {', '.join(accepted) or 'none'}"
        )
    return decoder_class(list(in_channels), num_labels, **(settings or {}))


__all__ = [
    "DECODERS",
    "DEFAULT_DECODER",
    "DPTDecoder",
    "GeoDecoder",
    "LinearDecoder",
    "MLADecoder",
    "PUPDecoder",
    "UperNetDecoder",
    "build_decoder",
    "check_decoder_name",
]
