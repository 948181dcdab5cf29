"""Benchmark of whole-volume prediction (not a test): throughput, peak memory, and the cost of tiling and I/O.

Part 1, per decoder of `geofm_hf.models.decoders.DECODERS`, a DINOv2-S-sized model with random weights predicts a synthetic
cube streamed from a .npy file into a .npy file (`predict_tiled`, survey-wide normalisation, Gaussian blending), in
each precision of ``--precisions`` (fp32 and auto by default) side by side, with the speed-up against fp32. "in model
s" is the time spent inside the model's forward; the rest ("ovh/model") is tiling, blending, normalisation and I/O.

Part 2 streams a volume several times larger than a memory budget through a tiny model, along one direction and
along all three (averaged in an on-disk accumulator), and reports the peak resident memory added by the run.

Usage:
    python benchmarks/bench_predict_volume.py                 # 128^3 cube, tile 112, all decoders
    python benchmarks/bench_predict_volume.py --size 256      # the larger cube
    python benchmarks/bench_predict_volume.py --decoders mla --streaming-sizes 320 --budget-mb 32

Peak memory is read from Linux's /proc/self/status (VmHWM, reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import geofm_hf
from geofm_hf.models.decoders import DECODERS
from geofm_hf.inference import TileGrid, create_output, open_input, predict_tiled
from geofm_hf.io import get_section_axes

MIB = 2**20


def rss_mib(field: str = "VmRSS") -> float:
    """Resident memory (``VmRSS``) or its peak since the last reset (``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}: peak memory is measured on Linux only")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def write_cube(path: Path, size: int, seed: int = 0) -> None:
    """A synthetic (size, size, size) float32 cube of dipping layers with noise, written an inline at a time."""
    rng = np.random.default_rng(seed)
    crossline, time_axis = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, size, size))
    for inline in range(size):
        layers = np.sin((time_axis + 0.2 * crossline + 0.1 * inline) / 3.0)
        cube[inline] = layers + 0.2 * rng.standard_normal((size, size))
    cube.flush()
    del cube


def plan_tiles(shape: tuple[int, int, int], axis: str, tile: int, overlap: float, min_size: int):
    """Number of tiles a prediction runs, and their (height, width) (a cube's sections share one tiling)."""
    grids = [
        (shape[spec.index], TileGrid.plan(spec.picture_shape(shape), tile, overlap, min_size))
        for spec in get_section_axes(axis)
    ]
    return sum(count * len(grid) for count, grid in grids), grids[0][1].tile


@dataclass
class Run:
    """One streamed prediction: wall seconds, seconds inside the model's forward, peak RSS and its rise, in MiB."""

    seconds: float
    model_seconds: float
    peak_mib: float
    added_mib: float


