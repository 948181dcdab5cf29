"""The study's results table, reproduced where its data and a GPU are at hand: five tasks x four DINOv2-S decoders
(linear, pup, dpt, mla) + the UNet from scratch, trained as the study trained them and scored on its test split (mIoU
and mPA per task and model), written as markdown and JSON.

Data: build each task from the study's release (Zenodo record 12798750) into one folder per task first, e.g.

    python dataset_scripts/seismic_facies.py --source study --input ZENODO_DIR --output DATA_ROOT/seismic-facies
    python dataset_scripts/salt.py --source study --input ZENODO_DIR --output DATA_ROOT/salt
    (likewise crater.py -> DATA_ROOT/crater, das_event.py -> DATA_ROOT/das-event, fault.py -> DATA_ROOT/fault)

Settings are the study's (see the study-architecture notes, section 3): AdamW at a constant 1e-5 with betas
(0.7, 0.999) and weight decay 0.01, no gradient clipping, 100 epochs, seed 1234, full fine-tuning (its scripts'
``unfrozen``), sections at their native size (the models pad them to their multiple), per-task batch sizes of its run
scripts. The study's steps held every section together with its left-right flipped copy; here a step holds
2 x study_batch_size randomly flipped sections and training makes 2 x epochs passes, which keeps the study's number of
steps and of sections per step. Known differences: the loss is the task's default in geofm_hf (the study's scripts
used a weighted Dice), biases and norms get no weight decay, the checkpoint is chosen on a validation split carved
from train (the study chose it on its test split), and sections are normalised each with its own statistics (the
study scaled 0-255 values to [0, 1]). Both the dataset-level scores and the study's per-batch means (how its table
was computed) are reported.

    python benchmarks/gpu_reproduction.py --data-root DATA_ROOT [--tasks salt,fault]
        [--decoders linear,pup,dpt,mla,unet] [--epochs 100] [--adaptation full] [--backbone facebook/dinov2-small]
        [--output outputs/gpu_reproduction]
    python benchmarks/gpu_reproduction.py --dry-run [...]               # print the plan, train nothing
    python benchmarks/gpu_reproduction.py --synthetic --steps 10 [...]  # speed and memory per setting, no data needed

``--synthetic`` trains each setting for ``--steps`` steps on synthetic sections of the native size (random backbone
weights unless ``--backbone`` is given: they change neither speed nor memory) and reports training images/s and peak
memory: ``torch.cuda.max_memory_allocated`` on a GPU, the process's peak RSS otherwise. The first steps include
warm-up: use 10 or more steps for steady numbers.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from geofm_hf.data.synthetic import SPLIT_SHARES, split_counts
from geofm_hf.models.decoders import DECODERS
from geofm_hf.models.tasks import TASKS, TaskSpec, get_task
from geofm_hf.study import study_task
from geofm_hf.training import ADAPTATIONS, TrainingConfig
from training_runs import (
    MIB,
    REPO_ROOT,
    MeasuredRun,
    log_tail,
    markdown_table,
    run_training_process,
    score,
    write_report,
)

UNET = "unet"
STUDY_DECODERS = ("linear", "pup", "dpt", "mla")
# The study's optimisation (demo_classification.py and its run scripts).
STUDY_TRAINING = {
    "learning_rate": 1e-5,
    "weight_decay": 0.01,
    "adam_betas": [0.7, 0.999],
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "max_grad_norm": None,
    "seed": 1234,
    "augmentation": {"hflip": True},
}
STUDY_EPOCHS = 100
# Each study step held every section and its flipped copy: twice the sections per step, each section twice per epoch.
FLIP_COPIES = 2
HUB_BACKBONE = "facebook/dinov2-small"
RANDOM_BACKBONE = "random:dinov2-small"


@dataclass(frozen=True)
class Setting:
    """One cell of the study's table: a task and a model (a decoder on DINOv2-S, or the UNet)."""

    task: TaskSpec
    model: str

    @property
    def name(self) -> str:
        return f"{self.task.name}-{self.model}"

    @property
    def batch_size(self) -> int:
        return FLIP_COPIES * study_task(self.task.name).batch_size


