"""Test-suite wide settings and shared fixtures.

The suite is hermetic: no Hub (``HF_HUB_OFFLINE=1``), caches in a temporary folder, data generated here.
Fixtures shared by several test modules live here; test modules never import each other.
"""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="geofm-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

from collections.abc import Callable  # noqa: E402  (after the environment above, which the imports read)
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import geofm_hf  # noqa: E402

# Tiny backbones of each family: a model builds and runs in milliseconds.
TINY_BACKBONES = {
    "dinov2-small": dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2),
    "convnext-tiny": dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1]),
    "swin-tiny": dict(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2]),
}


@pytest.fixture(scope="session")
def tiny_backbone() -> dict:
    """Overrides that make the DINOv2-S preset tiny (32 wide, 4 blocks)."""
    return dict(TINY_BACKBONES["dinov2-small"])


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., geofm_hf.GeoFMConfig]:
    """``tiny_config(task="fault", decoder="linear", backbone="dinov2-small", **config_fields)``: a GeoFM config
    with a tiny backbone of the preset's family."""

    def make(task: str = "fault", decoder: str = "linear", backbone: str = "dinov2-small", **kwargs) -> geofm_hf.GeoFMConfig:
        return geofm_hf.GeoFMConfig.for_task(
            task, backbone=backbone, decoder=decoder, backbone_overrides=TINY_BACKBONES[backbone], **kwargs
        )

    return make


@pytest.fixture(scope="session")
def tiny_model(tiny_config) -> Callable[..., geofm_hf.GeoFMForSemanticSegmentation]:
    """``tiny_model(**tiny_config_arguments)``: a seeded tiny GeoFM model in eval mode."""

    def make(**kwargs) -> geofm_hf.GeoFMForSemanticSegmentation:
        torch.manual_seed(0)
        return geofm_hf.GeoFMForSemanticSegmentation(tiny_config(**kwargs)).eval()

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model) -> Path:
    """A saved tiny fault model (linear decoder) with its image processor: what ``geofm train`` leaves in best/."""
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny_model().save_pretrained(folder)
    geofm_hf.GeoFMImageProcessor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def small_volume() -> np.ndarray:
    """A (6 inlines, 5 crosslines, 40 samples) float32 cube with a different value at every position."""
    return np.random.default_rng(7).standard_normal((6, 5, 40)).astype(np.float32)


@pytest.fixture(scope="session")
def segy_file(tmp_path_factory, small_volume) -> Path:
    """``small_volume`` as a sorted IEEE-float SEG-Y (inlines 10.., crosslines 20..)."""
    import segyio

    path = tmp_path_factory.mktemp("segy") / "volume.sgy"
    spec = segyio.spec()
    spec.format, spec.sorting = 5, segyio.TraceSortingFormat.INLINE_SORTING
    spec.ilines, spec.xlines = list(range(10, 10 + small_volume.shape[0])), list(range(20, 20 + small_volume.shape[1]))
    spec.samples = list(range(small_volume.shape[2]))
    with segyio.create(path, spec) as handle:
        for index, (inline, crossline) in enumerate((i, x) for i in spec.ilines for x in spec.xlines):
            handle.header[index] = {segyio.su.iline: inline, segyio.su.xline: crossline}
            handle.trace[index] = small_volume.reshape(-1, small_volume.shape[2])[index]
        handle.bin.update(tsort=segyio.TraceSortingFormat.INLINE_SORTING)
    return path


@pytest.fixture(scope="session")
def dataset_folder(tmp_path_factory) -> Path:
    """A synthetic fault dataset folder (Parquet + card): 20 sections of 28x28 split 70/15/15."""
    from geofm_hf.data.builder import build_dataset_folder

    folder = tmp_path_factory.mktemp("dataset") / "fault"
    return build_dataset_folder("fault", "synthetic", folder, options={"num": 20, "size": "28,28", "seed": 0})