class ForwardClock:
    """Adds up the time spent inside ``model.forward`` (through hooks), to split a run into model and the rest."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.seconds, self._started, self._device = 0.0, 0.0, device
        model.register_forward_pre_hook(self._start)
        model.register_forward_hook(self._stop)

    def _sync(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize()

    def _start(self, module, args) -> None:
        self._sync()
        self._started = time.perf_counter()

    def _stop(self, module, args, output) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._started


def timed_prediction(model, clock: ForwardClock, source: Path, target: Path, settings: dict) -> Run:
    """Stream ``source`` to ``target`` (probability of class 1), timing it and recording the peak memory."""
    with open_input(source) as reader:
        with create_output(target, reader.shape, np.float32, template=reader, overwrite=True) as out:
            before = rss_mib()
            reset_peak_rss()
            clock.seconds = 0.0
            start = time.perf_counter()
            predict_tiled(model, reader, output_class=1, out=out, progress=False, **settings)
            seconds = time.perf_counter() - start
            peak = rss_mib("VmHWM")
    return Run(seconds, clock.seconds, peak, peak - before)


def timed_bare_forward(model, tiles: int, tile: tuple[int, int], batch_size: int, device: torch.device) -> float:
    """Seconds the model alone takes for ``tiles`` tiles of shape ``tile`` in batches of ``batch_size``."""
    batch = torch.randn(batch_size, 1, *tile, generator=torch.Generator().manual_seed(0)).to(device)
    sizes = [batch_size] * (tiles // batch_size) + ([tiles % batch_size] if tiles % batch_size else [])
    start = time.perf_counter()
    with torch.inference_mode():
        for size in sizes:
            model(pixel_values=batch[:size])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_decoders(args, folder: Path) -> None:
    source = folder / "cube.npy"
    write_cube(source, args.size)
    device = torch.device(args.device)
    settings = dict(
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        axis=args.axis,
        processor=geofm_hf.GeoFMImageProcessor(),
        device=device,
    )
    shape = (args.size,) * 3
    print(
        f"\nPart 1: {args.size}^3 cube ({math.prod(shape) * 4 / MIB:.0f} MiB float32) .npy -> .npy, tile {args.tile}, "
        f"overlap {args.overlap}, batch {args.batch_size}, axis {args.axis}, {device}, "
        f"{torch.get_num_threads()} torch threads, best of {args.repeats}"
    )
    columns = ("tiles", "predict s", "in model s", "ovh/model", "samples/s", "x fp32", "peak MiB", "+MiB")
    print(f"{'decoder':<9}{'precision':<10}" + "".join(f"{name:>11}" for name in columns))
    for decoder in args.decoders:
        baseline = None
        for precision in args.precisions:
            baseline = bench_decoder(args, folder, source, decoder, precision, settings, baseline)


def bench_decoder(args, folder: Path, source: Path, decoder: str, precision: str, settings: dict, baseline):
    """One decoder in one precision: the row of part 1; returns the fp32 samples/s (the speed-up's reference)."""
    device, shape = settings["device"], (args.size,) * 3
    torch.manual_seed(0)
    config = geofm_hf.GeoFMConfig.for_task("fault", backbone="dinov2-small", decoder=decoder)
    model = geofm_hf.GeoFMForSemanticSegmentation(config).eval().to(device)
    clock = ForwardClock(model, device)
    tiles, tile = plan_tiles(shape, args.axis, args.tile, args.overlap, config.pad_multiple)
    timed_bare_forward(model, args.batch_size, tile, args.batch_size, device)  # warm-up
    runs = [
        timed_prediction(model, clock, source, folder / "prediction.npy", dict(settings, precision=precision))
        for _ in range(args.repeats)
    ]
    run = min(runs, key=lambda r: r.seconds)
    speed = math.prod(shape) / run.seconds
    baseline = speed if precision == "fp32" else baseline
    speedup = f"{speed / baseline:.2f}" if baseline else "-"
    print(
        f"{decoder:<9}{precision:<10}{tiles:>11}{run.seconds:>11.1f}{run.model_seconds:>11.1f}"
        f"{run.seconds / run.model_seconds - 1:>11.1%}{speed:>11,.0f}{speedup:>11}{run.peak_mib:>11.0f}"
        f"{max(r.added_mib for r in runs):>11.0f}"
    )
    return baseline


def bench_streaming(args, folder: Path) -> None:
    config = geofm_hf.GeoFMConfig.for_task(
        "fault",
        backbone="dinov2-small",
        decoder="linear",
        backbone_overrides=dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2),
    )
    model = geofm_hf.GeoFMForSemanticSegmentation(config).eval()
    clock = ForwardClock(model, torch.device("cpu"))
    settings = dict(tile=args.tile, overlap=args.overlap, batch_size=args.batch_size, scratch_dir=folder)
    print(
        f"\nPart 2: streaming .npy -> .npy (float32 probability of one class), memory budget {args.budget_mb:.0f} MiB, "
        f"tiny model, tile {args.tile}, batch {args.batch_size}"
    )
    print(f"{'cube':<6}{'axis':<8}{'in+out MiB':>11}{'seconds':>9}{'peak +MiB':>11}{'x budget':>10}{'within':>8}")
    write_cube(folder / "warm-up.npy", 32)
    for axis in ("inline", "all"):  # loads the code pages of every path first, so they do not count below
        timed_prediction(model, clock, folder / "warm-up.npy", folder / "warm-up-out.npy", dict(settings, axis=axis))
    for size in args.streaming_sizes:
        source = folder / f"cube{size}.npy"
        write_cube(source, size, seed=1)
        data_mib = 2 * size**3 * 4 / MIB
        for axis in ("inline", "all"):
            run = timed_prediction(model, clock, source, folder / "streamed.npy", dict(settings, axis=axis))
            print(
                f"{size:<6}{axis:<8}{data_mib:>11.0f}{run.seconds:>9.1f}{run.added_mib:>11.1f}"
                f"{data_mib / args.budget_mb:>10.1f}{'yes' if run.added_mib <= args.budget_mb else 'NO':>8}"
            )
        source.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="side of the cube of part 1 (e.g. 256)")
    parser.add_argument("--tile", type=int, default=112, help="tile side (a multiple of the patch size 14)")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--axis", default="inline", help="inline, crossline, time, a comma-separated list, or all")
    parser.add_argument(
        "--decoders", type=lambda s: [d for d in s.split(",") if d], default=sorted(DECODERS), help="'' skips part 1"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--streaming-sizes", type=lambda s: [int(n) for n in s.split(",") if n], default=[128, 256],
        help="cube sides of part 2 ('' skips part 2)",
    )
    parser.add_argument("--budget-mb", type=float, default=32.0, help="memory budget of part 2, MiB above the baseline")
    parser.add_argument("--scratch", default=None, help="folder for the cubes (default: the system temp folder)")
    parser.add_argument("--repeats", type=int, default=2, help="part 1 runs per decoder; the fastest is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--precisions", type=lambda text: [p for p in text.split(",") if p], default=["fp32", "auto"],
        help="precisions of part 1, side by side (fp32 first: the speed-up's reference)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="geofm-bench-", dir=args.scratch) as folder:
        if args.decoders:
            bench_decoders(args, Path(folder))
        if args.streaming_sizes:
            bench_streaming(args, Path(folder))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
