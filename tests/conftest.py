"""Test-suite wide settings and shared fixtures.

The suite is hermetic: no Hub (``HF_HUB_OFFLINE=1``), caches in a temporary folder, data generated here.
Fixtures shared by several test modules live here; test modules never import each other. Shared code that is not a
fixture lives in helper modules next to the tests: ``hub_server`` (a local Hub), ``remote_client`` (a user's process
without geofm_hf) and ``stand_ins`` (stand-in models whose predictions are known).
"""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="geofm-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

from collections.abc import Callable, Sequence  # noqa: E402  (after the environment above, which the imports read)
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import geofm_hf  # noqa: E402

# Sample interval of the SEG-Y files written here: 4 ms, as in most marine surveys.
SAMPLE_INTERVAL_US = 4000

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
    """A (6 inlines, 16 crosslines, 40 samples) float32 cube: its inline sections are large enough for a ViT/14."""
    return np.random.default_rng(7).standard_normal((6, 16, 40)).astype(np.float32)


def write_segy(
    path: str | os.PathLike,
    cube: np.ndarray,
    *,
    inlines: Sequence[int] | None = None,
    crosslines: Sequence[int] | None = None,
    order: Sequence[tuple[int, int]] | None = None,
    pairs: Sequence[tuple[int, int]] | None = None,
    sample_format: int = 5,
    endian: str = "big",
) -> Path:
    """Write an (inline, crossline, sample) ``cube`` as SEG-Y with what surveys carry: a text header, the sample
    interval (4 ms) in the binary and every trace header, inline/crossline numbers and scaled CDP coordinates.

    Args:
        path: the file to write.
        cube: the samples of every grid position.
        inlines, crosslines: line numbers of the cube's grid (default 10, 11, ... and 20, 21, ...).
        order: (inline index, crossline index) of each trace in file order (default: inline-sorted, every position);
            leave positions out for a survey with holes.
        pairs: header (inline, crossline) numbers of each trace in file order, instead of the grid's (repeated
            traces, 2-D lines without 3-D numbers).
        sample_format: 5 (IEEE float) or 1 (IBM float).
        endian: byte order of the file, ``"big"`` (the standard) or ``"little"``.
    """
    import segyio

    inlines = np.arange(10, 10 + cube.shape[0]) if inlines is None else inlines
    crosslines = np.arange(20, 20 + cube.shape[1]) if crosslines is None else crosslines
    order = list(np.ndindex(cube.shape[:2])) if order is None else order
    spec = segyio.spec()
    spec.format, spec.endian, spec.tracecount = sample_format, endian, len(order)
    spec.samples = np.arange(cube.shape[2]) * SAMPLE_INTERVAL_US / 1000.0
    with segyio.create(os.fspath(path), spec) as handle:
        text = {1: "GEOFM TEST CUBE", 2: "INLINE BYTE 189 CROSSLINE BYTE 193"}
        handle.text[0] = segyio.tools.create_text_header(text)
        handle.bin.update({segyio.BinField.Interval: SAMPLE_INTERVAL_US, segyio.BinField.JobID: 42})
        for trace, (i, j) in enumerate(order):
            inline, crossline = (int(n) for n in (pairs[trace] if pairs is not None else (inlines[i], crosslines[j])))
            handle.header[trace] = {
                segyio.TraceField.INLINE_3D: inline,
                segyio.TraceField.CROSSLINE_3D: crossline,
                segyio.TraceField.CDP_X: 1000 * inline,
                segyio.TraceField.CDP_Y: 10 * crossline,
                segyio.TraceField.SourceGroupScalar: -10,  # coordinates in tenths
                segyio.TraceField.TRACE_SAMPLE_INTERVAL: SAMPLE_INTERVAL_US,
            }
            handle.trace[trace] = cube[i, j]
    return Path(path)


def read_segy_traces(path: str | os.PathLike) -> tuple[np.ndarray, list[dict], dict, bytes]:
    """Everything a SEG-Y file holds, trace by trace in file order: (samples, trace headers, binary header, text)."""
    import segyio

    with segyio.open(os.fspath(path), ignore_geometry=True) as handle:
        headers = [dict(handle.header[trace]) for trace in range(handle.tracecount)]
        return handle.trace.raw[:], headers, dict(handle.bin), handle.text[0]


@pytest.fixture(scope="session", name="write_segy")
def write_segy_fixture() -> Callable[..., Path]:
    """:func:`write_segy`: ``write_segy(path, cube, *, inlines, crosslines, order, pairs, sample_format, endian)``."""
    return write_segy


@pytest.fixture(scope="session", name="read_segy_traces")
def read_segy_traces_fixture() -> Callable[[str | os.PathLike], tuple]:
    """:func:`read_segy_traces`: ``(samples, trace headers, binary header, text header)`` of a SEG-Y file."""
    return read_segy_traces


@pytest.fixture(scope="session")
def segy_file(tmp_path_factory, small_volume) -> Path:
    """``small_volume`` as an inline-sorted IEEE-float SEG-Y (:func:`write_segy`: inlines 10.., crosslines 20..)."""
    return write_segy(tmp_path_factory.mktemp("segy") / "volume.sgy", small_volume)


@pytest.fixture(scope="session")
def dataset_folder(tmp_path_factory) -> Path:
    """A synthetic fault dataset folder (Parquet + card): 20 sections of 28x28 split 70/15/15."""
    from geofm_hf.data.builder import build_dataset_folder

    folder = tmp_path_factory.mktemp("dataset") / "fault"
    return build_dataset_folder("fault", "synthetic", folder, options={"num": 20, "size": "28,28", "seed": 0})


@pytest.fixture(scope="session")
def tiny_run_config(tiny_backbone) -> Callable[..., "geofm_hf.training.TrainingConfig"]:
    """``tiny_run_config(output_dir, **fields)``: a fine-tuning run of seconds (the tiny DINOv2 from random weights
    with a linear decoder, ten 28x28 synthetic fault sections, batch 2, 3 steps at a high learning rate)."""
    from geofm_hf.training import TrainingConfig

    def make(output_dir: str | os.PathLike, **fields) -> TrainingConfig:
        settings = {
            "task": "fault",
            "dataset": "synthetic:10:0:28",
            "output_dir": str(output_dir),
            "backbone": "random:dinov2-small",
            "backbone_overrides": tiny_backbone,
            "decoder": "linear",
            "batch_size": 2,
            "max_steps": 3,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
            "learning_rate": 1e-2,
        }
        return TrainingConfig.from_dict({**settings, **fields})

    return make
