"""Folders saved by earlier versions keep loading, and a saved config never needs the task registry."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSemanticSegmentation

import geofm_hf

LEGACY = Path(__file__).parent / "fixtures" / "legacy_v0_1"


@pytest.mark.parametrize(
    ("folder", "model_class"), [("geofm", "GeoFMForSemanticSegmentation"), ("unet", "GeoUNetForSemanticSegmentation")]
)
def test_folders_saved_by_0_1_give_identical_logits(folder, model_class):
    model = AutoModelForSemanticSegmentation.from_pretrained(LEGACY / folder).eval()
    assert type(model).__name__ == model_class
    with torch.no_grad():
        logits = model(pixel_values=torch.from_numpy(np.load(LEGACY / "input.npy"))).logits.numpy()
    np.testing.assert_array_equal(logits, np.load(LEGACY / folder / "expected_logits.npy"))


def _copy_with_task(source: Path, destination: Path, task: str) -> Path:
    destination.mkdir()
    for path in source.iterdir():
        (destination / path.name).write_bytes(path.read_bytes())
    config = json.loads((destination / "config.json").read_text())
    config["task"] = task
    config["id2label"], config["label2id"] = {"0": "quiet", "1": "anomaly"}, {"quiet": 0, "anomaly": 1}
    (destination / "config.json").write_text(json.dumps(config))
    return destination


def test_a_task_this_version_does_not_know_loads(tmp_path):
    """A fork's sixth task: the config is metadata, loading never consults geofm_hf.models.tasks.TASKS."""
    assert "gravity-anomaly" not in geofm_hf.TASKS
    folder = _copy_with_task(LEGACY / "geofm", tmp_path / "fork", "gravity-anomaly")
    config = AutoConfig.from_pretrained(folder)
    assert (config.task, config.id2label[1]) == ("gravity-anomaly", "anomaly")
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(pixel_values=torch.from_numpy(np.load(LEGACY / "input.npy"))).logits.numpy()
    np.testing.assert_array_equal(logits, np.load(LEGACY / "geofm" / "expected_logits.npy"))
    config.save_pretrained(tmp_path / "resaved")
    assert AutoConfig.from_pretrained(tmp_path / "resaved").task == "gravity-anomaly"


def test_building_from_an_unknown_task_name_is_refused():
    with pytest.raises(KeyError, match="Unknown task 'gravity-anomaly'. Known tasks: seismic-facies"):
        geofm_hf.GeoFMConfig.for_task("gravity-anomaly")
