"""Training-step throughput and peak memory of DINOv2-S with each decoder (and the UNet) on CPU, in each precision
and with the decoder variants worth trying, side by side.

A step is forward + backward + AdamW, the model in train mode. Variants: ``fp32``; ``bf16`` (``torch.autocast``,
weights stay fp32); ``bf16+cl`` (the decoder in channels-last memory format); ``bf16+compile`` (``torch.compile`` of
the decoder). Each model x variant runs in its own process so that peak RSS belongs to it alone; the speed-up column
is against fp32 of the same model, measured in the same invocation. Weights are random: speed does not depend on them.

    python benchmarks/bench_models.py [--size 224] [--batch 4] [--steps 5] [--threads 2]
        [--variants fp32,bf16,bf16+cl,bf16+compile] [--models linear,pup,mla,dpt,upernet,unet]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

STUDY_PARAMS_VIT_S = {"linear": 770, "pup": 914_882, "mla": 10_967_810, "dpt": 13_583_586}


def prepare_variant(model, head, variant: str):
    """The model as ``variant`` runs it, and its precision."""
    import torch

    precision, _, change = variant.partition("+")
    if change == "cl":
        head.to(memory_format=torch.channels_last)
    elif change == "compile":
        head.forward = torch.compile(head.forward)
    elif change:
        raise ValueError(f"unknown variant {variant!r}")
    return model, precision


def run_one(name: str, size: int, batch: int, steps: int, threads: int, variant: str) -> dict:
    import torch

    import geofm_hf
    from geofm_hf.precision import autocast

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if name == "unet":
        model = geofm_hf.GeoUNetForSemanticSegmentation(geofm_hf.GeoUNetConfig.for_task("fault"))
        head = model
    else:
        model = geofm_hf.GeoFMForSemanticSegmentation(geofm_hf.GeoFMConfig.for_task("fault", decoder=name))
        head = model.decoder
    model, precision = prepare_variant(model.train(), head, variant)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    pixel_values = torch.randn(batch, 1, size, size)
    labels = torch.randint(0, 2, (batch, size, size))
    timings = []
    for _ in range(steps + 2):  # the first two steps warm up allocators, kernels and compilation
        start = time.perf_counter()
        with autocast(precision, torch.device("cpu")):
            loss = model(pixel_values=pixel_values, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    median = sorted(timings[2:])[len(timings[2:]) // 2]
    return {
        "model": name,
        "variant": variant,
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
    parser.add_argument("--variants", default="fp32,bf16,bf16+cl,bf16+compile")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.size, args.batch, args.steps, args.threads, args.one[1])))
        return
    print(f"DINOv2-S (random weights) + decoder, fwd+bwd+AdamW, {args.size}x{args.size}, batch {args.batch}, "
          f"{args.threads} threads, median of {args.steps} steps\n")
    print("| model | variant | head params | study | images/s | step s | x fp32 | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        baseline = None
        for variant in args.variants.split(","):
            command = [sys.executable, __file__, "--one", name, variant, "--size", str(args.size), "--batch",
                       str(args.batch), "--steps", str(args.steps), "--threads", str(args.threads)]
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode != 0:
                print(f"| {name} | {variant} | failed: {completed.stderr.strip().splitlines()[-1][:80]} |||||")
                continue
            result = json.loads(completed.stdout.splitlines()[-1])
            baseline = baseline or (result["images_per_s"] if variant == "fp32" else None)
            speedup = f"{result['images_per_s'] / baseline:.2f}" if baseline else "-"
            study = f"{result['study_params']:,}" if result["study_params"] else "-"
            print(f"| {name} | {variant} | {result['head_params']:,} | {study} | {result['images_per_s']:.2f} | "
                  f"{result['step_s_median']:.2f} | {speedup} | {result['peak_rss_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
