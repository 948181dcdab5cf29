"""Export of geofm segmenters with a dynamic batch, height and width: ``torch.export`` programs and ONNX files.

Both models (:class:`GeoFMForSemanticSegmentation` with a DINOv2 backbone and any decoder, and
:class:`GeoUNetForSemanticSegmentation`) export as ``pixel_values`` (batch, in_channels, height, width) -> ``logits``
(batch, num_labels, height, width), padding and cropping included, so an exported model takes sections of any size
from :func:`min_export_size` up.

Limits:

* ConvNeXt and Swin backbones are refused: transformers' code for them branches on the input size (ConvNeXt fails
  ``torch.export``'s checks, Swin's export does not finish in ten minutes);
* each side must be at least :func:`min_export_size` pixels, four padding multiples (56 for a ViT/14, 64 for the
  default UNet): ``torch.export`` treats sizes of 1 as a special case, and from there on the smallest maps inside
  the decoders (half the patch grid in UPerNet's pyramid, 1/16 of the input in DPT) have at least 2 pixels per side
  whatever the size;
* a program from transformers' DINOv2 keeps a guard from its position embeddings: it refuses inputs whose patch grid
  is exactly the pretraining grid (37 x 37 patches for the 518-px presets, i.e. 505 to 518 pixels per side). The ONNX
  file has no such check, and gives the eager results there too (the embeddings are resampled to their own size,
  which is the identity);
* inference only: the model is exported in evaluation mode (BatchNorm uses its running statistics), without labels,
  loss or hidden states;
* UPerNet's pyramid pooling (adaptive average pooling) has no ONNX operator: ``torch.onnx`` replaces it by a
  decomposition valid for the example's size only. :func:`export_onnx` translates it for every size instead; pass
  :func:`onnx_translation_table` as ``custom_translation_table`` when calling ``torch.onnx.export`` yourself.

ONNX export needs the ``onnxscript`` package: ``pip install "geofm_hf[export]"``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim, ExportedProgram

from ..precision import evaluation_mode

INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"
# Axes of ``pixel_values`` (and of ``logits``) that exported models leave free, by name.
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}
# Backbones (``model_type``) whose transformers code exports with a dynamic height and width.
EXPORTABLE_BACKBONES = ("dinov2",)
# Protocol buffers, hence ONNX files with their weights inside, are limited to 2 GiB.
ONNX_FILE_LIMIT = 2**31


class LogitsOnly(nn.Module):
    """A segmenter as ``pixel_values -> logits``: one tensor in, one out, which is what an exported graph carries."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def min_export_size(model: nn.Module) -> int:
    """Smallest height and width an exported ``model`` accepts: four times its padding multiple."""
    return 4 * model.config.pad_multiple


def dynamic_shapes(model: nn.Module) -> dict[str, dict[int, Dim]]:
    """``dynamic_shapes`` for ``torch.export`` / ``torch.onnx.export``: batch, height and width of ``pixel_values``
    are free, height and width from :func:`min_export_size` up."""
    side = min_export_size(model)
    return {INPUT_NAME: {axis: Dim(name, min=1 if axis == 0 else side) for axis, name in DYNAMIC_AXES.items()}}


def example_pixel_values(model: nn.Module) -> torch.Tensor:
    """An input to trace ``model`` with: batch 2 and two different sides, neither a multiple of the padding.

    Tracing specialises dimensions whose example size is 1 and may tie dimensions of equal size together, so the
    example avoids both; its values do not matter.
    """
    side = min_export_size(model)
    parameter = next(model.parameters())
    shape = (2, model.config.in_channels, side + 3, side + model.config.pad_multiple + 5)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(parameter.device, parameter.dtype)


def check_exportable(model: nn.Module) -> None:
    """Refuse a model whose backbone does not export with a dynamic height and width (see the module's limits)."""
    backbone_config = getattr(model.config, "backbone_config", None)
    if backbone_config is not None and backbone_config.model_type not in EXPORTABLE_BACKBONES:
        raise ValueError(
            f"Export with a dynamic height and width supports {', '.join(EXPORTABLE_BACKBONES)} backbones and the "
            f"UNet; this model's backbone is {backbone_config.model_type}, whose transformers code branches on the "
            "input size"
        )


def export_program(model: nn.Module, pixel_values: torch.Tensor | None = None) -> ExportedProgram:
    """``torch.export`` a segmenter (in evaluation mode) as ``pixel_values -> logits`` with dynamic batch, height
    and width (from :func:`min_export_size` up).

    Args:
        model: a :class:`GeoFMForSemanticSegmentation` or :class:`GeoUNetForSemanticSegmentation`.
        pixel_values: the example to trace with (default: :func:`example_pixel_values`); batch 2 or more, sides from
            :func:`min_export_size` up.

    Returns:
        The :class:`torch.export.ExportedProgram`; ``program.module()(pixel_values)`` runs it.

    Raises:
        ValueError: for a backbone other than DINOv2 (see :func:`check_exportable`).
    """
    check_exportable(model)
    example = example_pixel_values(model) if pixel_values is None else pixel_values
    with evaluation_mode(model), torch.no_grad():
        return torch.export.export(LogitsOnly(model), (example,), dynamic_shapes=dynamic_shapes(model))


