"""``geofm predict``: whole-survey prediction from the command line, on one process or on several under a launcher."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import geofm_hf

from .errors import reports_errors
from ..io import (
    SectionAxis,
    VolumeReader,
    write_atomically,
    create_output,
    get_axis_name,
    open_input,
    open_output,
    refuse_existing,
)
from ..io.atomic import scratch_folder
from ..io.options import SURVEY_FLAGS, add_survey_arguments, merge_options
from ..inference.blending import BLEND_WINDOWS
from ..inference.distributed import ProcessGroup, predict_across_processes
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from ..inference.plan import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BLEND,
    DEFAULT_OVERLAP,
    DEFAULT_PRECISION,
    OUTPUT_KINDS,
    OutputMode,
    PredictionPlan,
    plan_prediction,
)
from ..inference.plots import plot_prediction_overlay
from ..evaluation import load_model_and_processor, resolve_device
from ..evaluation.tta import with_tta
from ..inference.tiling import predict_with_plan
from ..precision import PRECISIONS, resolve_precision

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Predict every sample of a section or survey with a trained model, in overlapping blended tiles, streaming "
    "volumes section by section. Volumes are (inline, crossline, time); 2-D inputs are (time/depth rows, trace "
    "columns). Started by a launcher on several processes (accelerate launch -m geofm_hf.predict ..., with "
    "ACCELERATE_USE_CPU=1 for CPU processes), the processes split the sections of each direction and the main "
    "process writes the one output, equal to a one-process run's."
)


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
        description=DESCRIPTION,
    )
    add_predict_arguments(parser)
    parser.set_defaults(func=run_predict)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``geofm predict``, which ``python -m geofm_hf.predict`` takes too."""
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
        "--blend", choices=sorted(BLEND_WINDOWS), default=DEFAULT_BLEND, help="tile blending window (default gaussian)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="tiles per forward pass (default 8)"
    )
    parser.add_argument(
        "--output",
        dest="output_kind",
        choices=OUTPUT_KINDS,
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
    parser.add_argument(
        "--tta", action="store_true", help="average each tile with its left-right mirror (twice the compute)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="auto (default: bf16 where the device computes it natively, else fp32), bf16, fp16 (CUDA) or fp32; "
        "outputs are float32 either way",
    )
    add_survey_arguments(parser.add_argument_group("input layout (the same options as `geofm dataset`)"))


@dataclass(frozen=True)
class _Prepared:
    """A prediction checked and ready to run: model, processor, opened input, plan and device."""

    model: nn.Module
    processor: GeoFMImageProcessor
    data: np.ndarray | VolumeReader
    plan: PredictionPlan
    device: torch.device
    precision: str


@reports_errors("predict")
def run_predict(args: argparse.Namespace) -> None:
    group = ProcessGroup.current()
    if not group.is_main:
        # The main process reports the run; the others would repeat it line for line.
        logging.getLogger("geofm_hf").setLevel(logging.WARNING)
    with contextlib.ExitStack() as resources:
        prepared = group.together(lambda: _prepare(args, group, resources))
        if prepared.plan.is_volume:
            _predict_volume(prepared, args, group)
        else:
            _predict_section(prepared, args, group)
        if group.is_main:
            write_metadata(args, prepared.plan, prepared.device, prepared.precision, group.count)


def _prepare(args: argparse.Namespace, group: ProcessGroup, resources: contextlib.ExitStack) -> _Prepared:
    """Load the model, open the input (closed with ``resources``), plan and choose the device: every check that can
    refuse the input runs here, before anything is written."""
    refuse_existing(args.output, args.overwrite)
    model, processor = load_model_and_processor(args.model)
    model = with_tta(model, args.tta)
    options = merge_options({flag: getattr(args, flag) for flag in SURVEY_FLAGS}, args.option)
    data = open_input(args.input, **options)
    if isinstance(data, VolumeReader):
        resources.enter_context(data)
    plan = plan_prediction(
        model.config,
        data,
        tile=args.tile,
        overlap=args.overlap,
        blend=args.blend,
        batch_size=args.batch_size,
        output=args.output_kind,
        output_class=args.output_class,
        axis=args.axis,
        precision=args.precision,
    )
    _check_pictures(plan, args)
    # Under a launcher each process takes the device it was given (its own GPU), unless --device says otherwise.
    device = resolve_device(args.device) if args.device is not None or group.count == 1 else group.device
    precision = resolve_precision(plan.precision, device)
    processes = f", {group.count} processes" if group.count > 1 else ""
    logger.info("predicting on %s in %s%s", device, precision, processes)
    return _Prepared(model, processor, data, plan, device, precision)


def metadata_path(output: Path) -> Path:
    """Where the settings of a prediction are recorded: ``<output>.json`` beside it."""
    return output.with_name(f"{output.name}.json")


def write_metadata(
    args: argparse.Namespace, plan: PredictionPlan, device: torch.device, precision: str, processes: int = 1
) -> Path:
    """Record how ``args.output`` was made: model, input, directions, tiling, output mode, device, precision and the
    number of processes."""
    record = {
        "geofm_hf": geofm_hf.__version__,
        "model": str(args.model),
        "input": str(args.input),
        "input_shape": list(plan.input_shape),
        "output_shape": list(plan.output_shape),
        "output": "labels" if plan.mode.labels else "probabilities",
        "class": args.output_class,
        "axes": [axis.name for axis in plan.axes],
        "tiles": [list(grid.tile) for grid in plan.grids],
        "overlap": args.overlap,
        "blend": plan.blend,
        "device": str(device),
        "precision": precision,
        "tta": args.tta,
        "processes": processes,
    }
    text = json.dumps(record, indent=2)
    return write_atomically(metadata_path(args.output), lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _check_pictures(plan: PredictionPlan, args: argparse.Namespace) -> None:
    """Refuse ``--png`` sections the input does not have, before anything is predicted."""
    if args.png is None:
        return
    if not plan.is_volume:
        if args.png != [0]:
            raise ValueError(f"{args.input} is a single 2-D section: use --png 0")
        return
    count, name = plan.section_count, plan.axes[0].name
    outside = [index for index in args.png if not 0 <= index < count]
    if outside:
        raise ValueError(f"--png sections {outside} are outside the {count} {name}s (indices 0..{count - 1})")


def _predict_section(prepared: _Prepared, args: argparse.Namespace, group: ProcessGroup) -> None:
    # A section is a handful of tiles: the main process predicts it alone.
    if not group.is_main:
        return
    section, plan = prepared.data, prepared.plan
    try:
        result = predict_with_plan(prepared.model, section, plan, prepared.device, processor=prepared.processor)
    except ValueError as error:
        # The section's own checks (non-finite values, a normalisation's range) do not know which file it came from.
        raise ValueError(f"{args.input}: {error}") from error
    shape, dtype = plan.output_shape, plan.output_dtype
    with create_output(args.output, shape, dtype, overwrite=args.overwrite, section=True) as out:
        out[...] = result
    logger.info("wrote %s", args.output)
    if args.png is not None:
        path = args.output.with_suffix(".png")
        config = prepared.model.config
        _plot(section, result, path, config, plan.mode, f"{args.input.name}: prediction", ("trace", "sample"))


def _predict_volume(prepared: _Prepared, args: argparse.Namespace, group: ProcessGroup) -> None:
    reader, plan = prepared.data, prepared.plan
    runtime = dict(device=prepared.device, processor=prepared.processor)
    with contextlib.ExitStack() as created:

        def create() -> tuple:
            """The output and a scratch folder beside it: the main process's (other processes write partial files in
            that folder)."""
            if not group.is_main:
                return None, None
            shape, dtype = plan.output_shape, plan.output_dtype
            out = create_output(args.output, shape, dtype, template=reader, overwrite=args.overwrite)
            return created.enter_context(out), created.enter_context(scratch_folder(args.output))

        out, scratch = group.together(create)
        if group.count == 1:
            predict_with_plan(prepared.model, reader, plan, out=out, scratch_dir=scratch, **runtime)
        else:
            predict_across_processes(prepared.model, reader, plan, group, group.share(scratch), out=out, **runtime)
    if not group.is_main:
        return
    logger.info("wrote %s", args.output)
    if not args.png:
        return
    with open_output(args.output, plan.output_shape) as stored:
        for index in args.png:
            _plot_volume_section(prepared.model.config, plan.mode, reader, stored, plan.axes[0], index, args)


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
