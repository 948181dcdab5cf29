"""Models that travel: a saved folder loads with transformers alone (remote code), by path and by repo id, and both
pipelines segment with and without geofm_hf importable."""

import json
import re
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from hub_server import NO_PROXY, OLAH_CLI, OLAH_MISSING, start_olah
from remote_client import run_client
from transformers import AutoConfig, AutoImageProcessor, AutoModel, pipeline

import geofm_hf

SECTION_SHAPE = (40, 50)


def _expected(folder: Path) -> dict[str, np.ndarray]:
    """What geofm_hf itself computes for the folder's section and picture."""
    model = AutoModel.from_pretrained(folder).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    section = np.load(folder / "section.npy")
    with torch.no_grad():
        logits = model(**processor(section)).logits.numpy()
    arrays = {"AutoModel": logits, "AutoModelForSemanticSegmentation": logits}
    for entry in pipeline("image-segmentation", model=str(folder))(str(folder / "picture.png")):
        arrays[f"picture_mask_{entry['label']}"] = np.asarray(entry["mask"])
    sections = pipeline(geofm_hf.SECTION_TASK, model=str(folder), pipeline_class=geofm_hf.SectionSegmentationPipeline)
    arrays["section_segmentation"] = sections(section)["segmentation"]
    return arrays


def _save(folder: Path, model) -> Path:
    model.save_pretrained(folder)
    geofm_hf.GeoFMImageProcessor().save_pretrained(folder)
    rng = np.random.default_rng(3)
    np.save(folder / "section.npy", rng.standard_normal(SECTION_SHAPE).astype(np.float32))
    grey = (rng.random(SECTION_SHAPE) * 255).astype(np.uint8)
    PIL.Image.fromarray(grey).convert("RGB").save(folder / "picture.png")
    return folder


@pytest.fixture(scope="module", params=["geofm-mla", "unet"])
def saved_folder(request, tmp_path_factory, tiny_model) -> Path:
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "unet":
        torch.manual_seed(0)
        model = geofm_hf.build_segmenter("unet", "salt", backbone_overrides={"widths": [4, 8, 8]}).eval()
    else:
        model = tiny_model(task="salt", decoder="mla", decoder_kwargs={"channels": 8})
    return _save(folder, model)


def check_client_matches(findings: dict, arrays: dict, expected: dict) -> None:
    assert "contains custom code" in findings["without_trust"]
    assert not findings["geofm_hf_loaded"]
    for key in ("config_module", "model_module", "processor_module", "pipeline_module"):
        assert findings[key].startswith("transformers_modules."), (key, findings[key])
    assert sorted(arrays) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(arrays[key], value, err_msg=key)


