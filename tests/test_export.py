"""Export: ``torch.export`` programs and ONNX files with a dynamic batch, height and width give the eager logits."""

import sys

import numpy as np
import onnxruntime
import pytest
import torch

import geofm_hf
from geofm_hf.models.decoders.upernet import _scaled
from geofm_hf.models.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    export_onnx,
    export_program,
    min_export_size,
)
from geofm_hf.models.segmenter import crop_to_size, pad_to_multiple

# (batch, height, width) from the smallest exportable size (56 for ViT/14) up: a multiple of 14 (and of the UNet's
# 8), an odd square, a non-square; every batch size from 1.
SIZES = [(1, 56, 56), (2, 59, 59), (3, 61, 84)]
TOLERANCE = 1e-4
DECODERS = ["linear", "pup", "dpt", "mla", "upernet"]


@pytest.fixture(scope="module")
def tiny_segmenter(tiny_model):
    """``tiny_segmenter(name)``: a tiny GeoFM model with decoder ``name``, with ``"refiner"`` the MLA one with a
    trained-looking image refiner, or with ``"unet"`` a tiny UNet (eval)."""

    def make(name: str) -> torch.nn.Module:
        if name == "refiner":
            model = tiny_model(decoder="mla", refiner_channels=4)
            torch.nn.init.normal_(model.refiner.correction.weight, generator=torch.Generator().manual_seed(0))
            return model
        if name != "unet":
            return tiny_model(decoder=name)
        torch.manual_seed(0)
        config = geofm_hf.GeoUNetConfig(num_labels=2, widths=[4, 8, 16, 32])
        return geofm_hf.GeoUNetForSemanticSegmentation(config).eval()

    return make


def sections(batch: int, height: int, width: int) -> torch.Tensor:
    return torch.randn(batch, 1, height, width, generator=torch.Generator().manual_seed(height * 1000 + width))


@pytest.mark.slow
@pytest.mark.parametrize("name", [*DECODERS, "refiner", "unet"])
def test_exported_program_and_onnx_give_the_eager_logits_at_every_size(name, tiny_segmenter, tmp_path):
    model = tiny_segmenter(name)
    program = export_program(model)
    session = onnxruntime.InferenceSession(
        str(export_onnx(program, tmp_path / f"{name}.onnx")), providers=["CPUExecutionProvider"]
    )
    ((onnx_input,), (onnx_output,)) = session.get_inputs(), session.get_outputs()
    assert (onnx_input.name, onnx_input.shape) == (INPUT_NAME, ["batch", 1, "height", "width"])
    assert (onnx_output.name, onnx_output.shape) == (OUTPUT_NAME, ["batch", model.config.num_labels, "height", "width"])
    for batch, height, width in SIZES:
        pixel_values = sections(batch, height, width)
        with torch.no_grad():
            eager = model(pixel_values=pixel_values).logits
            from_program = program.module()(pixel_values)
        (from_onnx,) = session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values.numpy()})
        assert eager.shape == (batch, model.config.num_labels, height, width)
        torch.testing.assert_close(from_program, eager, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(from_onnx, eager.numpy(), rtol=0, atol=TOLERANCE)


@pytest.mark.slow
def test_export_leaves_the_model_mode_alone_and_refuses_sizes_below_the_minimum(tiny_segmenter):
    model = tiny_segmenter("unet").train()
    program = export_program(model)
    assert model.training
    small = min_export_size(model) - 1
    with pytest.raises(AssertionError, match=">= 32"):
        program.module()(sections(1, small, 64))
    model.eval()
    pixel_values = sections(2, 40, 33)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(pixel_values), model(pixel_values=pixel_values).logits)


def test_min_export_size_is_four_padding_multiples(tiny_segmenter):
    assert min_export_size(tiny_segmenter("linear")) == 56
    assert min_export_size(tiny_segmenter("unet")) == 32


def test_hierarchical_backbones_are_refused(tiny_config):
    model = geofm_hf.GeoFMForSemanticSegmentation(tiny_config(decoder="upernet", backbone="convnext-tiny"))
    with pytest.raises(ValueError, match="supports dinov2 backbones and the UNet; this model's backbone is convnext"):
        export_program(model)


def test_onnx_export_without_onnxscript_names_the_extra(tiny_segmenter, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"geofm_hf\[export\]"):
        export_onnx(tiny_segmenter("linear"), tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize("numerator, denominator", [(4, 1), (2, 1), (1, 1), (1, 2), (2, 3), (5, 7)])
def test_upernet_pyramid_sizes_are_python_rounding_in_integers(numerator, denominator):
    for side in range(0, 400):
        assert _scaled(side, numerator, denominator) == max(1, round(side * numerator / denominator))


@pytest.mark.parametrize(
    ("height", "width", "multiple", "mode"),
    [(28, 42, 14, None), (29, 40, 14, "reflect"), (3, 9, 8, "replicate")],
)
def test_pad_to_multiple_pads_every_input_the_same_way(height, width, multiple, mode):
    """Sizes that are multiples already go through the same pad (of zero): the result equals the input."""
    pixel_values = sections(2, height, width)
    padded = pad_to_multiple(pixel_values, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    expected = pixel_values if mode is None else torch.nn.functional.pad(
        pixel_values, (0, padded.shape[-1] - width, 0, padded.shape[-2] - height), mode=mode
    )
    assert torch.equal(padded, expected)


def test_crop_to_size_copies_the_top_left_corner():
    logits = torch.randn(2, 3, 42, 56)
    cropped = crop_to_size(logits, 40, 51)
    assert cropped.is_contiguous()
    assert torch.equal(cropped, logits[..., :40, :51])