def parse_tasks(text: str) -> list[TaskSpec]:
    try:
        return [get_task(name.strip()) for name in text.split(",") if name.strip()]
    except KeyError as error:
        raise argparse.ArgumentTypeError(str(error.args[0])) from None


def parse_models(text: str) -> list[str]:
    models = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in models if name not in DECODERS and name != UNET]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown decoder(s) {unknown}; expected {sorted(DECODERS)} or {UNET}")
    return models


def synthetic_dataset(setting: Setting) -> str:
    """``synthetic:`` spec of the fewest native-size sections whose train split fills one batch."""
    num = len(SPLIT_SHARES)
    while split_counts(num)["train"] < setting.batch_size:
        num += 1
    return f"synthetic:{num}:0:native"


def run_config(setting: Setting, args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainingConfig` of one setting: the study's optimisation, its batch, and the model."""
    if args.synthetic:
        data = {"dataset": synthetic_dataset(setting), "max_steps": args.steps, "eval_steps": args.steps}
    else:
        data = {"dataset": str(args.data_root / setting.task.name), "num_epochs": FLIP_COPIES * args.epochs}
    model = (
        {"backbone": UNET, "adaptation": "full"}
        if setting.model == UNET
        else {"backbone": args.backbone, "decoder": setting.model, "adaptation": args.adaptation}
    )
    return {
        "task": setting.task.name,
        "output_dir": str(args.output / "runs" / setting.name),
        **model,
        **data,
        **STUDY_TRAINING,
        "batch_size": setting.batch_size,
    }


def plan_table(settings: list[Setting], args: argparse.Namespace) -> str:
    header = ["task", "model", "native size", "batch", "training", "backbone", "dataset"]
    body = []
    for setting in settings:
        config = run_config(setting, args)
        steps, passes = config.get("max_steps"), config.get("num_epochs")
        length = f"{steps} steps" if args.synthetic else f"{passes} passes ({args.epochs} epochs)"
        body.append(
            [
                setting.task.name,
                setting.model,
                "x".join(map(str, study_task(setting.task.name).native_size)),
                setting.batch_size,
                length,
                config["backbone"] if setting.model != UNET else "none (from scratch)",
                config["dataset"],
            ]
        )
    return markdown_table(header, body)


def _mib(value: float | None) -> str:
    return score(value / MIB if value is not None else None, 0)


def speed_table(measured: list[tuple[Setting, MeasuredRun]]) -> str:
    """Training throughput and peak memory of each setting (``--synthetic``)."""
    header = ["task", "model", "input", "batch", "steps", "train img/s", "peak GPU MiB", "peak RSS MiB", "wall s"]
    body = [
        [
            setting.task.name,
            setting.model,
            "x".join(map(str, study_task(setting.task.name).native_size)),
            setting.batch_size,
            run.state.get("global_step", "–"),
            score(run.state.get("train_samples_per_second"), 2),
            _mib(run.state.get("peak_gpu_memory_bytes")),
            score(run.peak_rss_mib, 0),
            score(run.wall_seconds, 0),
        ]
        for setting, run in measured
    ]
    return markdown_table(header, body)


def _test_score(run: MeasuredRun, key: str) -> float | None:
    return (run.results or {}).get("test_results", {}).get(key)


def study_table(measured: list[tuple[Setting, MeasuredRun]], miou: str, mpa: str) -> str:
    """The study's layout: a row per model, a column per task, each cell ``mIoU / mPA`` on the test split."""
    tasks = list(dict.fromkeys(setting.task.name for setting, _ in measured))
    models = list(dict.fromkeys(setting.model for setting, _ in measured))
    cells = {
        (setting.model, setting.task.name): f"{score(_test_score(run, miou))} / {score(_test_score(run, mpa))}"
        for setting, run in measured
    }
    body = [[model, *(cells.get((model, task), "–") for task in tasks)] for model in models]
    return markdown_table(["model", *(f"{task} mIoU / mPA" for task in tasks)], body)


def study_reference(tasks: list[TaskSpec]) -> str:
    """The study's own mIoU where known (best DINOv2 decoder, UNet), per task."""
    body = [
        [task.name, f"{study_task(task.name).scores.best_decoder_miou:.3f}", f"{study_task(task.name).scores.unet_miou:.3f}"]
        for task in tasks
    ]
    return markdown_table(["task", "study: best DINOv2 decoder mIoU", "study: UNet mIoU"], body)


def records(measured: list[tuple[Setting, MeasuredRun]]) -> list[dict[str, Any]]:
    return [
        {
            "task": setting.task.name,
            "model": setting.model,
            "batch_size": setting.batch_size,
            "returncode": run.returncode,
            "steps": run.state.get("global_step"),
            "train_images_per_second": run.state.get("train_samples_per_second"),
            "peak_gpu_memory_bytes": run.state.get("peak_gpu_memory_bytes"),
            "peak_rss_mib": run.peak_rss_mib,
            "wall_seconds": run.wall_seconds,
            "test_results": (run.results or {}).get("test_results"),
            "log": str(run.log),
        }
        for setting, run in measured
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, help="folder holding one built dataset folder per task")
    parser.add_argument("--tasks", type=parse_tasks, default=list(TASKS.values()), help="default: all five")
    parser.add_argument(
        "--decoders", type=parse_models, default=[*STUDY_DECODERS, UNET], help="decoders, and unet for the baseline"
    )
    parser.add_argument("--epochs", type=int, default=STUDY_EPOCHS, help="the study's epochs (default: %(default)s)")
    parser.add_argument(
        "--adaptation", choices=sorted(ADAPTATIONS), default="full", help="of DINOv2-S (the UNet always trains fully)"
    )
    parser.add_argument(
        "--backbone", help=f"TrainingConfig.backbone (default: {HUB_BACKBONE}; {RANDOM_BACKBONE} with --synthetic)"
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "outputs" / "gpu_reproduction")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--synthetic", action="store_true", help="measure speed and memory on synthetic sections")
    parser.add_argument("--steps", type=int, default=10, help="training steps per setting with --synthetic")
    args = parser.parse_args()
    args.backbone = args.backbone or (RANDOM_BACKBONE if args.synthetic else HUB_BACKBONE)
    if not args.synthetic and args.data_root is None:
        parser.error("give --data-root (a folder of built datasets, one per task), or --synthetic")
    settings = [Setting(task, model) for task in args.tasks for model in args.decoders]
    command = shlex.join(["python", *sys.argv])
    try:  # a bad setting fails now, not hours into the table
        for setting in settings:
            TrainingConfig.from_dict(run_config(setting, args), source=f"run {setting.name}")
    except ValueError as error:
        parser.error(str(error))

    plan = plan_table(settings, args)
    print(f"{len(settings)} run(s), {'synthetic speed check' if args.synthetic else 'study reproduction'}:\n\n{plan}\n")
    if args.dry_run:
        return 0
    missing = [] if args.synthetic else [t.name for t in args.tasks if not (args.data_root / t.name).is_dir()]
    if missing:
        print(f"error: no dataset folder for {missing} in {args.data_root}; build them (see --help)", file=sys.stderr)
        return 2

    measured = []
    for setting in tqdm(settings, desc="settings", unit="run"):
        run = run_training_process(setting.name, run_config(setting, args), args.output)
        if not run.ok:
            tqdm.write(f"{setting.name} failed (exit {run.returncode}); end of {run.log}:\n{log_tail(run)}")
        measured.append((setting, run))

    if args.synthetic:
        sections = ["# Training speed and memory per setting (synthetic sections, native size)", speed_table(measured)]
    else:
        sections = [
            f"# The study's table: test mIoU / mPA, {args.adaptation} adaptation, {args.epochs} study epochs",
            "## Dataset-level scores (one confusion matrix per test split)",
            study_table(measured, "mean_iou", "mean_pixel_accuracy"),
            "## The study's per-batch means (how its table was computed)",
            study_table(measured, "study_batch_miou", "study_batch_mpa"),
            "## The study's own numbers",
            study_reference(list(args.tasks)),
            "## Speed and memory",
            speed_table(measured),
        ]
    markdown = "\n\n".join([*sections[:1], f"Command: `{command}`", *sections[1:], "## Plan", plan])
    print(markdown)
    paths = write_report(args.output, "results", markdown + "\n", {"command": command, "runs": records(measured)})
    print(f"\nWritten: {', '.join(str(path) for path in paths)}")
    return 0 if all(run.ok for _, run in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
