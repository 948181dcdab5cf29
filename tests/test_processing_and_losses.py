"""Image processor normalisation and post-processing; loss terms against hand-computed values."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from transformers import AutoImageProcessor
from transformers.modeling_outputs import SemanticSegmenterOutput

import geofm_hf
from geofm_hf.models.geofm.image_processing_geofm import GREY_IMAGENET_MEAN, GREY_IMAGENET_STD, AmplitudeStats
from geofm_hf.models.losses import SegmentationLoss, dice_loss, focal_loss, lovasz_loss


def test_percentile_normalisation_matches_a_hand_computation():
    image = np.arange(101, dtype=np.float32).reshape(1, 101) * 10.0  # values 0..1000: percentile k is 10 k
    processor = geofm_hf.GeoFMImageProcessor(clip_percentiles=(10, 90))
    assert processor.amplitude_stats(image) == AmplitudeStats(100.0, 800.0)
    out = processor.normalize(image)
    expected = (np.clip((image - 100.0) / 800.0, 0, 1) - GREY_IMAGENET_MEAN) / GREY_IMAGENET_STD
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32


def test_standardize_and_study_modes():
    image = np.array([[0.0, 2.0], [4.0, 6.0]], dtype=np.float32)
    standard = geofm_hf.GeoFMImageProcessor(normalization="standardize").normalize(image)
    np.testing.assert_allclose(standard, (image - 3.0) / math.sqrt(5.0), rtol=1e-6)
    study = geofm_hf.GeoFMImageProcessor(normalization="study").normalize(np.array([[12.7, 300.0, -5.0]]))
    np.testing.assert_allclose(study, [[12.0 / 255, 1.0, 0.0]], rtol=1e-6)


def test_byte_mode_keeps_each_pictures_brightness_and_contrast():
    processor = geofm_hf.GeoFMImageProcessor(normalization="byte")
    dim_flat = np.array([[100.0, 110.0], [120.0, 130.0]], dtype=np.float32)
    out = processor.normalize(dim_flat)
    np.testing.assert_allclose(out, (dim_flat / 255.0 - GREY_IMAGENET_MEAN) / GREY_IMAGENET_STD, rtol=1e-6)
    # Per-picture percentiles would stretch this 30-level range over the whole input range; here it stays 30 levels.
    assert out.max() - out.min() == pytest.approx(30.0 / 255.0 / GREY_IMAGENET_STD, rel=1e-6)


@pytest.mark.parametrize("values", [[[-1.0, 10.0]], [[0.0, 255.5]]])
def test_byte_mode_refuses_values_outside_the_byte_range(values):
    with pytest.raises(ValueError, match="normalization='byte'.*0-255"):
        geofm_hf.GeoFMImageProcessor(normalization="byte").normalize(np.array(values))


def test_shared_stats_are_used_for_every_tile():
    volume = np.random.default_rng(0).normal(size=(4, 30, 30)).astype(np.float32)
    processor = geofm_hf.GeoFMImageProcessor()
    stats = processor.amplitude_stats(volume)
    tiles = [processor.normalize(volume[i], stats) for i in range(4)]
    np.testing.assert_array_equal(np.stack(tiles), processor.normalize(volume, stats))


def test_large_sections_get_the_exact_percentiles_by_bracketed_selection():
    # 900 x 900 = 810,000 values 0..809,999 shuffled: percentile p is p * 8099.99, hand-checkable; the bracketing
    # sample is strided, so the shuffle decides which values it sees.
    values = np.random.default_rng(0).permutation(900 * 900).astype(np.float32).reshape(900, 900)
    processor = geofm_hf.GeoFMImageProcessor(clip_percentiles=(1, 99))
    stats = processor.amplitude_stats(values)
    assert stats.offset == pytest.approx(8099.99, abs=1e-9) and stats.scale == pytest.approx(98 * 8099.99, abs=1e-6)


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).standard_normal((896, 896)) * np.where(np.arange(896) % 7 == 0, 10, 1),  # spiky
        np.repeat(np.arange(12), 80_000),  # ties across the percentiles
        # 262,144 values: the bracketing sample takes every 16th, so it sees one value of a period-16 pattern, or only
        # the spikes (whose brackets then miss the middle percentiles, and the whole array is searched).
        np.tile(np.arange(16), 16_384),
        np.where(np.arange(262_144) % 16 == 0, 1e6, 0.0),
        np.sort(np.random.default_rng(2).standard_normal(300_000))[::-1],
    ],
    ids=["spiky", "ties", "periodic", "sampled-spikes", "sorted"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_percentile_stats_equal_numpy_bit_for_bit(values, dtype):
    values = np.ascontiguousarray(values, dtype=dtype)
    for percentiles in ((1, 99), (0, 100), (0.001, 99.999), (50, 50.5)):
        processor = geofm_hf.GeoFMImageProcessor(clip_percentiles=percentiles)
        low, high = np.percentile(values.astype(np.float64), percentiles)
        assert processor.amplitude_stats(values) == AmplitudeStats(float(low), float(high - low) or 1.0)


def test_small_sections_keep_numpy_percentiles():
    # Up to PERCENTILE_SELECTION_MIN_SIZE values (a 101 x 101 TGS patch has 10,201) np.percentile runs as before.
    image = np.random.default_rng(3).standard_normal((101, 101)).astype(np.float32)
    low, high = np.percentile(image.astype(np.float64), (1, 99))
    assert geofm_hf.GeoFMImageProcessor().amplitude_stats(image) == AmplitudeStats(float(low), float(high - low))


def test_nan_is_refused_with_its_position():
    image = np.zeros((5, 6), dtype=np.float32)
    image[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"image 0: 1 NaN or Inf value\(s\); the first \(nan\) is at index \(2, 3\)"):
        geofm_hf.GeoFMImageProcessor()(image)


def test_preprocess_shapes_and_errors():
    processor = geofm_hf.GeoFMImageProcessor()
    batch = processor([np.random.rand(20, 30), np.random.rand(20, 30)])
    assert batch["pixel_values"].shape == (2, 1, 20, 30) and batch["pixel_values"].dtype == torch.float32
    with pytest.raises(ValueError, match="must share a shape"):
        processor([np.random.rand(20, 30), np.random.rand(21, 30)])
    with pytest.raises(ValueError, match=r"expected \(height, width\), \(1, height, width\) or a picture"):
        processor(np.random.rand(3, 20, 30))


def test_post_process_returns_class_maps_at_the_target_sizes():
    logits = torch.zeros(2, 3, 4, 4)
    logits[0, 2] = 1.0
    logits[1, 1, :, 2:] = 1.0
    maps = geofm_hf.GeoFMImageProcessor().post_process_semantic_segmentation(
        SemanticSegmenterOutput(logits=logits), target_sizes=[(4, 4), (8, 8)]
    )
    assert torch.equal(maps[0], torch.full((4, 4), 2))
    assert maps[1].shape == (8, 8) and maps[1][:, :3].eq(0).all() and maps[1][:, 5:].eq(1).all()


def test_processor_round_trips_through_auto_image_processor(tmp_path, tiny_config):
    """Beside a model (what training and the Hub hold), AutoImageProcessor finds the processor through the model's
    config; a processor saved alone loads with its own class."""
    processor = geofm_hf.GeoFMImageProcessor(normalization="standardize", clip_percentiles=(2, 98))
    processor.save_pretrained(tmp_path)
    alone = geofm_hf.GeoFMImageProcessor.from_pretrained(tmp_path)
    tiny_config().save_pretrained(tmp_path)
    for reloaded in (alone, AutoImageProcessor.from_pretrained(tmp_path)):
        assert type(reloaded) is geofm_hf.GeoFMImageProcessor
        assert (reloaded.normalization, reloaded.clip_percentiles) == ("standardize", [2.0, 98.0])


def test_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match="normalization='zscore' is unknown"):
        geofm_hf.GeoFMImageProcessor(normalization="zscore")


def test_cross_entropy_term_equals_torch_and_respects_ignore_index():
    logits = torch.randn(2, 3, 5, 5)
    labels = torch.randint(0, 3, (2, 5, 5))
    labels[0, 0, 0] = 255
    loss = SegmentationLoss({"cross_entropy": 1.0})(logits, labels)
    assert torch.allclose(loss, F.cross_entropy(logits, labels, ignore_index=255))


def test_dice_is_zero_for_a_confident_perfect_prediction_and_hand_computed_otherwise():
    labels = torch.tensor([[[0, 1], [1, 1]]])
    perfect = F.one_hot(labels, 2).permute(0, 3, 1, 2).float() * 100
    assert dice_loss(perfect, labels, None, 255, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros(1, 2, 2, 2)  # p = 0.5 everywhere
    # class 0: inter 0.5, total 2 + 1 -> 1 - 2/4; class 1: inter 1.5, total 2 + 3 -> 1 - 4/6
    expected = ((1 - 2 / 4) + (1 - 4 / 6)) / 2
    assert dice_loss(uniform, labels, None, 255, 2.0).item() == pytest.approx(expected)


def test_focal_with_gamma_zero_is_cross_entropy_and_class_weights_apply():
    logits = torch.randn(1, 2, 3, 3)
    labels = torch.randint(0, 2, (1, 3, 3))
    assert focal_loss(logits, labels, None, 255, 0.0).item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    weights = torch.tensor([0.0, 1.0])
    per_pixel = F.cross_entropy(logits, labels, reduction="none")
    expected = (per_pixel * (labels == 1)).sum() / labels.numel()
    assert focal_loss(logits, labels, weights, 255, 0.0).item() == pytest.approx(expected.item(), rel=1e-5)


def confident(classes: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Logits whose softmax is one-hot on ``classes`` (batch, height, width) to float precision."""
    return F.one_hot(classes, num_labels).permute(0, 3, 1, 2).float() * 100


