"""Segmentation metrics: hand-computed scores, the study's per-batch variants vs torchmetrics, the evaluate module."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multiclass_jaccard_index,
    multiclass_recall,
)

from geofm_hf.metrics import (
    ConfusionAccumulator,
    confusion_matrix,
    load_segmentation_metric,
    segmentation_scores,
    study_batch_miou,
    study_batch_mpa,
)
from geofm_hf.metrics.plots import plot_confusion_matrix


NAN = float("nan")


@pytest.fixture(scope="module")
def segmentation_metric():
    # evaluate costs seconds to import and load: once per module.
    return load_segmentation_metric()


def assert_scores_equal(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            assert list(actual[key]) == list(value), key
            np.testing.assert_allclose(list(actual[key].values()), list(value.values()), rtol=1e-12, err_msg=key)
        else:
            np.testing.assert_allclose(actual[key], value, rtol=1e-12, err_msg=key)


def random_batches(num_batches: int, num_labels: int, seed: int, ignore_index: int | None = None):
    """Batches of (2, 12, 10) maps in which each batch draws from a random subset of classes, so classes go missing."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(num_batches):
        classes = torch.randperm(num_labels, generator=generator)[: torch.randint(1, num_labels + 1, (1,)).item()]
        preds = classes[torch.randint(len(classes), (2, 12, 10), generator=generator)]
        refs = classes[torch.randint(len(classes), (2, 12, 10), generator=generator)]
        if ignore_index is not None:
            refs[torch.rand(refs.shape, generator=generator) < 0.2] = ignore_index
        yield preds, refs


# A 2x3 two-class example. Pixel pairs (true, pred): (0,0) (0,1) (0,1) / (1,1) (1,0) (0,0)
# -> confusion [[2, 2], [1, 1]]: class 0 has 4 true and 3 predicted pixels, class 1 has 2 true and 3 predicted.
TWO_CLASS_REFS = [[0, 0, 0], [1, 1, 0]]
TWO_CLASS_PREDS = [[0, 1, 1], [1, 0, 0]]


def test_two_class_hand_computed():
    cm = confusion_matrix(np.array(TWO_CLASS_PREDS), np.array(TWO_CLASS_REFS), num_labels=2)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[2, 2], [1, 1]])

    scores = segmentation_scores(cm, id2label={0: "background", 1: "fault"})
    assert_scores_equal(
        scores,
        {
            # IoU: 2 / (4 + 3 - 2), 1 / (2 + 3 - 1)
            "mean_iou": (2 / 5 + 1 / 4) / 2,
            # recall: 2 / 4, 1 / 2
            "mean_pixel_accuracy": 0.5,
            "overall_accuracy": 3 / 6,
            # F1 = 2 TP / (true + predicted): 4 / 7, 2 / 5
            "mean_f1": (4 / 7 + 2 / 5) / 2,
            "per_class_iou": {"background": 2 / 5, "fault": 1 / 4},
            "per_class_recall": {"background": 2 / 4, "fault": 1 / 2},
            "per_class_precision": {"background": 2 / 3, "fault": 1 / 3},
            "per_class_f1": {"background": 4 / 7, "fault": 2 / 5},
            "confusion_matrix": [[2, 2], [1, 1]],
        },
    )
    assert scores["confusion_matrix"] == [[2, 2], [1, 1]]


