"""The prediction plan: worked out once, checked before any section is read, the same from `geofm predict` and
`predict_tiled`."""

import numpy as np
import pytest

import geofm_hf
from geofm_hf.cli import main
from geofm_hf.cli import predict as predict_command
from geofm_hf.inference import tiling
from geofm_hf.inference import OutputMode, PredictionPlan, TileGrid, plan_prediction, predict_tiled, predict_with_plan
from geofm_hf.io import SECTION_AXES, ArrayReader, SegyReader


class UnreadableReader(ArrayReader):
    """A volume whose sections must not be read: the options are checked from its shape alone."""

    def read_section(self, axis, index):
        raise AssertionError(f"section {index} along axis {axis} was read before the options were checked")


class Planned(Exception):
    """Raised by the stand-in for the prediction machinery once it has been handed a plan."""


@pytest.fixture
def handed_plans(monkeypatch) -> list[PredictionPlan]:
    """The plans `predict_tiled` and `geofm predict` hand to `predict_with_plan` (which then stops them)."""
    plans = []

    def record(model, data, plan, *args, **kwargs):
        plans.append(plan)
        raise Planned

    # Both modules are imported above: importing the command's while the library's is patched would bind the stand-in.
    monkeypatch.setattr(tiling, "predict_with_plan", record)
    monkeypatch.setattr(predict_command, "predict_with_plan", record)
    return plans


def test_volume_plan_by_hand(tiny_config):
    volume = UnreadableReader(np.zeros((6, 5, 40), np.float32))
    plan = plan_prediction(tiny_config(), volume, tile=28, overlap=7, axis="crossline,time", output_class="fault")
    assert plan.axes == (SECTION_AXES["crossline"], SECTION_AXES["time"]) and plan.is_volume
    # Crossline sections are (time, inline) pictures; the tile shrinks to them but not below the model's 14.
    assert plan.grids == (TileGrid.plan((40, 6), 28, 7, min_size=14), TileGrid.plan((6, 5), 28, 7, min_size=14))
    assert plan.grids[0].tile == (28, 14) and plan.grids[1].padded_shape == (14, 14)
    assert plan.mode == OutputMode(labels=False, class_index=1, num_labels=2)
    assert plan.output_shape == (6, 5, 40) and plan.output_dtype == np.float32
    assert plan.section_count == 5 and (plan.blend, plan.batch_size) == ("gaussian", 8)


def test_section_plan_by_hand(tiny_config):
    section = np.zeros((30, 44), np.float32)
    labels = plan_prediction(tiny_config(), section, tile=28)  # no output kind and no class: labels
    assert labels.axes == () and not labels.is_volume and labels.section_count == 1
    assert labels.grids == (TileGrid.plan((30, 44), 28, 0.25, min_size=14),)
    assert labels.output_shape == (30, 44) and labels.output_dtype == np.uint8
    probabilities = plan_prediction(tiny_config(), section, output="probabilities")
    assert probabilities.output_shape == (2, 30, 44) and probabilities.output_dtype == np.float32
    assert probabilities.grids[0].tile == (30, 44)  # the task's default tile (896) shrinks to the section


@pytest.mark.parametrize(
    "options,message",
    [
        (dict(axis="sideways"), r"axis='sideways': expected distinct names from \['inline', 'crossline', 'time'\]"),
        (dict(axis="inline,inline"), "axis='inline,inline': expected distinct names"),
        (dict(output="logits"), "output='logits': expected 'labels' or 'probabilities'"),
        (dict(output="labels", output_class=1), "output_class=1 selects a class probability"),
        (dict(output_class="salt"), r"class 'salt' is not one of the model's classes: \{0: "),
        (dict(tile=0), r"tile=0: expected a positive int or a \(height, width\) pair"),
        (dict(tile=(28, 28, 28)), "tile=.*: expected a positive int or a .height, width. pair"),
        (dict(tile=10), "tile=10 is smaller than the model's minimum input of 14 samples"),
        (dict(overlap=1.5), r"overlap=1.5: expected a fraction in \[0, 1\) or a number of samples"),
        (dict(overlap=28), r"overlap=28 is 28 samples; expected 0 <= overlap < tile \(28\)"),
        (dict(blend="hann"), r"blend='hann' is unknown; expected one of \['constant', 'cosine', 'gaussian'\]"),
        (dict(batch_size=0), "batch_size=0: expected a whole number of tiles per forward pass, at least 1"),
    ],
)
def test_bad_options_are_refused_before_any_section_is_read(tiny_model, options, message):
    volume = UnreadableReader(np.zeros((6, 5, 40), np.float32))
    settings = dict(tile=28, progress=False) | options
    with pytest.raises(ValueError, match=message):
        predict_tiled(tiny_model(), volume, **settings)


