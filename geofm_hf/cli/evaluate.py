"""``geofm evaluate``: score a trained model on one split of a dataset, print the scores, write results and pictures."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..precision import PRECISIONS
from ..evaluation.evaluate import check_same_task, dataset_label_names, evaluate_model, load_model_and_processor, load_split
from ..evaluation.inference import resolve_device
from ..evaluation.results import CONFUSION_MATRIX_FILE, EVAL_RESULTS_FILE
from ..evaluation.tta import with_tta
from .errors import reports_errors


def _format_table(results: Mapping[str, Any]) -> str:
    rows = [
        ("mean IoU", results["mean_iou"]),
        ("mean pixel accuracy", results["mean_pixel_accuracy"]),
        ("overall accuracy", results["overall_accuracy"]),
        ("mean F1", results["mean_f1"]),
        (f"study per-batch mIoU ({results['study_batch_size']} per batch)", results["study_batch_miou"]),
        (f"study per-batch mPA ({results['study_batch_size']} per batch)", results["study_batch_mpa"]),
        *((f"IoU {name}", value) for name, value in results["per_class_iou"].items()),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:.4f}" for name, value in rows)


@reports_errors("evaluate")
def run_evaluate(args: argparse.Namespace) -> None:
    """Load the split and the model, check they share classes, evaluate, print the scores and what was written."""
    device = resolve_device(args.device)
    dataset = load_split(args.dataset, args.split)
    model, processor = load_model_and_processor(args.model)
    model = with_tta(model, args.tta)
    check_same_task(model.config, args.model, dataset_label_names(args.dataset), args.dataset)
    results = evaluate_model(
        model,
        processor,
        dataset,
        batch_size=args.batch_size,
        study_batch_size=args.study_batch_size,
        device=device,
        max_overlays=args.max_overlays,
        output_dir=args.output,
        precision=args.precision,
    )
    print(f"{args.model} on {args.dataset} [{args.split}]: {results['num_examples']} sections, task {results['task']}")
    print(_format_table(results))
    if args.output is not None:
        for name in [EVAL_RESULTS_FILE, *results["figures"]]:
            print(f"wrote {args.output / name}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return value


def add_tta_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tta", action="store_true", help="average each section with its left-right mirror (twice the compute)"
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm evaluate MODEL DATASET [--split S] [--output-dir DIR] [--batch-size N] ...`` to the ``geofm`` command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a trained model on a dataset split (mIoU, mPA, per-class IoU, F1, confusion matrix, pictures)",
        description=(
            "Run a trained model over one split of a dataset, normalising each section as training does, and report "
            "dataset-level scores from one confusion matrix, plus the study's per-batch mIoU/mPA. With --output-dir, "
            f"write {EVAL_RESULTS_FILE}, {CONFUSION_MATRIX_FILE} and example pictures."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", help="Hub id or local folder of a trained model (and its image processor)")
    parser.add_argument("dataset", help="local dataset folder (Parquet + README) or Hub dataset id")
    parser.add_argument("--split", default="test", help="split to evaluate")
    parser.add_argument(
        "--output-dir", "--output", dest="output", type=Path, default=None,
        help=f"folder for {EVAL_RESULTS_FILE} and the pictures",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=4, help="sections per forward pass")
    parser.add_argument(
        "--study-batch-size",
        type=_positive_int,
        default=None,
        help="sections per batch of the study's per-batch scores (default: --batch-size)",
    )
    parser.add_argument("--max-overlays", type=int, default=4, help="example pictures to write with --output")
    add_tta_argument(parser)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (bf16 where the device computes it natively, else fp32), bf16, fp16 (CUDA) or fp32",
    )
    parser.set_defaults(func=run_evaluate)


__all__ = ["add_parser", "add_tta_argument", "run_evaluate"]