def test_three_class_hand_computed_and_study_single_batch():
    # Pairs (true, pred): (0,0) (1,2) (2,2) / (2,2) (2,1) (1,0) -> [[1,0,0], [1,0,1], [0,1,2]];
    # true counts 1, 2, 3; predicted counts 2, 1, 3.
    refs = np.array([[0, 1, 2], [2, 2, 1]], dtype=np.uint8)
    preds = np.array([[0, 2, 2], [2, 1, 0]], dtype=np.uint8)
    cm = confusion_matrix(preds, refs, num_labels=3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 0, 1], [0, 1, 2]])

    scores = segmentation_scores(cm, id2label={"0": "a", "1": "b", "2": "c"})
    assert scores["per_class_iou"] == pytest.approx({"a": 1 / 2, "b": 0.0, "c": 1 / 2})
    assert scores["mean_iou"] == pytest.approx(1 / 3)
    assert scores["per_class_recall"] == pytest.approx({"a": 1.0, "b": 0.0, "c": 2 / 3})
    assert scores["mean_pixel_accuracy"] == pytest.approx(5 / 9)
    assert scores["per_class_precision"] == pytest.approx({"a": 1 / 2, "b": 0.0, "c": 2 / 3})
    assert scores["per_class_f1"] == pytest.approx({"a": 2 / 3, "b": 0.0, "c": 2 / 3})
    assert scores["mean_f1"] == pytest.approx(4 / 9)
    assert scores["overall_accuracy"] == pytest.approx(1 / 2)
    # Every class is present, so the study's per-batch scores of this single batch equal the dataset-level ones.
    assert study_batch_miou(cm) == pytest.approx(1 / 3)
    assert study_batch_mpa(cm) == pytest.approx(5 / 9)


@pytest.mark.parametrize(
    "refs, preds, expected",
    [
        pytest.param(
            # Class 2 in neither: confusion [[2,0,0], [1,1,0], [0,0,0]].
            [[0, 1], [1, 0]],
            [[0, 1], [0, 0]],
            dict(
                iou=[2 / 3, 1 / 2, NAN],
                recall=[1.0, 1 / 2, NAN],
                precision=[2 / 3, 1.0, NAN],
                mean_iou=(2 / 3 + 1 / 2) / 2,
                mean_pixel_accuracy=3 / 4,
                study_miou=(2 / 3 + 1 / 2) / 2,
                study_mpa=(1 + 1 / 2 + 0) / 3,
            ),
            id="absent-from-both",
        ),
        pytest.param(
            # Class 2 only in the ground truth: confusion [[1,0,0], [0,0,0], [1,0,0]].
            [[0, 2]],
            [[0, 0]],
            dict(
                iou=[1 / 2, NAN, 0.0],
                recall=[1.0, NAN, 0.0],
                precision=[1 / 2, NAN, NAN],
                mean_iou=1 / 4,
                mean_pixel_accuracy=1 / 2,
                study_miou=1 / 4,
                study_mpa=1 / 3,
            ),
            id="ground-truth-only",
        ),
        pytest.param(
            # Class 2 only in the prediction: confusion [[1,0,1], [0,0,0], [0,0,0]].
            [[0, 0]],
            [[0, 2]],
            dict(
                iou=[1 / 2, NAN, 0.0],
                recall=[1 / 2, NAN, NAN],
                precision=[1.0, NAN, 0.0],
                mean_iou=1 / 4,
                mean_pixel_accuracy=1 / 2,
                study_miou=1 / 4,
                study_mpa=(1 / 2 + 0 + 0) / 3,
            ),
            id="prediction-only",
        ),
    ],
)
def test_absent_classes(refs, preds, expected):
    cm = confusion_matrix(preds, refs, num_labels=3)
    scores = segmentation_scores(cm)
    for name in ("iou", "recall", "precision"):
        np.testing.assert_allclose(list(scores[f"per_class_{name}"].values()), expected[name], err_msg=name)
    assert scores["mean_iou"] == pytest.approx(expected["mean_iou"])
    assert scores["mean_pixel_accuracy"] == pytest.approx(expected["mean_pixel_accuracy"])
    assert not math.isnan(scores["mean_f1"])
    assert study_batch_miou(cm) == pytest.approx(expected["study_miou"])
    assert study_batch_mpa(cm) == pytest.approx(expected["study_mpa"])


