"""What we publish loads by repo id: staged folders served by a Hub-protocol server (olah on 127.0.0.1), read back
by a fresh process the way a user would (``load_dataset``, the Auto classes, peft, the cards), equal to the source."""

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datasets import load_dataset
from huggingface_hub import DatasetCard, EvalResult, ModelCard, ModelCardData
from peft import LoraConfig, get_peft_model

from geofm_hf import GeoFMForSemanticSegmentation, GeoFMImageProcessor
from geofm_hf.data.builder import build_dataset_folder
from geofm_hf.hub import stage_model_folder
from hub_server import OLAH_CLI, OLAH_MISSING, dataset_view, file_digests, run_client, start_olah

pytestmark = [pytest.mark.hub, pytest.mark.slow]  # starts a Hub server and a client process

MODEL_REPO, DATASET_REPO = "geofm-tests/salt-linear-tiny", "geofm-tests/salt"
INPUT_SHAPE = (2, 1, 30, 44)
MEAN_IOU = 0.625


@pytest.fixture(scope="session")
def olah(tmp_path_factory):
    if not OLAH_CLI.exists():
        pytest.skip(OLAH_MISSING)
    try:
        server = start_olah(tmp_path_factory.mktemp("olah"))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


def _model_card() -> ModelCard:
    data = ModelCardData(
        model_name="salt-linear-tiny",
        library_name="geofm_hf",
        datasets=[DATASET_REPO],
        eval_results=[
            EvalResult(
                task_type="image-segmentation",
                dataset_type=DATASET_REPO,
                dataset_name="salt (synthetic)",
                dataset_split="test",
                metric_type="mean_iou",
                metric_value=MEAN_IOU,
            )
        ],
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n# salt-linear-tiny\n")


def _lora_adapter(model: GeoFMForSemanticSegmentation, folder: Path, pixel_values: torch.Tensor) -> np.ndarray:
    """Save a LoRA adapter of ``model`` with non-zero updates to ``folder``; return the adapted logits."""
    adapted = get_peft_model(copy.deepcopy(model), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
        logits = adapted.eval()(pixel_values=pixel_values).logits.numpy()
    adapted.save_pretrained(folder)
    return logits


@pytest.fixture(scope="module")
def published(olah, tmp_path_factory, tiny_model):
    """Stage a tiny salt model (with processor, card, adapter) and a synthetic salt dataset, publish both on the
    server, and load them back by repo id in one fresh process."""
    work = tmp_path_factory.mktemp("published")
    model = tiny_model(task="salt")
    pixel_values = torch.randn(*INPUT_SHAPE)
    np.save(work / "inputs.npy", pixel_values.numpy())
    with torch.no_grad():
        logits = model(pixel_values=pixel_values).logits.numpy()
    adapter_logits = _lora_adapter(model, work / "adapter", pixel_values)
    processor = GeoFMImageProcessor(normalization="standardize")
    model_folder = stage_model_folder(model, work / "model", processor, _model_card(), work / "adapter")
    dataset_folder = build_dataset_folder(
        "salt", "synthetic", work / "salt", options={"num": 7, "seed": 3, "size": "24,40"}, repo_id=DATASET_REPO
    )
    revision = olah.add_repo(model_folder, MODEL_REPO, "model")
    olah.add_repo(dataset_folder, DATASET_REPO, "dataset")
    request = {
        "model_repo": MODEL_REPO,
        "model_revision": revision,
        "dataset_repo": DATASET_REPO,
        "inputs": str(work / "inputs.npy"),
    }
    found = run_client(olah, request, work / "client")
    with np.load(work / "client" / "out" / "logits.npz", allow_pickle=False) as loaded:
        found_logits = dict(loaded)
    with np.load(work / "client" / "out" / "dataset.npz", allow_pickle=False) as loaded:
        found_arrays = dict(loaded)
    return SimpleNamespace(
        model_folder=model_folder,
        dataset_folder=dataset_folder,
        processor=processor,
        logits=logits,
        adapter_logits=adapter_logits,
        found=found,
        found_logits=found_logits,
        found_arrays=found_arrays,
    )


def test_repos_download_as_the_staged_folders_byte_for_byte(published):
    staged_model = file_digests(published.model_folder)
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= set(staged_model)
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= set(staged_model)
    assert published.found["model_snapshot"] == staged_model
    assert published.found["dataset_snapshot"] == file_digests(published.dataset_folder)


def test_dataset_by_repo_id_equals_the_local_folder_bit_for_bit(published):
    local_arrays, local_described = dataset_view(load_dataset(str(published.dataset_folder)))
    assert set(published.found_arrays) == set(local_arrays) == {
        f"{split}/{column}" for split in ("train", "validation", "test") for column in ("image", "label")
    }
    for key, array in local_arrays.items():
        found = published.found_arrays[key]
        assert found.dtype == array.dtype and found.shape == array.shape, key
        assert found.tobytes() == array.tobytes(), key
    assert published.found_arrays["train/image"].dtype == np.float32
    assert published.found["dataset"] == local_described


@pytest.mark.parametrize("auto_class", ["AutoModel", "AutoModelForSemanticSegmentation"])
def test_model_by_repo_id_gives_the_in_memory_logits(published, auto_class):
    assert published.found["model_class"] == "GeoFMForSemanticSegmentation"
    found = published.found_logits[auto_class]
    assert found.shape == (INPUT_SHAPE[0], 2, *INPUT_SHAPE[2:])
    np.testing.assert_array_equal(found, published.logits)


def test_adapter_loads_from_its_subfolder_and_changes_the_logits(published):
    np.testing.assert_array_equal(published.found_logits["adapter"], published.adapter_logits)
    assert not np.allclose(published.adapter_logits, published.logits)


def test_image_processor_by_repo_id_keeps_its_settings(published):
    assert published.found["processor_class"] == "GeoFMImageProcessor"
    assert published.found["processor"]["normalization"] == "standardize"
    assert published.found["processor"] == json.loads(published.processor.to_json_string())


def test_cards_by_repo_id_carry_eval_results_and_dataset_configs(published):
    model_card = published.found["model_card"]
    assert model_card == ModelCard.load(published.model_folder / "README.md").data.to_dict()
    (result,) = model_card["model-index"][0]["results"]
    assert result["metrics"][0]["type"] == "mean_iou" and result["metrics"][0]["value"] == MEAN_IOU
    dataset_card = published.found["dataset_card"]
    assert dataset_card == DatasetCard.load(published.dataset_folder / "README.md").data.to_dict()
    (config,) = dataset_card["configs"]
    assert {entry["split"] for entry in config["data_files"]} == {"train", "validation", "test"}
