"""LoRA adapters that name their base: peft reproduces best/ from it, a wrong base is refused, the card is real."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from accelerate.state import AcceleratorState
from huggingface_hub import ModelCard
from peft import AutoPeftModel, PeftModel
from transformers import AutoModelForSemanticSegmentation

import geofm_hf
from geofm_hf.hub import load_adapter
from geofm_hf.hub.adapters import ADAPTER_INFO_FILE
from geofm_hf.training import RunLayout, train


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_run_config):
    AcceleratorState._reset_state(reset_partial_state=True)
    output_dir = tmp_path_factory.mktemp("lora-run")
    config = tiny_run_config(output_dir, adaptation="lora", max_steps=2, learning_rate=5e-2)
    return RunLayout(train(config).output_dir)


def logits(model, pixel_values):
    with torch.no_grad():
        return model.eval()(pixel_values=pixel_values).logits.numpy()


PIXELS = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 1, 28, 42)).astype(np.float32))


@pytest.mark.slow
def test_the_adapter_names_its_base_and_peft_reproduces_best(lora_run):
    adapter_config = json.loads((lora_run.adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(lora_run.base_dir.resolve())
    best = logits(AutoModelForSemanticSegmentation.from_pretrained(lora_run.best_dir), PIXELS)
    base = AutoModelForSemanticSegmentation.from_pretrained(lora_run.base_dir)
    assert not np.allclose(logits(base, PIXELS), best, atol=1e-3)  # training changed the model
    with_peft = PeftModel.from_pretrained(base, lora_run.adapter_dir)
    np.testing.assert_allclose(logits(with_peft, PIXELS), best, atol=1e-5)
    np.testing.assert_allclose(logits(AutoPeftModel.from_pretrained(lora_run.adapter_dir), PIXELS), best, atol=1e-5)
    np.testing.assert_allclose(logits(load_adapter(lora_run.adapter_dir), PIXELS), best, atol=1e-5)


@pytest.mark.slow
def test_an_adapter_on_a_base_it_was_not_trained_on_is_refused(lora_run, tiny_backbone):
    best = AutoModelForSemanticSegmentation.from_pretrained(lora_run.best_dir)
    with pytest.raises(ValueError, match=r"adapter: the base model does not fit this adapter: its backbone fingerprint"):
        load_adapter(lora_run.adapter_dir, base=best)
    other = geofm_hf.build_segmenter("random:dinov2-small", "fault", "linear", backbone_overrides=tiny_backbone)
    with pytest.raises(ValueError, match=r"Use the run's base/ folder"):
        load_adapter(lora_run.adapter_dir, base=other)


@pytest.mark.slow
def test_the_adapter_card_says_what_it_is_and_how_to_load_it(lora_run):
    card = ModelCard.load(lora_run.adapter_dir / "README.md")
    assert card.data.library_name == "peft" and "lora" in card.data.tags and "fault" in card.data.tags
    assert "synthetic:10:0:28" in card.text and "load_adapter" in card.text and "PeftModel.from_pretrained" in card.text
    info = json.loads((lora_run.adapter_dir / ADAPTER_INFO_FILE).read_text())
    assert (info["task"], info["decoder"], info["dataset"]) == ("fault", "linear", "synthetic:10:0:28")


def test_a_folder_without_geofm_adapter_info_is_refused_with_the_peft_way(tmp_path, tiny_model):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="not an adapter written by geofm_hf.*PeftModel.from_pretrained"):
        load_adapter(tmp_path, base=tiny_model())


@pytest.mark.slow
def test_the_best_folder_of_a_run_loads_with_transformers_alone(lora_run, tmp_path):
    """What `geofm train` writes travels: best/ loads and segments where geofm_hf cannot be imported."""
    from remote_client import run_client

    rng = np.random.default_rng(5)
    np.save(tmp_path / "section.npy", rng.standard_normal((28, 42)).astype(np.float32))
    PIL.Image.fromarray((rng.random((28, 42)) * 255).astype(np.uint8)).save(tmp_path / "section.png")
    request = {"model": str(lora_run.best_dir), "section": str(tmp_path / "section.npy"),
               "picture": str(tmp_path / "section.png")}
    findings, arrays = run_client(request, tmp_path, {"HF_HUB_OFFLINE": "1"})
    assert not findings["geofm_hf_loaded"] and findings["model_module"].startswith("transformers_modules.")
    model = AutoModelForSemanticSegmentation.from_pretrained(lora_run.best_dir).eval()
    processor = geofm_hf.GeoFMImageProcessor.from_pretrained(lora_run.best_dir)
    with torch.no_grad():
        expected = model(**processor(np.load(tmp_path / "section.npy"))).logits.numpy()
    np.testing.assert_array_equal(arrays["AutoModel"], expected)
    assert arrays["section_segmentation"].shape == (28, 42)
    assert {key for key in arrays if key.startswith("picture_mask_")} <= {"picture_mask_background", "picture_mask_fault"}
