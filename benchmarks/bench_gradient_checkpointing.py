"""Gradient checkpointing: the same loss and gradients, less memory, more time — for DINOv2-S and a DINOv2-L-sized
backbone (random weights) on the CPU.

Each setting runs in its own process (peak RSS is the process's own): build the model, one forward + backward on a
batch of 224x224 sections, report loss, peak RSS above the model's own size, and the step time.

    python benchmarks/bench_gradient_checkpointing.py [--batch-size 4] [--size 224] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

BACKBONES = {
    "dinov2-small": {},
    "dinov2-large-sized": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16),
}


def measure(backbone: str, checkpointing: bool, batch_size: int, size: int, threads: int) -> dict:
    """One forward + backward in this process; run through :func:`main`'s child processes."""
    import torch

    import geofm_hf
    from geofm_hf.training.setup import enable_gradient_checkpointing

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = geofm_hf.GeoFMConfig.for_task("fault", decoder="linear", backbone_overrides=BACKBONES[backbone])
    model = geofm_hf.GeoFMForSemanticSegmentation(config).train()
    if checkpointing:
        enable_gradient_checkpointing(model)
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randn(batch_size, 1, size, size, generator=generator)
    labels = torch.randint(0, 2, (batch_size, size, size), generator=generator)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    loss = model(pixel_values=pixels, labels=labels).loss
    loss.backward()
    seconds = time.perf_counter() - start
    grad_norm = torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])).item()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"backbone": backbone, "checkpointing": checkpointing, "loss": loss.item(), "grad_norm": grad_norm,
            "step_seconds": seconds, "peak_rss_mib": peak, "step_peak_above_model_mib": peak - before}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("BACKBONE", "CHECKPOINTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(args.child[0], args.child[1] == "1", args.batch_size, args.size, args.threads)
        print(json.dumps(result))
        return 0
    rows = []
    for backbone in BACKBONES:
        for checkpointing in (False, True):
            command = [sys.executable, __file__, "--batch-size", str(args.batch_size), "--size", str(args.size),
                       "--threads", str(args.threads), "--child", backbone, str(int(checkpointing))]
            rows.append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1]))
    print(f"batch {args.batch_size} x {args.size}x{args.size}, {args.threads} threads, fwd + bwd, each in its own process\n")
    print("| backbone | checkpointing | loss | grad norm | step s | peak RSS MiB | step's own peak MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['backbone']} | {row['checkpointing']} | {row['loss']:.6f} | {row['grad_norm']:.6f} | "
              f"{row['step_seconds']:.2f} | {row['peak_rss_mib']:.0f} | {row['step_peak_above_model_mib']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
