"""Benchmark of survey prediction across processes (not a test): 2 CPU processes x 1 thread against 1 x 1.

A synthetic cube several times larger than a memory budget is streamed .npy -> .npy (float32 probability of one
class) by a DINOv2-S-sized model with random weights (``--model tiny``: 32 wide, 4 blocks), once by one process and
once by two processes under ``accelerate launch`` (a gloo group of CPU processes), each process on one thread. Each
run reports the prediction's seconds (from a barrier before it to one after the output is assembled, model loading and
process start-up excluded; "wall s" includes them), the speed-up, the peak resident memory each process added during
the prediction against the budget, and how far the two outputs differ.

Usage:
    python benchmarks/bench_predict_distributed.py                        # 160^3 cube, budget 8 MiB
    python benchmarks/bench_predict_distributed.py --size 256 --axis all --budget-mb 32

On a machine with two cores busy with other work the two processes share them with it: compare the ratio, not the
absolute figures, and expect no more than 2x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import gather_object

import geofm_hf
from bench_predict_volume import MIB, reset_peak_rss, rss_mib, write_cube
from geofm_hf.inference import create_output, open_input, plan_prediction, predict_with_plan
from geofm_hf.inference.distributed import ProcessGroup, predict_across_processes
from geofm_hf.io.atomic import scratch_folder
from geofm_hf.precision import autocast, resolve_precision

RESULT_TAG = "bench-result "
MODELS = {
    "small": {},  # DINOv2-S: 384 wide, 12 blocks
    "tiny": dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2),
}


def build_model(name: str) -> geofm_hf.GeoFMForSemanticSegmentation:
    """A seeded segmenter with a linear decoder and the ``name`` backbone: every process builds the same weights."""
    torch.manual_seed(0)
    config = geofm_hf.GeoFMConfig.for_task(
        "fault", backbone="dinov2-small", decoder="linear", backbone_overrides=MODELS[name]
    )
    return geofm_hf.GeoFMForSemanticSegmentation(config).eval()


def run_worker(args: argparse.Namespace) -> None:
    """One process of a run: predict ``args.cube`` into ``args.target`` with the group it was launched in, timed."""
    torch.set_num_threads(args.threads)
    group = ProcessGroup.current()
    model = build_model(args.model)
    processor = geofm_hf.GeoFMImageProcessor()
    with open_input(args.cube) as reader, contextlib.ExitStack() as created:
        plan = plan_prediction(
            model.config, reader, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size, output_class=1,
            axis=args.axis, precision=args.precision,
        )
        out = scratch = None
        if group.is_main:
            out = created.enter_context(create_output(args.target, reader.shape, np.float32, overwrite=True))
            scratch = created.enter_context(scratch_folder(args.target))
        scratch = group.share(scratch)
        # Warm-up in the run's precision: lazy initialisation (kernels, bf16 weight copies) does not count.
        cpu = torch.device("cpu")
        with torch.inference_mode(), autocast(resolve_precision(args.precision, cpu), cpu):
            model(pixel_values=torch.zeros(args.batch_size, 1, *plan.grids[0].tile))
        settings = dict(out=out, processor=processor, progress=False)
        before = rss_mib()
        reset_peak_rss()
        group.state.wait_for_everyone()
        start = time.perf_counter()
        if group.count == 1:
            predict_with_plan(model, reader, plan, scratch_dir=scratch, **settings)
        else:
            predict_across_processes(model, reader, plan, group, scratch, **settings)
        group.state.wait_for_everyone()
        seconds = time.perf_counter() - start
        added = rss_mib("VmHWM") - before
    added_all = gather_object([added])
    if group.is_main:
        print(RESULT_TAG + json.dumps({"seconds": seconds, "added_mib": added_all}), flush=True)


def launch(args: argparse.Namespace, folder: Path, processes: int) -> dict:
    """Run the worker on ``processes`` processes of one thread each; its result, wall seconds and output path."""
    target = folder / f"prediction-{processes}.npy"
    worker = [
        str(Path(__file__).resolve()), "--worker", "--cube", str(folder / "cube.npy"), "--target", str(target),
        "--model", args.model, "--tile", str(args.tile), "--overlap", str(args.overlap), "--batch-size",
        str(args.batch_size), "--axis", args.axis, "--precision", args.precision, "--threads", "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if processes == 1:
        command = [sys.executable, *worker]
    else:
        # Without GPUs, Accelerate makes a gloo (MULTI_CPU) group only when told to use the CPU.
        env["ACCELERATE_USE_CPU"] = "1"
        command = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
            str(args.port), *worker,
        ]
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{processes}-process run failed:\n{(completed.stdout + completed.stderr)[-4000:]}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith(RESULT_TAG))
    return {**json.loads(line[len(RESULT_TAG) :]), "wall": wall, "target": target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=160, help="side of the cube")
    parser.add_argument("--budget-mb", type=float, default=8.0, help="memory budget per process, MiB above baseline")
    parser.add_argument("--model", choices=sorted(MODELS), default="small")
    parser.add_argument("--tile", type=int, default=112, help="tile side (a multiple of the patch size 14)")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--axis", default="inline", help="inline, crossline, time, a comma-separated list, or all")
    parser.add_argument("--precision", default="auto", help="auto (bf16 where native), bf16 or fp32")
    parser.add_argument("--port", type=int, default=29531, help="the launcher's rendezvous port on 127.0.0.1")
    parser.add_argument("--scratch", default=None, help="folder for the cubes (default: the system temp folder)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cube", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="geofm-bench-dist-", dir=args.scratch) as folder:
        folder = Path(folder)
        write_cube(folder / "cube.npy", args.size)
        data_mib = 2 * args.size**3 * 4 / MIB
        print(
            f"{args.size}^3 cube .npy -> .npy (in + out {data_mib:.0f} MiB = {data_mib / args.budget_mb:.1f} x the "
            f"{args.budget_mb:.0f} MiB budget), {args.model} model, tile {args.tile}, batch {args.batch_size}, axis "
            f"{args.axis}, precision {args.precision}"
        )
        print(
            f"{'processes x threads':<21}{'predict s':>10}{'wall s':>9}{'voxels/s':>11}{'speed-up':>10}"
            f"{'peak +MiB':>11}{'within':>8}"
        )
        runs = {processes: launch(args, folder, processes) for processes in (1, 2)}
        for processes, run in runs.items():
            speed = math.prod((args.size,) * 3) / run["seconds"]
            peak = max(run["added_mib"])
            within = "yes" if peak <= args.budget_mb else "NO"
            print(
                f"{f'{processes} x 1':<21}{run['seconds']:>10.1f}{run['wall']:>9.1f}{speed:>11,.0f}"
                f"{runs[1]['seconds'] / run['seconds']:>9.2f}x{peak:>11.1f}{within:>8}"
            )
        difference = np.abs(np.load(runs[1]["target"]) - np.load(runs[2]["target"])).max()
        print(f"largest difference between the two outputs: {difference:.1e}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
