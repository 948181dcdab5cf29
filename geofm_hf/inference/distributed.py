"""Survey prediction spread over processes: ``accelerate launch -m geofm_hf.predict ...`` (GPUs, or CPU processes with
``ACCELERATE_USE_CPU=1``, on one or several machines).

Each direction's sections are split into one contiguous share per process (:func:`section_share`). Every process
streams its shares, section by section, into its own partial files in a scratch folder all processes see (beside the
output; on several machines it must be on a shared file system): the finished values when one direction is predicted,
the kept class probabilities when several are averaged. The main process then assembles the one output inline by
inline, averaging the directions in the order and arithmetic of the one-process run (:func:`assemble_shares`).
Where one process sums the directions in one float32 accumulator, the partial files keep each averaged direction apart
(no file is ever written by two processes, which keeps a shared file system safe): the scratch folder needs the kept
probabilities' size in float32 once per direction.

Shares start where a batch of the one-process run starts, so every process forms the very batches that run forms: the
result equals the one-process result, in any precision. Memory stays at a few sections per process, as in one process.

The processes meet at a few points (:meth:`ProcessGroup.together`); a failure on any of them ends all of them there,
so none waits forever, the failing process reports it (one line for bad input) and the others leave quietly.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object, parse_flag_from_env
from torch import nn

from ..io import MappedArray, SectionAxis, VolumeReader, section_key
from ..models.geofm.image_processing_geofm import AmplitudeStats, GeoFMImageProcessor
from ..precision import evaluation_mode
from .plan import PredictionPlan
from .tiling import _Normalizer, _predict_direction, _Run, survey_stats

T = TypeVar("T")
# Exit status of a process that leaves because another one failed (and reported why): that of bad input.
PEER_FAILED_EXIT = 2


class PeerFailed(SystemExit):
    """Ends a process quietly because another process of the prediction failed and reports the cause itself."""


def close_process_group() -> None:
    """Destroy torch's default process group if one is open (idempotent; registered at exit)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class ProcessGroup:
    """The processes predicting one survey together, as Accelerate's :class:`~accelerate.PartialState` sees them.

    Args:
        state: the process state; default: one made as :class:`~accelerate.Accelerator` makes it (a gloo group of CPU
            processes when ``ACCELERATE_USE_CPU`` is set, e.g. by ``accelerate launch --cpu``).
    """

    def __init__(self, state: PartialState | None = None):
        self.state = state if state is not None else PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
        if self.state.num_processes > 1:
            # A gloo group still alive when the interpreter ends can abort the process ("terminate called without
            # an active exception") after a failed prediction has already said why; close it first.
            atexit.register(close_process_group)

    @classmethod
    def current(cls) -> "ProcessGroup":
        """The group this process was launched in (one process without a launcher).

        Raises:
            ValueError: the launcher started several processes but Accelerate made each its own group, so each would
                predict the whole survey alone.
        """
        group = cls()
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > group.count:
            raise ValueError(
                f"launched as {launched} processes (WORLD_SIZE={launched}) but Accelerate sees {group.count}: without "
                "GPUs, set ACCELERATE_USE_CPU=1 (e.g. ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu "
                "--num_processes 2 ...) for a group of CPU processes"
            )
        return group

    @property
    def index(self) -> int:
        return self.state.process_index

    @property
    def count(self) -> int:
        return self.state.num_processes

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    @property
    def device(self) -> torch.device:
        """This process's device as the launcher assigned it: ``cuda:<local rank>`` with GPUs, else ``cpu``
        (Accelerate's ``cpu:<local rank>`` names the same device)."""
        device = self.state.device
        return torch.device("cpu") if device.type == "cpu" else device

    def together(self, step: Callable[[], T]) -> T:
        """Run ``step`` on every process and meet: its result if it succeeded everywhere.

        Raises:
            Exception: the error of ``step`` on the lowest process where it failed, raised there only.
            PeerFailed: on the other processes, when ``step`` failed on any process.
        """
        try:
            result, error = step(), None
        except Exception as caught:
            result, error = None, caught
        if self.count == 1:
            if error is not None:
                raise error
            return result
        try:
            failed = [index for index, failure in gather_object([(self.index, error is not None)]) if failure]
        except RuntimeError as lost:
            # A process died without reaching this point (killed, or a crash outside a step).
            raise ConnectionError(
                f"process {self.index} of {self.count}: another process of the prediction ended ({lost})"
            ) from error
        if failed and failed[0] == self.index:
            raise error
        if failed:
            raise PeerFailed(PEER_FAILED_EXIT)
        return result

    def share(self, value: T) -> T:
        """The main process's ``value``, on every process (it must pickle)."""
        return broadcast_object_list([value])[0] if self.count > 1 else value


