"""`evaluate_model` scores against hand-computed confusion matrices, its pictures, and `geofm evaluate` end to end."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from datasets import Dataset, Features, List, Value
from PIL import Image
from torch import nn
from transformers.modeling_outputs import SemanticSegmenterOutput

from geofm_hf import GeoFMImageProcessor, get_task
from geofm_hf.data.builder import build_dataset_dict, write_dataset_folder
from geofm_hf.hub import CardInfo
from geofm_hf.data.records import Section
from geofm_hf.cli import main
from geofm_hf.evaluation import CONFUSION_MATRIX_FILE, EVAL_RESULTS_FILE, evaluate_model
from geofm_hf.evaluation.inference import LabelledSections
from geofm_hf.training import TrainingConfig, evaluate_loader
from geofm_hf.training.data import section_loader

IGNORE = 255
SECTION_FEATURES = Features({"image": List(List(Value("float32"))), "label": List(List(Value("uint8")))})


class LeftHalfModel(nn.Module):
    """Stand-in segmenter: class 1 in the left half of every section (columns < width // 2), class 0 elsewhere."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(
            num_labels=2, id2label={0: "background", 1: "fault"}, task="fault", ignore_index=IGNORE, pad_multiple=2
        )
        self.scale = nn.Parameter(torch.ones(()))
        self.inputs: list[torch.Tensor] = []

    def forward(self, pixel_values):
        self.inputs.append(pixel_values.clone())
        batch, _, height, width = pixel_values.shape
        logits = torch.zeros(batch, 2, height, width)
        logits[:, 1, :, : width // 2] = self.scale
        return SemanticSegmenterOutput(logits=logits)


def known_sections() -> Dataset:
    """Three sections whose confusion matrices against LeftHalfModel are worked out in the test below."""
    rng = np.random.default_rng(0)
    label_a = np.zeros((4, 4), np.uint8)
    label_a[:2] = 1  # top half fault
    label_b = np.ones((4, 4), np.uint8)  # all fault
    label_c = np.zeros((2, 6), np.uint8)  # all background ...
    label_c[0, 5] = IGNORE  # ... but one unlabelled pixel
    labels = [label_a, label_b, label_c]
    images = [rng.normal(scale=100.0, size=label.shape).astype(np.float32) for label in labels]
    return Dataset.from_dict({"image": images, "label": labels}, features=SECTION_FEATURES, split="test")


# LeftHalfModel predicts fault in columns 0-1 of A and B (4 wide) and in columns 0-2 of C (6 wide). Rows = truth.
CONFUSION_A = [[4, 4], [4, 4]]
CONFUSION_B = [[0, 0], [8, 8]]
CONFUSION_C = [[5, 6], [0, 0]]  # 6 background pixels predicted fault, 5 right (the ignored pixel is in column 5)


def test_scores_equal_hand_computed_values_from_one_confusion_matrix():
    model = LeftHalfModel()
    results = evaluate_model(model, GeoFMImageProcessor(), known_sections(), batch_size=4, study_batch_size=2)

    assert results["confusion_matrix"] == [[9, 10], [12, 12]]
    assert results["per_class_iou"] == pytest.approx({"background": 9 / 31, "fault": 12 / 34})
    assert results["mean_iou"] == pytest.approx((9 / 31 + 12 / 34) / 2)
    assert results["mean_pixel_accuracy"] == pytest.approx((9 / 19 + 12 / 24) / 2)
    assert results["overall_accuracy"] == pytest.approx(21 / 43)
    assert results["per_class_f1"]["fault"] == pytest.approx(24 / (24 + 10 + 12))
    # Study batches of 2 sections: A+B = [[4, 4], [12, 12]], then C alone (fault only predicted: its IoU is 0).
    assert results["study_batch_miou"] == pytest.approx(((4 / 20 + 12 / 28) / 2 + (5 / 11 + 0.0) / 2) / 2)
    assert results["study_batch_mpa"] == pytest.approx(((4 / 8 + 12 / 24) / 2 + (5 / 11 + 0.0) / 2) / 2)
    assert (results["num_examples"], results["num_labelled_pixels"], results["split"]) == (3, 43, "test")
    assert (results["ignore_index"], results["study_batch_size"], results["task"]) == (IGNORE, 2, "fault")


def test_equal_sizes_are_batched_each_section_normalised_alone_and_model_mode_restored():
    model = LeftHalfModel().train()
    dataset = known_sections()
    processor = GeoFMImageProcessor()
    by_four = evaluate_model(model, processor, dataset, batch_size=4, max_overlays=0)

    assert [tuple(x.shape) for x in model.inputs] == [(2, 1, 4, 4), (1, 1, 2, 6)]
    for row, pixel_values in enumerate([*model.inputs[0], *model.inputs[1]]):
        own = processor.preprocess(np.asarray(dataset[row]["image"], np.float32))["pixel_values"][0]
        torch.testing.assert_close(pixel_values, own)
    assert model.training
    by_one = evaluate_model(model, processor, dataset, batch_size=1)
    assert by_one["confusion_matrix"] == by_four["confusion_matrix"]
    assert by_one["study_batch_size"] == 1 and len(model.inputs) == 2 + 3


def varied_sections() -> Dataset:
    """Six sections of three sizes in mixed order, so that batches of three hold sections of different sizes."""
    rng = np.random.default_rng(3)
    shapes = [(4, 4), (2, 6), (4, 8), (4, 4), (2, 6), (4, 8)]
    labels = [rng.integers(0, 2, size=shape, dtype=np.uint8) for shape in shapes]
    labels[1][0, 0] = IGNORE
    images = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    return Dataset.from_dict({"image": images, "label": labels}, features=SECTION_FEATURES, split="validation")


def test_validation_and_evaluate_model_score_sections_of_different_sizes_alike(tmp_path):
    # LeftHalfModel's prediction depends on the width it is given: any padding reaching it would change the scores.
    dataset, processor, model = varied_sections(), GeoFMImageProcessor(), LeftHalfModel()
    alone = evaluate_model(model, processor, dataset, batch_size=1, max_overlays=0)
    evaluated = evaluate_model(model, processor, dataset, batch_size=3, max_overlays=0)

    # Validation's own loader, as `prepare_run` builds it.
    config = TrainingConfig.from_dict({"task": "fault", "dataset": "synthetic:6", "output_dir": str(tmp_path)})
    accelerator = Accelerator(cpu=True)
    loader = accelerator.prepare(section_loader(LabelledSections(dataset, processor), 3, False, config, IGNORE))
    model.inputs.clear()
    validated = evaluate_loader(model, loader, accelerator, get_task("fault"), IGNORE, "validation")

    assert validated["confusion_matrix"] == evaluated["confusion_matrix"] == alone["confusion_matrix"]
    assert evaluated["num_labelled_pixels"] == sum(np.asarray(label).size for label in dataset["label"]) - 1
    # Validation fed the model every section at its own size, never padded to its batch's largest.
    assert [tuple(x.shape[-2:]) for x in model.inputs] == [np.asarray(image).shape for image in dataset["image"]]


def test_output_dir_gets_results_json_and_openable_pictures(tmp_path):
    results = evaluate_model(
        LeftHalfModel(), GeoFMImageProcessor(), known_sections(), max_overlays=2, output_dir=tmp_path
    )

    assert results["figures"] == [CONFUSION_MATRIX_FILE, "example_00000.png", "example_00002.png"]
    for name in results["figures"]:
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 100
    written = json.loads((tmp_path / EVAL_RESULTS_FILE).read_text())
    assert written["confusion_matrix"] == results["confusion_matrix"]
    assert written["mean_iou"] == results["mean_iou"]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([EVAL_RESULTS_FILE, *results["figures"]])


def test_a_class_absent_from_the_split_is_null_in_the_json(tmp_path):
    dataset = Dataset.from_dict(
        {"image": [np.ones((2, 4), np.float32)], "label": [np.zeros((2, 4), np.uint8)]}, features=SECTION_FEATURES
    )
    model = LeftHalfModel()
    model.scale.data.fill_(-1.0)  # predicts background everywhere: the fault class is absent from truth and prediction
    evaluate_model(model, GeoFMImageProcessor(), dataset, output_dir=tmp_path, max_overlays=0)
    written = json.loads((tmp_path / EVAL_RESULTS_FILE).read_text())
    assert written["per_class_iou"] == {"background": 1.0, "fault": None}


@pytest.mark.parametrize(
    "image, label, message",
    [
        (np.ones((4, 4)), np.full((4, 4), 2), r"row 0: label holds class ids \[2\] outside the model's classes 0\.\.1"),
        (np.ones((1, 4)), np.zeros((1, 4)), r"row 0: the section is 1 x 4 pixels, smaller than one 2 x 2 patch"),
        (np.full((4, 4), np.nan), np.zeros((4, 4)), r"row 0 image: 16 NaN or Inf value"),
    ],
)
def test_rows_the_model_cannot_be_scored_on_are_refused_by_row(image, label, message):
    dataset = Dataset.from_dict(
        {"image": [image.astype(np.float32)], "label": [label.astype(np.uint8)]},
        features=SECTION_FEATURES,
        split="test",
    )
    with pytest.raises(ValueError, match=message):
        evaluate_model(LeftHalfModel(), GeoFMImageProcessor(), dataset)


def test_a_split_without_label_column_is_refused():
    dataset = Dataset.from_dict({"image": [np.ones((4, 4), np.float32)]})
    with pytest.raises(ValueError, match=r"no column\(s\) \['label'\]"):
        evaluate_model(LeftHalfModel(), GeoFMImageProcessor(), dataset)


# --- geofm evaluate ------------------------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    return main(["evaluate", *argv])


def write_dataset(folder, task: str, size=(28, 28)):
    """A dataset folder as `geofm_hf.data` builds them (Parquet shards, README card, id2label.json)."""
    spec = get_task(task)
    rng = np.random.default_rng(1)

    def sections(count):
        for index in range(count):
            label = rng.integers(0, spec.num_labels, size=size, dtype=np.uint8)
            yield Section(rng.normal(size=size).astype(np.float32), label, f"section_{index}.npy")

    splits = {"train": sections(2), "validation": sections(1), "test": sections(3)}
    dataset_dict = build_dataset_dict(splits, spec, cache_dir=folder.parent / f"{folder.name}-cache")
    return write_dataset_folder(dataset_dict, spec, folder, CardInfo(source="test", command="pytest"))


def test_cli_evaluates_a_saved_model_on_a_dataset_folder(tiny_model_dir, dataset_folder, tmp_path, capsys):
    output = tmp_path / "evaluation"

    arguments = ["--output", str(output), "--batch-size", "2", "--max-overlays", "1"]
    assert run_cli(str(tiny_model_dir), str(dataset_folder), *arguments) == 0

    printed = capsys.readouterr().out
    results = json.loads((output / EVAL_RESULTS_FILE).read_text())
    assert (results["num_examples"], results["split"], results["task"]) == (3, "test", "fault")
    assert results["num_labelled_pixels"] == 3 * 28 * 28 == int(np.sum(results["confusion_matrix"]))
    assert re.search(rf"mean IoU +{results['mean_iou']:.4f}\n", printed)
    for name in [EVAL_RESULTS_FILE, CONFUSION_MATRIX_FILE, "example_00000.png"]:
        assert f"wrote {output / name}" in printed
    with Image.open(output / "example_00000.png") as picture:
        assert picture.format == "PNG"


def test_cli_falls_back_to_a_default_processor_with_a_warning(tiny_model_dir, dataset_folder, tmp_path, caplog):
    model_dir = tmp_path / "no-processor"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        (model_dir / name).write_bytes((tiny_model_dir / name).read_bytes())
    assert run_cli(str(model_dir), str(dataset_folder), "--max-overlays", "0") == 0
    assert "has no saved image processor" in caplog.text


def write_parquet_folder(folder, labels):
    """A plain Parquet folder (one `<split>.parquet` per split, no card): what `Dataset.to_parquet` users make."""
    folder.mkdir()
    images = [np.ones(label.shape, np.float32) for label in labels]
    for split in ("train", "test"):
        Dataset.from_dict({"image": images, "label": labels}, features=SECTION_FEATURES).to_parquet(
            folder / f"{split}.parquet"
        )
    return folder


@pytest.mark.parametrize(
    "make_data, argv, message",
    [
        (
            lambda path: write_dataset(path, "fault"),
            ["--split", "holdout"],
            "has no split 'holdout'; its splits are: train, validation, test",
        ),
        (
            lambda path: write_dataset(path, "salt"),
            [],
            r"declares classes \['background', 'salt'\] \(task 'salt'\) .*task 'fault'",
        ),
        (
            lambda path: write_dataset(path, "fault", size=(10, 28)),
            [],
            r"row 0: the section is 10 x 28 pixels, smaller than one 14 x 14 patch",
        ),
        (
            lambda path: write_parquet_folder(path, [np.full((14, 14), 7, np.uint8)]),
            [],
            r"test split row 0: label holds class ids \[7\] outside the model's classes 0\.\.1 \(background, fault",
        ),
        (
            lambda path: path,
            [],
            r"Cannot load dataset '.*missing': neither a dataset folder nor a reachable Hub dataset",
        ),
    ],
    ids=["missing-split", "task-mismatch", "smaller-than-a-patch", "labels-outside-classes", "no-dataset"],
)
def test_cli_reports_bad_input_with_exit_code_2(tiny_model_dir, tmp_path, capsys, make_data, argv, message):
    data = make_data(tmp_path / "missing")
    assert run_cli(str(tiny_model_dir), str(data), *argv) == 2
    error = capsys.readouterr().err
    assert re.search(f"^geofm evaluate: error: .*{message}", error, flags=re.MULTILINE), error


def test_evaluation_reports_the_precision_it_ran_in(tiny_model_dir, dataset_folder):
    from datasets import load_dataset

    from geofm_hf.evaluation import load_model_and_processor

    model, processor = load_model_and_processor(str(tiny_model_dir))
    test = load_dataset(str(dataset_folder))["test"]
    fp32 = evaluate_model(model, processor, test, max_overlays=0, precision="fp32")
    bf16 = evaluate_model(model, processor, test, max_overlays=0, precision="bf16")
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert abs(fp32["mean_iou"] - bf16["mean_iou"]) < 0.05