@pytest.mark.parametrize("ignore_index", [255, -100])
def test_ignore_index_drops_pixels_whatever_was_predicted(ignore_index):
    refs = np.array([[0, 1, ignore_index], [1, ignore_index, 0]])
    # Predictions under ignored pixels may be anything, even out of range.
    preds = np.array([[0, 1, 7], [0, -3, 1]])
    cm = confusion_matrix(preds, refs, num_labels=2, ignore_index=ignore_index)
    np.testing.assert_array_equal(cm, [[1, 1], [1, 1]])
    expected = multiclass_confusion_matrix(
        torch.from_numpy(np.where(refs == ignore_index, 0, preds)), torch.from_numpy(refs), 2, ignore_index=ignore_index
    )
    np.testing.assert_array_equal(cm, expected.numpy())


def test_confusion_matrix_accepts_tensors_and_lists_alike():
    preds, refs = next(random_batches(1, num_labels=4, seed=3))
    from_tensors = confusion_matrix(preds.to(torch.uint8), refs, num_labels=4)
    np.testing.assert_array_equal(from_tensors, confusion_matrix(preds.tolist(), refs.numpy(), num_labels=4))
    np.testing.assert_array_equal(from_tensors, multiclass_confusion_matrix(preds, refs, 4).numpy())
    assert from_tensors.sum() == refs.numel()


@pytest.mark.parametrize(
    "preds, refs, kwargs, error, match",
    [
        ([[0, 1]], [[0, 3]], {}, ValueError, r"references contain values \[3\] outside the classes 0\.\.2"),
        ([[-1, 5]], [[0, 1]], {}, ValueError, r"predictions contain values \[-1, 5\] outside"),
        ([[0, 1]], [[0, 9]], {"ignore_index": 255}, ValueError, r"references contain values \[9\]"),
        ([[0, 1]], [[0, 1]], {"ignore_index": 1}, ValueError, r"ignore_index=1 is one of the classes"),
        ([[0.2, 0.8]], [[0, 1]], {}, TypeError, r"predictions must hold integer class ids.*float64"),
        ([[0, 1, 1]], [[0, 1]], {}, ValueError, r"same shape, got \(1, 3\) and \(1, 2\)"),
    ],
)
def test_confusion_matrix_rejects_bad_input(preds, refs, kwargs, error, match):
    with pytest.raises(error, match=match):
        confusion_matrix(preds, refs, num_labels=3, **kwargs)


def test_segmentation_scores_rejects_bad_matrices():
    with pytest.raises(ValueError, match="empty"):
        segmentation_scores(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="square"):
        segmentation_scores(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"no name for class ids \[1\]"):
        segmentation_scores(np.ones((2, 2), dtype=np.int64), id2label={0: "background"})


@pytest.mark.parametrize("ignore_index", [None, 255])
def test_study_variants_match_torchmetrics_per_batch(ignore_index):
    num_labels = 4
    accumulator = ConfusionAccumulator(num_labels, ignore_index=ignore_index)
    torchmetrics_miou, torchmetrics_mpa = [], []
    all_preds, all_refs = [], []
    for preds, refs in random_batches(8, num_labels, seed=0, ignore_index=ignore_index):
        accumulator.update(preds, refs)
        torchmetrics_miou.append(
            multiclass_jaccard_index(preds, refs, num_labels, average="macro", ignore_index=ignore_index).item()
        )
        # The study's mPA: per-class recall with an absent class counted 0, averaged over ALL classes.
        recall = multiclass_recall(preds, refs, num_labels, average="none", ignore_index=ignore_index)
        torchmetrics_mpa.append(recall.mean().item())
        all_preds.append(preds)
        all_refs.append(refs)

    scores = accumulator.compute()
    assert accumulator.batch_miou == pytest.approx(torchmetrics_miou, abs=1e-6)
    assert accumulator.batch_mpa == pytest.approx(torchmetrics_mpa, abs=1e-6)
    assert scores["study_batch_miou"] == pytest.approx(np.mean(torchmetrics_miou), abs=1e-6)
    assert scores["study_batch_mpa"] == pytest.approx(np.mean(torchmetrics_mpa), abs=1e-6)
    # Dataset-level mIoU is torchmetrics' macro Jaccard over the whole set at once, not the mean over batches.
    whole_set = multiclass_jaccard_index(
        torch.cat(all_preds), torch.cat(all_refs), num_labels, average="macro", ignore_index=ignore_index
    )
    assert scores["mean_iou"] == pytest.approx(whole_set.item(), abs=1e-6)
    assert scores["mean_iou"] != pytest.approx(scores["study_batch_miou"])