def test_input_of_the_wrong_kind_is_refused(tiny_config, tiny_model):
    with pytest.raises(ValueError, match=r"the input section: expected a 2-D section \(rows, columns\); got shape"):
        plan_prediction(tiny_config(), np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"single-channel amplitude data, but the model expects 3 input channels"):
        plan_prediction(tiny_config(in_channels=3), np.zeros((30, 44)))
    plan = plan_prediction(tiny_config(), np.zeros((30, 44)))
    with pytest.raises(ValueError, match=r"data of shape \(30, 45\) given to a plan made for \(30, 44\)"):
        predict_with_plan(tiny_model(), np.zeros((30, 45), np.float32), plan)


def test_the_command_and_predict_tiled_plan_a_volume_alike(
    tmp_path, tiny_model_dir, segy_file, small_volume, handed_plans
):
    options = dict(tile=28, overlap=7, blend="cosine", batch_size=3, axis="crossline,time", output_class="fault")
    flags = ["--tile", "28", "--overlap", "7", "--blend", "cosine", "--batch-size", "3", "--axis", "crossline,time"]
    command = ["predict", str(tiny_model_dir), str(segy_file), str(tmp_path / "faults.npy"), "--device", "cpu"]
    with pytest.raises(Planned):
        main([*command, *flags, "--class", "fault"])
    model = geofm_hf.GeoFMForSemanticSegmentation.from_pretrained(tiny_model_dir)
    with SegyReader(segy_file) as reader, pytest.raises(Planned):
        predict_tiled(model, reader, **options)
    with pytest.raises(Planned):
        predict_tiled(model, small_volume, **options)  # what segy_file holds
    command_plan, *library_plans = handed_plans
    assert library_plans == [command_plan, command_plan]
    time_by_inline = (small_volume.shape[2], small_volume.shape[0])  # a crossline section as the model sees it
    assert command_plan.mode.class_index == 1 and command_plan.grids[0].shape == time_by_inline
    assert not (tmp_path / "faults.npy").exists()


def test_the_command_and_predict_tiled_plan_a_section_alike(tmp_path, tiny_model_dir, handed_plans):
    section = np.random.default_rng(0).standard_normal((30, 44)).astype(np.float32)
    np.save(tmp_path / "line.npy", section)
    with pytest.raises(Planned):
        main(["predict", str(tiny_model_dir), str(tmp_path / "line.npy"), str(tmp_path / "out.npy"), "--tile", "28"])
    model = geofm_hf.GeoFMForSemanticSegmentation.from_pretrained(tiny_model_dir)
    with pytest.raises(Planned):
        predict_tiled(model, section, tile=28, output="labels")  # the command's default: labels
    assert handed_plans[0] == handed_plans[1] and handed_plans[0].mode.labels


def test_the_command_refuses_a_bad_axis_before_predicting(tmp_path, tiny_model_dir, segy_file, capsys):
    target = tmp_path / "out.npy"
    assert main(["predict", str(tiny_model_dir), str(segy_file), str(target), "--axis", "sideways"]) == 2
    assert "geofm predict: error: axis='sideways': expected distinct names" in capsys.readouterr().err
    assert main(["predict", str(tiny_model_dir), str(segy_file), str(target), "--png", "9"]) == 2
    assert "--png sections [9] are outside the 6 inlines (indices 0..5)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
