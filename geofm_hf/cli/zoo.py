"""``geofm zoo``: list the shipped models, reproduce one from its data, score it on a dataset, or publish it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..precision import PRECISIONS
from .errors import reports_errors
from .evaluate import add_tta_argument

if TYPE_CHECKING:
    from ..zoo.entry import ZooEntry

CARDS_DIR = Path("model_cards")


def _score(scores: dict, key: str) -> str:
    return f"{scores[key]:.3f}" if key in scores else "–"


@reports_errors("zoo list")
def run_list(args: argparse.Namespace) -> None:
    """One line per entry: task, test mIoU with the UNet at the same budget and the study's, size, data licence."""
    from ..zoo import list_entries

    rows = [("name", "task", "test mIoU", "UNet same budget", "study best/UNet", "MB", "test data", "Hub pin",
             "data licence")]
    for entry in list_entries():
        scores = entry.scores
        size = f"{entry.weights.num_bytes / 1e6:.1f}" if entry.weights else "not shipped"
        study = f"{scores['study_best_miou']:.3f}/{scores['study_unet_miou']:.3f}" if "study_best_miou" in scores else "–"
        test = f"{scores['test_sections']} sections" if "test_sections" in scores else "–"
        pin = f"{entry.hub.repo_id}@{entry.hub.revision[:8]}" if entry.hub else "–"
        rows.append(
            (entry.name, entry.task, _score(scores, "test_miou"), _score(scores, "unet_test_miou"), study, size, test,
             pin, entry.licence)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@reports_errors("zoo train")
def run_train(args: argparse.Namespace) -> None:
    """Train the entry's recipe (or the UNet baseline) from the data it names; ``--ship`` stores the result."""
    from ..zoo import get_entry
    from ..zoo.recipes import BASELINE_SUBFOLDER, RUN_SUBFOLDER, train_entry

    entry = get_entry(args.name)
    output = args.output or Path("outputs") / "zoo" / entry.name
    if args.seed is not None and (args.ship or args.ship_only):
        raise ValueError("--seed: a run with another seed than the recipe's measures the spread; it is not shipped")
    if not args.ship_only:
        run_dir = train_entry(entry, args.data_root, output, baseline=args.baseline, seed=args.seed)
        print(f"trained {entry.name}{' (UNet baseline)' if args.baseline else ''}: {run_dir}")
    if args.ship or args.ship_only:
        from ..zoo.ship import ship_run

        baseline = output / BASELINE_SUBFOLDER
        shipped = ship_run(entry, output / RUN_SUBFOLDER, baseline if baseline.is_dir() else None, args.cards_dir)
        print(f"shipped {shipped.name}: test mIoU {shipped.scores['test_miou']:.4f}, {shipped.weights.num_bytes:,} bytes")
        if not baseline.is_dir():
            print(unet_note(shipped, baseline))


def unet_note(entry: ZooEntry, baseline: Path) -> str:
    """What became of the UNet comparison when the entry was shipped without a UNet run in ``baseline``."""
    if "unet_test_miou" in entry.scores:
        return f"no UNet run in {baseline}: kept the recorded UNet score (its settings and data are unchanged)"
    return f"no UNet run in {baseline}: the card says 'not trained' (train it with --baseline, then --ship-only)"


def run_zoo_evaluate(args: argparse.Namespace) -> int:
    """``geofm evaluate zoo:NAME DATASET ...``."""
    from .evaluate import run_evaluate

    args.model = f"zoo:{args.name}"
    return run_evaluate(args)


@reports_errors("zoo push")
def run_push(args: argparse.Namespace) -> None:
    """Stage the entry as a full model folder (merged weights, processor, remote code, its card) and upload it;
    ``--pin`` records the repo and the upload's commit in the entry, for ``zoo:NAME@hub``."""
    import dataclasses

    from huggingface_hub import ModelCard

    from ..hub.push import push_model
    from ..zoo import ZooHub, get_entry, load
    from ..zoo.ship import write_entry

    entry = get_entry(args.name)
    model, processor = load(entry.name, source="package")
    card_file = args.cards_dir / entry.name / "README.md"
    card = ModelCard.load(card_file) if card_file.is_file() else None
    commit = push_model(
        model, args.repo_id, args.staging or Path("outputs") / "zoo" / entry.name / "hub", processor, card=card,
        private=args.private, commit_message=f"geofm_hf zoo entry {entry.name}", overwrite=True,
    )
    print(f"pushed {entry.name} to {commit.repo_url} ({commit.oid})")
    if args.pin:
        write_entry(dataclasses.replace(entry, hub=ZooHub(args.repo_id, commit.oid)))
        print(f"pinned: zoo:{entry.name}@hub loads {args.repo_id} at {commit.oid}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm zoo {list,train,evaluate,push}``."""
    parser = subparsers.add_parser("zoo", help="the shipped models: list, train, evaluate, push")
    commands = parser.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)

    listing = commands.add_parser("list", help="entries with their measured scores and data licences")
    listing.set_defaults(func=run_list)

    training = commands.add_parser(
        "train", help="reproduce an entry from the data it names", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    training.add_argument("name", help="entry name (see geofm zoo list)")
    training.add_argument(
        "--data-root", type=Path, required=True, help="folder holding the entry's data (e.g. ../shared/data)"
    )
    training.add_argument("--output", type=Path, default=None, help="work folder (default: outputs/zoo/NAME)")
    training.add_argument("--baseline", action="store_true", help="train the UNet at the same budget instead")
    training.add_argument(
        "--seed", type=int, default=None, help="seed instead of the recipe's (to measure the spread over seeds)"
    )
    training.add_argument("--ship", action="store_true", help="maintainers: store the trained run as the entry")
    training.add_argument("--ship-only", action="store_true", help="maintainers: ship the run already in --output")
    training.add_argument("--cards-dir", type=Path, default=CARDS_DIR, help="where the entry's card is written")
    training.set_defaults(func=run_train)

    evaluating = commands.add_parser("evaluate", help="score an entry on a dataset split (as geofm evaluate)")
    evaluating.add_argument("name", help="entry name")
    evaluating.add_argument("dataset", help="local dataset folder or Hub dataset id")
    evaluating.add_argument("--split", default="test")
    evaluating.add_argument("--output-dir", "--output", dest="output", type=Path, default=None)
    evaluating.add_argument("--batch-size", type=int, default=4)
    evaluating.add_argument("--study-batch-size", type=int, default=None)
    evaluating.add_argument("--max-overlays", type=int, default=4)
    evaluating.add_argument("--device", default=None)
    evaluating.add_argument("--precision", default="auto", choices=PRECISIONS)
    add_tta_argument(evaluating)
    evaluating.set_defaults(func=run_zoo_evaluate)

    pushing = commands.add_parser("push", help="upload an entry as a full model repo (as training's push does)")
    pushing.add_argument("name", help="entry name")
    pushing.add_argument("repo_id", help="Hub model repo (org/name)")
    pushing.add_argument("--private", action="store_true")
    pushing.add_argument("--staging", type=Path, default=None, help="folder the upload is staged in")
    pushing.add_argument("--cards-dir", type=Path, default=CARDS_DIR)
    pushing.add_argument(
        "--pin", action="store_true", help="maintainers: record the repo and commit in the entry (zoo:NAME@hub)"
    )
    pushing.set_defaults(func=run_push)


__all__ = ["add_parser"]
