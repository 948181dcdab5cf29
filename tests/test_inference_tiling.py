"""Tiled prediction: blending windows, tile grids, exact placement, seams, volumes along each axis, streaming."""

import types

import numpy as np
import pytest
import torch
from torch import nn

import geofm_hf
from geofm_hf.inference import TileGrid, predict_tiled, window_weights
from geofm_hf.inference.blending import BLEND_WINDOWS
from geofm_hf.io import ArrayReader
from stand_ins import CoordinateModel, stand_in_config, unique_values

BLENDS = sorted(BLEND_WINDOWS)


class ConvModel(nn.Module):
    """Translation-equivariant stand-in: three 5x5 convolutions with zero padding (edge effects like a real CNN)."""

    def __init__(self):
        super().__init__()
        self.config = stand_in_config()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(8, 8, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(8, 2, 5, padding=2),
        )
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in self.net.parameters():
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))

    def forward(self, pixel_values):
        return types.SimpleNamespace(logits=self.net(pixel_values))


class ConstantModel(nn.Module):
    """Logits (100, -100) everywhere: probabilities exactly (1, 0) in float32."""

    def __init__(self):
        super().__init__()
        self.config = stand_in_config()

    def forward(self, pixel_values):
        ones = torch.ones_like(pixel_values)
        return types.SimpleNamespace(logits=torch.cat([100 * ones, -100 * ones], dim=1))


@pytest.fixture(scope="module")
def processor():
    return geofm_hf.GeoFMImageProcessor()


def border_and_interior_jumps(values, grid, margin=4):
    """Largest jump between neighbouring columns at tile edges, and elsewhere away from the image's edges."""
    jumps = np.abs(np.diff(values, axis=1))
    borders = {start - 1 for start in grid.starts[1]} | {start + grid.tile[1] - 1 for start in grid.starts[1]}
    borders = sorted(b for b in borders if 0 <= b < jumps.shape[1])
    interior = [c for c in range(margin, jumps.shape[1] - margin) if c not in borders]
    return jumps[:, borders].max(), jumps[:, interior].max()


# --- blending windows ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blend", BLENDS)
def test_window_shape_positive_symmetric(blend):
    weights = window_weights((12, 17), (3, 5), blend)
    assert weights.shape == (12, 17) and weights.dtype == np.float32
    assert (weights > 0).all()
    np.testing.assert_array_equal(weights, weights[::-1, :])
    np.testing.assert_array_equal(weights, weights[:, ::-1])


