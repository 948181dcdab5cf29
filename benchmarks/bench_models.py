"""Forward+backward throughput and peak memory of DINOv2-S with each decoder (and the UNet) on CPU.

Each model runs in its own process so that peak RSS belongs to it alone. Weights are random: speed and memory do not
depend on them.

    python benchmarks/bench_models.py [--size 224] [--batch 4] [--steps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

STUDY_PARAMS_VIT_S = {"linear": 770, "pup": 914_882, "mla": 10_967_810, "dpt": 13_583_586}


def run_one(name: str, size: int, batch: int, steps: int, threads: int) -> dict:
    import torch

    import geofm_hf

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if name == "unet":
        model = geofm_hf.GeoUNetForSemanticSegmentation(geofm_hf.GeoUNetConfig.for_task("fault"))
        head = model
    else:
        model = geofm_hf.GeoFMForSemanticSegmentation(geofm_hf.GeoFMConfig.for_task("fault", decoder=name))
        head = model.decoder
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    pixel_values = torch.randn(batch, 1, size, size)
    labels = torch.randint(0, 2, (batch, size, size))
    timings = []
    for _ in range(steps + 1):  # the first step warms up allocators and kernels
        start = time.perf_counter()
        loss = model(pixel_values=pixel_values, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    median = sorted(timings[1:])[len(timings[1:]) // 2]
    return {
        "model": name,
        "head_params": sum(p.numel() for p in head.parameters()),
        "study_params": STUDY_PARAMS_VIT_S.get(name),
        "images_per_s": batch / median,
        "step_s_median": median,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="linear,pup,mla,dpt,upernet,unet")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.size, args.batch, args.steps, args.threads)))
        return
    print(f"DINOv2-S (random weights) + decoder, fwd+bwd+AdamW, {args.size}x{args.size}, batch {args.batch}, "
          f"{args.threads} threads, median of {args.steps} steps")
    print(f"{'model':8} {'head params':>12} {'study':>12} {'images/s':>9} {'step s':>7} {'peak RSS MiB':>13}")
    for name in args.models.split(","):
        command = [sys.executable, __file__, "--one", name, "--size", str(args.size), "--batch", str(args.batch),
                   "--steps", str(args.steps), "--threads", str(args.threads)]
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        study = f"{result['study_params']:,}" if result["study_params"] else "-"
        print(f"{name:8} {result['head_params']:>12,} {study:>12} {result['images_per_s']:>9.2f} "
              f"{result['step_s_median']:>7.2f} {result['peak_rss_mib']:>13.0f}")


if __name__ == "__main__":
    main()