def test_lovasz_is_one_minus_iou_at_confident_predictions_over_the_classes_present():
    labels = torch.tensor([[[1, 1], [0, 0]]])
    # class 1: intersection 1, union 3; class 0: the same.
    half_right = confident(torch.tensor([[[1, 0], [1, 0]]]), 2)
    assert lovasz_loss(half_right, labels, None, 255, 2.0).item() == pytest.approx(2 / 3)
    assert lovasz_loss(confident(labels, 2), labels, None, 255, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    # Three classes, class 2 predicted once but absent from the labels: class 0 IoU 1/2, class 1 IoU 1; 2 skipped.
    labels = torch.tensor([[[0, 0], [1, 1]]])
    predicted = confident(torch.tensor([[[0, 2], [1, 1]]]), 3)
    assert lovasz_loss(predicted, labels, None, 255, 2.0).item() == pytest.approx(0.25)
    # Class weights 0 / 1 / 0 keep class 1 alone.
    class_one = torch.tensor([0.0, 1.0, 0.0])
    assert lovasz_loss(predicted, labels, class_one, 255, 2.0).item() == pytest.approx(0.0, abs=1e-6)


def test_lovasz_hand_computed_at_uniform_probabilities_ignores_pixels_and_has_gradients():
    labels = torch.tensor([[[0, 1], [1, 1]]])
    # Every error is 0.5 and a class's steps add up to one minus its IoU with nothing right (1): 0.5 per class.
    uniform = torch.zeros(1, 2, 2, 2, requires_grad=True)
    loss = lovasz_loss(uniform, labels, None, 255, 2.0)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert torch.isfinite(uniform.grad).all() and uniform.grad.abs().sum() > 0
    ignored = torch.tensor([[[1, 255], [0, 0]]])
    right = confident(torch.tensor([[[1, 1], [0, 0]]]), 2)
    wrong_where_ignored = confident(torch.tensor([[[1, 0], [0, 0]]]), 2)
    assert lovasz_loss(right, ignored, None, 255, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert lovasz_loss(wrong_where_ignored, ignored, None, 255, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    nothing = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = lovasz_loss(nothing, torch.full((1, 2, 2), 255), None, 255, 2.0)
    loss.backward()
    assert loss.item() == 0.0 and nothing.grad is not None


def test_weighted_sum_of_terms():
    logits = torch.randn(1, 2, 4, 4)
    labels = torch.randint(0, 2, (1, 4, 4))
    combined = SegmentationLoss({"cross_entropy": 0.5, "dice": 2.0})(logits, labels)
    expected = 0.5 * F.cross_entropy(logits, labels) + 2.0 * dice_loss(logits, labels, None, 255, 2.0)
    assert combined.item() == pytest.approx(expected.item(), rel=1e-6)