def section_share(count: int, tiles: int, batch_size: int, index: int, processes: int) -> range:
    """The sections of one direction that process ``index`` of ``processes`` predicts.

    Shares are contiguous (neighbouring sections are read together) and as even as batches allow: each starts at a
    section whose first tile begins a batch of the one-process run (every ``batch_size / gcd(tiles, batch_size)``
    sections), so each process forms exactly the batches that run forms, and the model sees identical input.

    Args:
        count: sections along the direction.
        tiles: tiles per section.
        batch_size: tiles per forward pass.
        index, processes: this process, of how many.
    """
    unit = batch_size // math.gcd(tiles, batch_size)
    units = math.ceil(count / unit)
    first, last = (units * position // processes for position in (index, index + 1))
    return range(min(first * unit, count), min(last * unit, count))


def _shares(plan: PredictionPlan, processes: int) -> list[list[range]]:
    """Per direction of ``plan``, the share of every process."""
    return [
        [
            section_share(plan.input_shape[axis.index], len(grid), plan.batch_size, index, processes)
            for index in range(processes)
        ]
        for axis, grid in zip(plan.axes, plan.grids)
    ]


def _partial_path(scratch_dir: str | os.PathLike, axis_name: str, index: int) -> Path:
    return Path(scratch_dir) / f"{axis_name}-share{index}.values"


def _partial_layout(plan: PredictionPlan, axis_index: int, share: range) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and leading axes of a partial file: the finished values of one direction, or the kept
    probabilities (float32, one leading class axis) when several directions are averaged."""
    shape = list(plan.input_shape)
    shape[axis_index] = len(share)
    if len(plan.axes) == 1:
        return plan.mode.result_shape(tuple(shape)), plan.output_dtype, plan.mode.leading_axes
    return (plan.mode.kept_classes, *shape), np.dtype(np.float32), 1


def predict_share(
    model: nn.Module,
    reader: VolumeReader,
    plan: PredictionPlan,
    scratch_dir: str | os.PathLike,
    index: int,
    processes: int,
    *,
    device: str | torch.device | None = None,
    processor: GeoFMImageProcessor | None = None,
    stats: AmplitudeStats | None = None,
    progress: bool = True,
) -> None:
    """Predict the share of process ``index`` of ``processes`` of every direction of a volume ``plan`` into its partial
    files in ``scratch_dir`` (see :func:`assemble_shares`).

    Args:
        model, device, processor, progress: as in :func:`~geofm_hf.inference.predict_tiled`.
        reader, plan: the volume and its plan (every process makes the same plan).
        scratch_dir: the folder every process writes its partial files into.
        index, processes: this process, of how many.
        stats: the survey's amplitude statistics, the same on every process (required with a processor: statistics
            computed by each process from its own share would differ).
    """
    if not plan.is_volume or tuple(reader.shape) != plan.input_shape:
        raise ValueError(f"a volume of shape {tuple(reader.shape)} given to a plan made for {plan.input_shape}")
    if processor is not None and stats is None:
        raise ValueError("predict_share: a processor needs the survey's amplitude stats, the same for every share")
    run = _Run.start(model, plan, device, progress)
    normalize = _Normalizer(processor, stats, lambda own: survey_stats(own, reader))
    mode, single = plan.mode, len(plan.axes) == 1
    with evaluation_mode(model), torch.inference_mode():
        for (axis, grid), shares in zip(zip(plan.axes, plan.grids), _shares(plan, processes)):
            share = shares[index]
            if not share:
                continue
            shape, dtype, leading = _partial_layout(plan, axis.index, share)
            partial = MappedArray.create(_partial_path(scratch_dir, axis.name, index), shape, dtype)
            try:
                for section, probabilities in _predict_direction(run, reader, axis, grid, normalize, share):
                    kept = mode.keep(probabilities)
                    partial[section_key(axis.index, section - share.start, leading)] = (
                        mode.finish(kept) if single else kept
                    )
            finally:
                partial.close()


def assemble_shares(plan: PredictionPlan, scratch_dir: str | os.PathLike, processes: int, out) -> None:
    """Write the result of a volume ``plan`` into ``out``, inline by inline, from the partial files that ``processes``
    processes wrote into ``scratch_dir`` with :func:`predict_share`. Several directions are averaged as one process
    averages them: float32 probabilities summed in direction order, then divided by their number.

    Args:
        plan: the volume's plan.
        scratch_dir: where the partial files are.
        processes: how many processes wrote them.
        out: an array or writer of ``plan.output_shape`` (see :func:`~geofm_hf.io.create_output`).
    """
    mode = plan.mode
    leading = mode.leading_axes if len(plan.axes) == 1 else 1
    with contextlib.ExitStack() as stack:
        directions = []
        for axis, shares in zip(plan.axes, _shares(plan, processes)):
            files = []
            for index, share in enumerate(shares):
                if share:
                    shape, dtype, _ = _partial_layout(plan, axis.index, share)
                    mapped = MappedArray(_partial_path(scratch_dir, axis.name, index), shape, dtype)
                    files.append((share, stack.enter_context(contextlib.closing(mapped))))
            directions.append((axis, files))
        for inline in range(plan.input_shape[0]):
            pieces = [_inline_values(plan, axis, files, inline, leading) for axis, files in directions]
            if len(pieces) == 1:
                values = pieces[0]
            else:
                total = np.zeros_like(pieces[0])
                for piece in pieces:
                    total += piece
                values = mode.finish(total / np.float32(len(pieces)))
            out[section_key(0, inline, mode.leading_axes)] = values


def _inline_values(
    plan: PredictionPlan, axis: SectionAxis, files: list[tuple[range, MappedArray]], inline: int, leading: int
) -> np.ndarray:
    """Inline ``inline`` of one direction's partial files: ``(leading axes..., crossline, time)``."""
    if axis.index == 0:
        share, mapped = next((share, mapped) for share, mapped in files if inline in share)
        return mapped[section_key(0, inline - share.start, leading)]
    first = files[0][1]
    values = np.empty((*first.shape[:leading], *plan.input_shape[1:]), first.dtype)
    for share, mapped in files:
        # The share's slice of the direction's axis, which is axis - 1 of an inline.
        place = (slice(None),) * (leading + axis.index - 1) + (slice(share.start, share.stop),)
        values[place] = mapped[section_key(0, inline, leading)]
    return values