def test_window_values_by_hand():
    gaussian = window_weights((8, 1), (0, 0), "gaussian")[:, 0]
    # length 8: sigma = 1, centre between samples 3 and 4, so sample 0 sits 3.5 sigma out.
    np.testing.assert_allclose(gaussian[[0, 3]], np.exp([-0.5 * 3.5**2, -0.5 * 0.5**2]), rtol=1e-6)
    cosine = window_weights((8, 1), (2, 0), "cosine")[:, 0]
    low, high = np.sin(np.pi / 8) ** 2, np.sin(3 * np.pi / 8) ** 2
    expected = [low, high, 1, 1, 1, 1, high, low]
    np.testing.assert_allclose(cosine, expected, rtol=1e-6)
    # Ramps of tiles overlapping by exactly the ramp length cross-fade to 1.
    np.testing.assert_allclose(cosine[:2] + cosine[-2:], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(window_weights((3, 4), (1, 1), "constant"), np.ones((3, 4)))
    with pytest.raises(ValueError, match="blend='hann' is unknown"):
        window_weights((4, 4), (1, 1), "hann")


@pytest.mark.parametrize("blend", BLENDS)
def test_normalisation_gives_exactly_one_where_tiles_agree(blend):
    section = np.zeros((37, 61), np.float32)
    output = predict_tiled(ConstantModel(), section, tile=16, overlap=5, blend=blend, progress=False)
    assert (output[0] == 1.0).all() and (output[1] == 0.0).all()


# --- tile grid ----------------------------------------------------------------------------------------------------


def test_tile_grid_by_hand():
    grid = TileGrid.plan((100, 150), 64, 0.25)
    # overlap 16 -> stride at most 48: rows need 1 + ceil(36 / 48) = 2 tiles, columns 1 + ceil(86 / 48) = 3.
    assert grid.starts == ((0, 36), (0, 43, 86))
    assert grid.overlap == (16, 16) and grid.tile == (64, 64) and len(grid) == 6
    assert TileGrid.plan((30, 500), (64, 100), 10).tile == (30, 100)
    small = TileGrid.plan((5, 40), 32, 0.25, min_size=14)
    assert small.tile == (14, 32) and small.padded_shape == (14, 40) and small.starts == ((0,), (0, 8))


@pytest.mark.parametrize(
    "shape,tile,overlap", [((100, 150), 64, 0.25), ((57, 300), (20, 33), 7), ((500, 31), 100, 0.5)]
)
def test_tile_grid_covers_with_overlap(shape, tile, overlap):
    grid = TileGrid.plan(shape, tile, overlap)
    coverage = np.zeros(grid.padded_shape, int)
    for origin in grid.origins:
        coverage[grid.window(origin)] += 1
    assert (coverage >= 1).all()
    for starts, side, lap, length in zip(grid.starts, grid.tile, grid.overlap, grid.padded_shape):
        assert starts[0] == 0 and starts[-1] + side == length
        assert all(side - step >= lap for step in np.diff(starts))


@pytest.mark.parametrize("overlap", [1.0, -0.1, 64, -1, "0.2"])
def test_tile_grid_rejects_bad_overlap(overlap):
    with pytest.raises(ValueError, match="overlap"):
        TileGrid.plan((100, 100), 64, overlap)


def test_tile_smaller_than_model_minimum_is_refused():
    with pytest.raises(ValueError, match="minimum input of 14"):
        TileGrid.plan((100, 100), 10, 0.25, min_size=14)


# --- 2-D prediction -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blend", BLENDS)
def test_every_sample_lands_where_it_belongs(blend):
    section = unique_values((50, 73))
    out = np.full((2, 50, 73), np.nan, np.float32)
    result = predict_tiled(CoordinateModel(), section, tile=16, overlap=5, blend=blend, out=out, progress=False)
    assert result is out and not np.isnan(out).any()
    np.testing.assert_allclose(out[0], section, rtol=1e-5)


def test_sections_smaller_than_model_minimum_are_reflect_padded():
    model = CoordinateModel(pad_multiple=14)
    section = unique_values((6, 40))
    probabilities = predict_tiled(model, section, tile=28, overlap=0.25, progress=False)
    assert set(model.tile_shapes) == {(14, 28)}
    np.testing.assert_allclose(probabilities[0], section, rtol=1e-5)


def test_labels_and_one_class(tiny_model, processor):
    model = tiny_model()
    section = np.random.default_rng(1).standard_normal((40, 90)).astype(np.float32)
    settings = dict(tile=28, processor=processor, progress=False)
    probabilities = predict_tiled(model, section, **settings)
    labels = predict_tiled(model, section, output="labels", **settings)
    fault = predict_tiled(model, section, output_class="fault", **settings)
    assert labels.dtype == np.uint8 and labels.shape == (40, 90)
    np.testing.assert_array_equal(labels, probabilities.argmax(0))
    np.testing.assert_array_equal(fault, probabilities[1])
    np.testing.assert_allclose(probabilities.sum(0), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="not one of the model's classes"):
        predict_tiled(model, section, output_class="salt", **settings)


def test_equals_whole_image_forward_when_it_fits_one_tile(tiny_model, processor):
    model = tiny_model()
    section = np.random.default_rng(2).standard_normal((40, 61)).astype(np.float32)
    pixel_values = torch.from_numpy(processor.normalize(section, processor.amplitude_stats(section)))[None, None]
    with torch.no_grad():
        expected = model(pixel_values=pixel_values).logits.softmax(dim=1)[0].numpy()
    for tile in (None, (40, 61)):  # default tile (the task's 896) shrinks to the section
        result = predict_tiled(model, section, tile=tile, processor=processor, progress=False, precision="fp32")
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_bf16_predicts_in_float32_close_to_fp32(tiny_model, processor):
    model = tiny_model()
    section = np.random.default_rng(2).standard_normal((40, 61)).astype(np.float32)
    fp32, bf16 = (
        predict_tiled(model, section, tile=28, processor=processor, progress=False, precision=precision)
        for precision in ("fp32", "bf16")
    )
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)  # it did run in bf16
    np.testing.assert_allclose(bf16, fp32, atol=0.05)
    with pytest.raises(ValueError, match="precision='fp8' is unknown; expected one of auto, bf16, fp16, fp32"):
        predict_tiled(model, section, processor=processor, progress=False, precision="fp8")


def test_deterministic(tiny_model, processor):
    model = tiny_model()
    section = np.random.default_rng(3).standard_normal((50, 80)).astype(np.float32)
    first, second = (predict_tiled(model, section, tile=28, processor=processor, progress=False) for _ in range(2))
    np.testing.assert_array_equal(first, second)


# --- seams --------------------------------------------------------------------------------------------------------


def test_no_seams_with_a_translation_equivariant_model():
    model = ConvModel()
    rows, cols = np.mgrid[0:64, 0:150]
    smooth = (np.sin(cols / 9.0) + np.cos(rows / 7.0)).astype(np.float32)
    whole = predict_tiled(model, smooth, tile=smooth.shape, progress=False)[1]
    smoothest = np.abs(np.diff(whole, axis=1))[:, 4:-4].max()
    grid = TileGrid.plan(smooth.shape, 32, 0.25)
    border = {}
    for blend in BLENDS:
        tiled = predict_tiled(model, smooth, tile=32, overlap=0.25, blend=blend, progress=False)[1]
        border[blend], _ = border_and_interior_jumps(tiled, grid)
    assert border["gaussian"] <= smoothest and border["cosine"] <= smoothest
    assert border["constant"] > smoothest  # plain averaging leaves steps: the measure does see seams