def test_accumulator_sums_batches_and_skips_unlabelled_ones():
    accumulator = ConfusionAccumulator(num_labels=2, ignore_index=255)
    with pytest.raises(ValueError, match="empty"):
        accumulator.compute()
    first = accumulator.update(np.array(TWO_CLASS_PREDS), np.array(TWO_CLASS_REFS))
    accumulator.update(np.array([[1, 0]]), np.array([[255, 255]]))
    accumulator.update(np.array([[1, 1]]), np.array([[1, 1]]))
    np.testing.assert_array_equal(accumulator.confusion, first + [[0, 0], [0, 2]])
    # The all-ignored batch has no per-batch score; the two others do (second batch: class 0 absent from both).
    assert accumulator.batch_miou == pytest.approx([(2 / 5 + 1 / 4) / 2, 1.0])
    assert accumulator.batch_mpa == pytest.approx([0.5, (0 + 1) / 2])
    with pytest.raises(ValueError, match=r"must be \(2, 2\)"):
        accumulator.add_batch_confusion(np.zeros((3, 3), dtype=np.int64))
    assert set(accumulator.compute(study_variants=False)) == set(segmentation_scores(first))


def test_evaluate_module_equals_accumulator(segmentation_metric):
    num_labels, batch_size = 4, 2
    accumulator = ConfusionAccumulator(num_labels, ignore_index=255)
    predictions, references = [], []
    for preds, refs in random_batches(3, num_labels, seed=1, ignore_index=255):
        accumulator.update(preds.numpy(), refs.numpy())
        predictions.extend(preds.numpy())
        references.extend(refs.numpy())
    id2label = {0: "a", 1: "b", 2: "c", 3: "d"}

    # add_batch in two chunks of images, then compute: the chunking must not matter.
    segmentation_metric.add_batch(predictions=predictions[:3], references=references[:3])
    segmentation_metric.add_batch(predictions=predictions[3:], references=references[3:])
    scores = segmentation_metric.compute(
        num_labels=num_labels, ignore_index=255, id2label=id2label, study_batch_size=batch_size
    )
    assert_scores_equal(scores, accumulator.compute(id2label))


def test_evaluate_module_handles_images_of_different_sizes(segmentation_metric):
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 3, shape) for shape in [(5, 7), (9, 4), (6, 6)]]
    labels = [rng.integers(0, 3, image.shape) for image in images]
    scores = segmentation_metric.compute(
        predictions=images, references=labels, num_labels=3, study_variants=False
    )
    expected = sum(confusion_matrix(image, label, 3) for image, label in zip(images, labels))
    assert scores["confusion_matrix"] == expected.tolist()
    assert "study_batch_miou" not in scores
    assert scores["mean_iou"] == pytest.approx(segmentation_scores(expected)["mean_iou"])


def test_plot_confusion_matrix_writes_png(tmp_path):
    cm = np.array([[50, 3, 0], [4, 20, 1], [0, 0, 0]])
    path = plot_confusion_matrix(cm, ["background", "salt", "never seen"], tmp_path / "plots" / "cm.png")
    assert path == tmp_path / "plots" / "cm.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 0 and image.height > 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["cm.png"]

    with pytest.raises(ValueError, match="label_names has 2 names for a 3x3"):
        plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="normalize must be one of"):
        plot_confusion_matrix(cm, ["a", "b", "c"], tmp_path / "bad.png", normalize="rows")
    assert not (tmp_path / "bad.png").exists()