def predict_across_processes(
    model: nn.Module,
    reader: VolumeReader,
    plan: PredictionPlan,
    group: ProcessGroup,
    scratch_dir: str | os.PathLike,
    *,
    out=None,
    device: str | torch.device | None = None,
    processor: GeoFMImageProcessor | None = None,
    stats: AmplitudeStats | None = None,
    progress: bool = True,
) -> None:
    """Predict a volume with every process of ``group``; the main process writes the result into ``out``.

    Call it on every process with the same arguments, except ``out``. Each process predicts its shares
    (:func:`predict_share`), then the main process assembles the output (:func:`assemble_shares`). The result equals
    :func:`~geofm_hf.inference.predict_with_plan`'s on one process.

    Args:
        model, device, processor, progress: as in :func:`~geofm_hf.inference.predict_tiled` (``device``: this
            process's, e.g. ``group.device``).
        reader, plan: the volume, opened by every process, and its plan.
        group: the processes.
        scratch_dir: a folder every process sees (on several machines, on a shared file system); the partial files
            written there are left for the caller to remove (e.g. with :func:`~geofm_hf.io.atomic.scratch_folder`).
        out: on the main process, an array or writer of ``plan.output_shape``; ignored elsewhere.
        stats: the survey's amplitude statistics; default: the main process's, from ``reader.stats_sample()``.

    Raises:
        PeerFailed: on the processes that leave because another one failed (and raised its own error).
    """
    if processor is not None and stats is None:
        main_stats = (lambda: survey_stats(processor, reader)) if group.is_main else (lambda: None)
        stats = group.share(group.together(main_stats))
    settings = dict(device=device, processor=processor, stats=stats, progress=progress and group.is_main)
    group.together(lambda: predict_share(model, reader, plan, scratch_dir, group.index, group.count, **settings))
    group.together(lambda: assemble_shares(plan, scratch_dir, group.count, out) if group.is_main else None)


__all__ = [
    "PeerFailed",
    "ProcessGroup",
    "assemble_shares",
    "predict_across_processes",
    "predict_share",
    "section_share",
]
