"""Datasets of the five tasks as Hub datasets.

Source readers are registered by name in :data:`SOURCES` (original formats in :mod:`.sources`, the study's release
layout in :mod:`.study`, seeded generators in :mod:`.synthetic`); :mod:`.builder` validates their sections, streams
them into a ``DatasetDict`` and writes a folder laid out as a Hub dataset repo, with the card from :mod:`geofm_hf.hub.dataset_card`.
"""

from ..hub import CardInfo, make_dataset_card
from .builder import (
    SPLITS,
    build_dataset_dict,
    build_dataset_folder,
    load_sources,
    push_dataset_folder,
    read_source,
    validate_section,
    write_dataset_folder,
)
from .records import SOURCES, Section, SourceSpec, get_source, register_source

__all__ = [
    "SOURCES",
    "SPLITS",
    "CardInfo",
    "Section",
    "SourceSpec",
    "build_dataset_dict",
    "build_dataset_folder",
    "get_source",
    "load_sources",
    "make_dataset_card",
    "push_dataset_folder",
    "read_source",
    "register_source",
    "validate_section",
    "write_dataset_folder",
]