def test_no_seams_with_the_real_model(tiny_model, processor):
    model = tiny_model()
    constant = np.ones((64, 200), np.float32)
    grid = TileGrid.plan(constant.shape, 42, 0.25, min_size=14)
    ratio = {}
    for blend in BLENDS:
        tiled = predict_tiled(model, constant, tile=42, blend=blend, processor=processor, progress=False)[1]
        at_borders, elsewhere = border_and_interior_jumps(tiled, grid)
        ratio[blend] = at_borders / elsewhere
    assert ratio["gaussian"] <= 1.0 and ratio["cosine"] <= 1.0
    assert ratio["constant"] > 1.0


# --- volumes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", ["inline", "crossline", "time", "all", ("inline", "time")])
def test_volume_along_each_axis_and_averaged(axis):
    volume = unique_values((6, 9, 20))
    out = np.full((6, 9, 20), np.nan, np.float32)
    predict_tiled(CoordinateModel(), volume, tile=8, overlap=2, axis=axis, output_class=0, out=out, progress=False)
    np.testing.assert_allclose(out, volume, rtol=1e-5)


def test_sections_are_shown_to_the_model_with_time_down():
    volume = unique_values((6, 9, 20))
    expected = {"inline": (20, 9), "crossline": (20, 6), "time": (6, 9)}
    for axis, shape in expected.items():
        model = CoordinateModel()
        predict_tiled(model, volume, tile=64, axis=axis, progress=False)
        assert set(model.tile_shapes) == {shape}


def test_several_directions_average_their_probabilities(tmp_path):
    model = ConvModel()
    volume = np.random.default_rng(4).standard_normal((7, 10, 16)).astype(np.float32)
    settings = dict(tile=8, overlap=2, progress=False)
    single = [predict_tiled(model, volume, axis=axis, **settings) for axis in ("inline", "crossline", "time")]
    averaged = predict_tiled(model, volume, axis="all", scratch_dir=tmp_path, **settings)
    np.testing.assert_allclose(averaged, np.mean(single, axis=0), atol=1e-6)
    labels = predict_tiled(model, volume, axis="all", output="labels", scratch_dir=tmp_path, **settings)
    np.testing.assert_array_equal(labels, averaged.argmax(0))
    assert list(tmp_path.iterdir()) == []  # the on-disk accumulator is removed


class CountingReader(ArrayReader):
    """Counts sections read but not yet written, through a writer that reports back."""

    def __init__(self, array):
        super().__init__(array)
        self.in_flight = self.most_in_flight = self.reads = 0

    def read_section(self, axis, index):
        self.reads += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return super().read_section(axis, index)


class CountingWriter:
    def __init__(self, shape, reader):
        self.array, self.shape, self.reader = np.zeros(shape, np.float32), shape, reader

    def __setitem__(self, key, values):
        self.array[key] = values
        self.reader.in_flight -= 1


def test_streaming_keeps_few_sections_in_memory():
    volume = unique_values((40, 12, 30))
    reader = CountingReader(volume)
    writer = CountingWriter(volume.shape, reader)
    # 2 tiles per (30, 12) section and 4 tiles per batch: a batch spans at most 3 sections.
    settings = dict(tile=(20, 12), overlap=4, batch_size=4, output_class=0, progress=False)
    predict_tiled(CoordinateModel(), reader, out=writer, **settings)
    assert reader.reads == 40 and reader.in_flight == 0
    assert reader.most_in_flight <= 3
    np.testing.assert_allclose(writer.array, volume, rtol=1e-5)


def test_out_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"out has shape \(6, 9, 20\); this prediction needs \(2, 6, 9, 20\)"):
        predict_tiled(CoordinateModel(), unique_values((6, 9, 20)), tile=8, out=np.zeros((6, 9, 20)), progress=False)


class CountingProcessor(geofm_hf.GeoFMImageProcessor):
    stats_calls = 0

    def amplitude_stats(self, data):
        self.stats_calls += 1
        return super().amplitude_stats(data)


def test_survey_wide_statistics_are_computed_once_and_used_for_every_section():
    model = ConvModel()
    rng = np.random.default_rng(5)
    volume = (rng.standard_normal((8, 10, 16)) * np.linspace(0.1, 10.0, 8)[:, None, None]).astype(np.float32)
    processor = CountingProcessor(normalization="standardize")
    result = predict_tiled(model, volume, tile=8, axis="all", processor=processor, progress=False)
    assert processor.stats_calls == 1
    normalised = processor.normalize(volume, processor.amplitude_stats(volume))
    expected = predict_tiled(model, normalised, tile=8, axis="all", progress=False)
    np.testing.assert_allclose(result, expected, atol=1e-6)
    predict_tiled(model, volume, tile=8, processor=processor, stats=processor.amplitude_stats(volume), progress=False)
    assert processor.stats_calls == 3  # the two explicit calls above; none inside