def test_saved_folder_holds_flat_code_and_maps_every_auto_class(saved_folder):
    config = json.loads((saved_folder / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForSemanticSegmentation", "AutoImageProcessor"}
    assert config["custom_pipelines"][geofm_hf.SECTION_TASK]["impl"] == "pipeline_geofm.SectionSegmentationPipeline"
    for reference in [*config["auto_map"].values(), config["custom_pipelines"][geofm_hf.SECTION_TASK]["impl"]]:
        assert (saved_folder / f"{reference.split('.')[0]}.py").is_file()
    for code in saved_folder.glob("*.py"):
        assert not re.search(r"^\s*from \.\.", code.read_text(), flags=re.MULTILINE), code.name


def test_with_geofm_hf_installed_no_remote_code_runs(saved_folder):
    for trust in (None, True):
        model = AutoModel.from_pretrained(saved_folder, trust_remote_code=trust)
        config = AutoConfig.from_pretrained(saved_folder, trust_remote_code=trust)
        assert type(model).__module__.startswith("geofm_hf.models") and type(config).__module__.startswith("geofm_hf")
    assert type(AutoImageProcessor.from_pretrained(saved_folder)) is geofm_hf.GeoFMImageProcessor


def test_image_segmentation_pipeline_reads_grey_and_rgb_pictures_alike(saved_folder, tmp_path):
    picture = PIL.Image.open(saved_folder / "picture.png")
    picture.convert("L").save(tmp_path / "grey.png")
    segment = pipeline("image-segmentation", model=str(saved_folder))
    from_rgb = {e["label"]: np.asarray(e["mask"]) for e in segment(str(saved_folder / "picture.png"))}
    from_grey = {e["label"]: np.asarray(e["mask"]) for e in segment(str(tmp_path / "grey.png"))}
    assert from_rgb.keys() == from_grey.keys() and all((from_rgb[k] == from_grey[k]).all() for k in from_rgb)
    model = AutoModel.from_pretrained(saved_folder).eval()
    with torch.no_grad():
        labels = model(**geofm_hf.GeoFMImageProcessor()(np.asarray(picture.convert("L")))).logits[0].argmax(0)
    for label, mask in from_rgb.items():
        np.testing.assert_array_equal(mask > 0, (labels == model.config.label2id[label]).numpy())


def test_the_reduction_of_pictures_to_one_channel_is_recorded_and_checked():
    processor = geofm_hf.GeoFMImageProcessor(rgb_to_grey="luminance")
    assert processor.to_dict()["rgb_to_grey"] == "luminance"
    picture = np.zeros((20, 30, 3), dtype=np.uint8)
    picture[..., 1] = 100
    grey = geofm_hf.GeoFMImageProcessor(normalization="study", rgb_to_grey="luminance")(picture)["pixel_values"]
    np.testing.assert_allclose(grey[0, 0], np.floor(58.7) / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="rgb_to_grey='sepia' is unknown; choose from"):
        geofm_hf.GeoFMImageProcessor(rgb_to_grey="sepia")


def test_section_pipeline_takes_arrays_npy_and_segy(saved_folder, segy_file, small_volume):
    segment = pipeline(geofm_hf.SECTION_TASK, model=str(saved_folder), pipeline_class=geofm_hf.SectionSegmentationPipeline)
    section = np.load(saved_folder / "section.npy")
    from_array = segment(section)
    assert from_array["segmentation"].shape == SECTION_SHAPE
    assert from_array["probabilities"].shape == (2, *SECTION_SHAPE)
    np.testing.assert_allclose(from_array["probabilities"].sum(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(segment(str(saved_folder / "section.npy"))["segmentation"], from_array["segmentation"])
    from_segy = segment(str(segy_file), section=2, axis="inline")
    np.testing.assert_array_equal(from_segy["segmentation"], segment(small_volume[2].T)["segmentation"])
    with pytest.raises(ValueError, match="section=9 is outside 0..5 along inline"):
        segment(str(segy_file), section=9)
    with pytest.raises(ValueError, match=r"a section must be 2-D \(height, width\); got shape \(2, 3, 4\)"):
        segment(np.zeros((2, 3, 4)))


@pytest.mark.slow
def test_transformers_alone_loads_the_folder_and_runs_both_pipelines(saved_folder, tmp_path):
    request = {"model": str(saved_folder), "section": str(saved_folder / "section.npy"),
               "picture": str(saved_folder / "picture.png")}
    findings, arrays = run_client(request, tmp_path, {"HF_HUB_OFFLINE": "1"})
    check_client_matches(findings, arrays, _expected(saved_folder))


@pytest.mark.slow
@pytest.mark.hub
def test_transformers_alone_loads_by_repo_id_from_a_hub_server(saved_folder, tmp_path):
    if not OLAH_CLI.exists():
        pytest.skip(OLAH_MISSING)
    server = start_olah(tmp_path / "olah")
    try:
        repo_id = f"geofm-tests/{saved_folder.name}"
        revision = server.add_repo(saved_folder, repo_id)
        request = {"model": repo_id, "revision": revision, "section": str(saved_folder / "section.npy"),
                   "picture": str(saved_folder / "picture.png")}
        env = {**NO_PROXY, "HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"}
        findings, arrays = run_client(request, tmp_path, env)
    finally:
        server.stop()
    check_client_matches(findings, arrays, _expected(saved_folder))
