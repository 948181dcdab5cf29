"""``geofm predict``: whole-survey prediction from the command line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel

from .errors import reports_errors
from ..io import (
    SectionAxis,
    VolumeReader,
    create_output,
    get_axis_name,
    get_section_axes,
    open_input,
    open_output,
    refuse_existing,
)
from ..io.options import SURVEY_FLAGS, add_survey_arguments, merge_options
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..inference.blending import BLEND_WINDOWS
from ..inference.plots import plot_prediction_overlay
from ..inference.tiling import DEFAULT_OVERLAP, OutputMode, predict_tiled

logger = logging.getLogger(__name__)


def _overlap(text: str) -> float | int:
    """A value below 1 is a fraction of the tile; a whole number from 1 up is a number of samples."""
    value = float(text)
    if value < 1:
        return value
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"overlap {text!r}: a fraction below 1 or a whole number of samples")
    return int(value)


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 10,50") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm predict`` to the ``geofm`` command."""
    parser = subparsers.add_parser(
        "predict",
        help="predict a whole section or survey tile by tile (SEG-Y, .npy, .dat, pictures)",
        description=(
            "Predict every sample of a section or survey with a trained model, in overlapping blended tiles, "
            "streaming volumes section by section. Volumes are (inline, crossline, time); 2-D inputs are "
            "(time/depth rows, trace columns)."
        ),
    )
    parser.add_argument("model", help="Hub id or local folder of a trained model and its image processor")
    parser.add_argument(
        "input", type=Path, help="input: .sgy/.segy, .npy, raw .dat (see --shape, --order) or .png/.tif/.jpg"
    )
    parser.add_argument(
        "output",
        type=Path,
        help="output: .sgy/.segy (SEG-Y input only; keeps its headers), .npy, or float32 .dat (F order, little-endian)",
    )
    parser.add_argument(
        "--axis", default="inline", help="inline (default), crossline, time, a comma-separated list, or all (averaged)"
    )
    parser.add_argument(
        "--tile", type=int, default=None, help="tile side (default: the model's training size, else 224)"
    )
    parser.add_argument(
        "--overlap", type=_overlap, default=DEFAULT_OVERLAP, help="overlap: a fraction < 1 or samples (default 0.25)"
    )
    parser.add_argument(
        "--blend", choices=sorted(BLEND_WINDOWS), default="gaussian", help="tile blending window (default gaussian)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per forward pass (default 8)")
    parser.add_argument(
        "--output",
        dest="output_kind",
        choices=("labels", "probabilities"),
        default=None,
        help="store class labels, or probabilities (all classes, or the one chosen by --class); default: labels, "
        "or probabilities when --class is given",
    )
    parser.add_argument(
        "--class", dest="output_class", default=None, help="class name or index whose probability to store"
    )
    parser.add_argument(
        "--png",
        type=_int_list,
        default=None,
        metavar="SECTIONS",
        help="write overlay pictures of these section indices (along the first --axis; use 0 for 2-D input)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    add_survey_arguments(parser.add_argument_group("input layout (the same options as `geofm dataset`)"))
    parser.set_defaults(func=run_predict)


@reports_errors("predict")
def run_predict(args: argparse.Namespace) -> None:
    refuse_existing(args.output, args.overwrite)
    model = AutoModel.from_pretrained(args.model)
    try:
        processor = GeoFMImageProcessor.from_pretrained(args.model)
    except OSError as error:
        raise ValueError(
            f"{args.model}: no image processor next to the model (preprocessor_config.json), so the amplitude "
            "normalisation the model was trained with is unknown; save it with processor.save_pretrained()"
        ) from error
    output_kind = args.output_kind or ("probabilities" if args.output_class is not None else "labels")
    mode = OutputMode.from_arguments(output_kind, args.output_class, model.config)
    options = merge_options({flag: getattr(args, flag) for flag in SURVEY_FLAGS}, args.option)
    data = open_input(args.input, **options)
    settings = dict(
        tile=args.tile,
        overlap=args.overlap,
        blend=args.blend,
        batch_size=args.batch_size,
        device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        output=output_kind,
        output_class=args.output_class,
        processor=processor,
    )
    if isinstance(data, np.ndarray):
        _predict_section(model, data, mode, settings, args)
    else:
        with data:
            _predict_volume(model, data, mode, settings, args)


def _predict_section(model, section: np.ndarray, mode: OutputMode, settings: dict, args) -> None:
    if args.png is not None and args.png != [0]:
        raise ValueError(f"{args.input} is a single 2-D section: use --png 0")
    result = predict_tiled(model, section, **settings)
    with create_output(args.output, result.shape, result.dtype, overwrite=args.overwrite, section=True) as out:
        out[...] = result
    logger.info("wrote %s", args.output)
    if args.png is not None:
        path = args.output.with_suffix(".png")
        _plot(section, result, path, model.config, mode, f"{args.input.name}: prediction", ("trace", "sample"))


def _predict_volume(model, reader: VolumeReader, mode: OutputMode, settings: dict, args) -> None:
    axes = get_section_axes(args.axis)
    sections = args.png or []
    count = reader.shape[axes[0].index]
    outside = [index for index in sections if not 0 <= index < count]
    if outside:
        raise ValueError(f"--png sections {outside} are outside the {count} {axes[0].name}s (indices 0..{count - 1})")
    shape = mode.result_shape(reader.shape)
    with create_output(args.output, shape, mode.dtype, template=reader, overwrite=args.overwrite) as out:
        predict_tiled(model, reader, axis=args.axis, out=out, **settings)
    logger.info("wrote %s", args.output)
    if not sections:
        return
    with open_output(args.output, shape) as stored:
        for index in sections:
            _plot_volume_section(model.config, mode, reader, stored, axes[0], index, args)


def _plot_volume_section(config, mode, reader: VolumeReader, stored: VolumeReader, axis: SectionAxis, index, args):
    rows_axis, cols_axis = [i for i in range(3) if i != axis.index][:: -1 if axis.time_down else 1]
    value = reader.axis_values(axis.index)[index]
    _plot(
        axis.orient(reader.read_section(axis.index, index)),
        axis.orient(stored.read_section(axis.index, index)),
        args.output.with_name(f"{args.output.stem}_{axis.name}{index}.png"),
        config,
        mode,
        f"{args.input.name}: {axis.name} {value:g} (index {index}), predicted along {args.axis}",
        (get_axis_name(cols_axis), get_axis_name(rows_axis)),
        reader.axis_values(cols_axis),
        reader.axis_values(rows_axis),
    )


def _plot(
    section, prediction, path: Path, config, mode: OutputMode, title: str, axis_labels, x_values=None, y_values=None
):
    """Overlay picture; all-class probabilities are shown as their most likely class."""
    if mode.leading_axes:
        prediction = prediction.argmax(axis=0)
    probability_of = None if mode.labels or mode.class_index is None else config.id2label[mode.class_index]
    id2label = {int(index): name for index, name in config.id2label.items()}
    plot_prediction_overlay(
        section, prediction, path, id2label, title, probability_of, axis_labels, x_values, y_values
    )
    logger.info("wrote %s", path)


__all__ = ["add_parser", "run_predict"]