def export_onnx(
    model: nn.Module | ExportedProgram,
    path: str | os.PathLike,
    pixel_values: torch.Tensor | None = None,
    opset_version: int | None = None,
) -> Path:
    """Write a segmenter as an ONNX file with input ``pixel_values`` and output ``logits``, batch, height and width
    dynamic (through :func:`export_program` and ``torch.onnx.export(..., dynamo=True)``).

    Args:
        model: a :class:`GeoFMForSemanticSegmentation` or :class:`GeoUNetForSemanticSegmentation`, or the program
            :func:`export_program` made of one (converted as it is).
        path: the ``.onnx`` file to write; its folder is created. Weights over 2 GiB (a ViT-g) are written to
            ``<path>.data`` beside it.
        pixel_values: the example to trace a model with (default: :func:`example_pixel_values`); unused for a
            program.
        opset_version: ONNX opset to target, 18 or later (default: torch's).

    Returns:
        ``path``. Run it with onnxruntime: ``session.run(["logits"], {"pixel_values": array})``.

    Raises:
        ImportError: when ``onnxscript`` (which ``torch.onnx`` needs) is not installed.
    """
    # torch.onnx's exporter imports onnxscript itself, with a message that does not say where to get it.
    if importlib.util.find_spec("onnxscript") is None:
        raise ImportError('ONNX export needs onnxscript: pip install "geofm_hf[export]"')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = model if isinstance(model, ExportedProgram) else export_program(model, pixel_values)
    # The program carries the dynamic dimensions; the names given here only label them in the file. Weights go
    # inside the .onnx (one self-contained file) unless they pass ONNX's 2 GB limit for one file (a ViT-g), when they
    # go to a data file beside it.
    torch.onnx.export(
        program,
        f=path,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={INPUT_NAME: DYNAMIC_AXES},
        opset_version=opset_version,
        dynamo=True,
        external_data=_weight_bytes(program) >= ONNX_FILE_LIMIT,
        custom_translation_table=onnx_translation_table(),
    )
    return path


def onnx_translation_table() -> dict:
    """ONNX translations of the operators ``torch.onnx`` cannot export for every input size by itself, for its
    ``custom_translation_table``: adaptive average pooling (UPerNet's pyramid pooling)."""
    return {torch.ops.aten.adaptive_avg_pool2d.default: adaptive_avg_pool2d_onnx}


def adaptive_avg_pool2d_onnx(x, output_size: tuple[int, int]):
    """Adaptive average pooling of an NCHW tensor to a fixed ``output_size``, for inputs of any height and width.

    As in torch, bin ``i`` of ``n`` over a side of length ``L`` averages positions ``floor(i L / n)`` to
    ``ceil((i + 1) L / n)``; the bins are computed in the graph from the input's shape (slices of it, averaged),
    height first, then width: the mean of row means over a rectangle is the rectangle's mean. Meant to be called by
    ``torch.onnx`` (ONNX Script), not directly.
    """
    from onnxscript import opset18 as op

    def constant(value: int):
        return op.Constant(value_ints=[value])

    for axis, bins in zip((2, 3), output_size):
        length = op.Shape(x, start=axis, end=axis + 1)
        axes = constant(axis)
        means = []
        for index in range(bins):
            # ONNX integer division truncates: the floor here, as every operand is non-negative.
            start = op.Div(op.Mul(length, constant(index)), constant(bins))
            end = op.Div(op.Add(op.Mul(length, constant(index + 1)), constant(bins - 1)), constant(bins))
            means.append(op.ReduceMean(op.Slice(x, start, end, axes), axes, keepdims=1))
        x = op.Concat(*means, axis=axis)
    return x


def _weight_bytes(program: ExportedProgram) -> int:
    return sum(t.numel() * t.element_size() for t in (*program.state_dict.values(), *program.constants.values()))


__all__ = [
    "DYNAMIC_AXES",
    "EXPORTABLE_BACKBONES",
    "INPUT_NAME",
    "ONNX_FILE_LIMIT",
    "OUTPUT_NAME",
    "LogitsOnly",
    "adaptive_avg_pool2d_onnx",
    "check_exportable",
    "dynamic_shapes",
    "example_pixel_values",
    "export_onnx",
    "export_program",
    "min_export_size",
    "onnx_translation_table",
]
