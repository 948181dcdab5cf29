"""Command line of the dataset builder: ``geofm dataset --task T ...`` and ``python dataset_scripts/<task>.py ...``.

Both take the same options; a dataset script only fixes ``--task``::

    python dataset_scripts/fault.py --source synthetic --num 200 --seed 0 --output out/fault
    python dataset_scripts/salt.py --source study --input /data/zenodo-12798750 --output out/salt \\
        --push-to-hub my-org/salt
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub.utils import validate_repo_id

from .errors import reports_errors
from ..io.options import SURVEY_FLAGS, add_survey_arguments, merge_options
from ..models.tasks import TASKS, get_task
from ..data.builder import DEFAULT_HOLDOUT, build_dataset_folder, push_dataset_folder

# Named flags that are reader options (the reader keyword is the flag's dest).
NAMED_OPTIONS = ("num", "seed", "size", *SURVEY_FLAGS)


def add_dataset_arguments(parser: argparse.ArgumentParser, task: str | None = None) -> None:
    """Add the builder's options to ``parser``; with ``task`` given, ``--task`` is fixed and not offered."""
    if task is None:
        parser.add_argument("--task", required=True, help=f"task to build: {', '.join(TASKS)} (or an alias)")
    else:
        parser.set_defaults(task=task)
    parser.add_argument(
        "--source",
        required=True,
        help="'study' (the study's release layout), 'synthetic', or an original format reader "
        "(see dataset_scripts/README.md)",
    )
    parser.add_argument("--input", dest="input_dir", type=Path, help="input folder of the source (not for synthetic)")
    parser.add_argument(
        "--output-dir", "--output", dest="output", required=True, type=Path, help="folder to write (Hub dataset layout)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the folder to this Hub dataset repo")
    parser.add_argument(
        "--hub-private", "--private", dest="private", action="store_true", help="create the Hub repo as private"
    )
    parser.add_argument("--token", help="Hub write token (default: the one of `hf auth login`, or HF_TOKEN)")
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=DEFAULT_HOLDOUT,
        help="share of train used as validation when the source has no validation split (default: %(default)s)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=DEFAULT_HOLDOUT,
        help="share of train used as test when the source has no test split (default: %(default)s)",
    )
    reader = parser.add_argument_group("reader options (passed to the source's reader when given)")
    reader.add_argument("--num", type=int, help="synthetic: number of sections (default 100)")
    reader.add_argument("--seed", type=int, help="synthetic: seed (default 0)")
    reader.add_argument(
        "--size", help="synthetic: N1,N2, or 'native' for the task's size in the study (default 128,128)"
    )
    add_survey_arguments(reader)


def reader_options(args: argparse.Namespace) -> dict[str, Any]:
    """Reader options from the named flags and the ``--option`` pairs; the same option given both ways is an error."""
    return merge_options({name: getattr(args, name) for name in NAMED_OPTIONS}, args.option)


def _redact_token(arguments: Sequence[str]) -> list[str]:
    """Hide the value of ``--token``: the command is published in the dataset card."""
    redacted = []
    for previous, argument in zip(["", *arguments], arguments):
        if previous == "--token":
            argument = "<token>"
        elif argument.startswith("--token="):
            argument = "--token=<token>"
        redacted.append(argument)
    return redacted


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as the user typed it (``python dataset_scripts/x.py ...`` or ``geofm dataset ...``), token hidden."""
    program, *arguments = sys.argv if argv is None else [sys.argv[0], *argv]
    launcher = ["python", program] if program.endswith(".py") else [Path(program).name]
    return shlex.join([*launcher, *_redact_token(arguments)])


@reports_errors("dataset")
def run_dataset(args: argparse.Namespace) -> None:
    """Build (and optionally upload) a dataset folder."""
    task = get_task(args.task)
    if args.push_to_hub:
        validate_repo_id(args.push_to_hub)  # before the build, not after an hour of conversion
    folder = build_dataset_folder(
        task,
        args.source,
        args.output,
        input_dir=args.input_dir,
        options=reader_options(args),
        command=args.command_line or command_line(),
        repo_id=args.push_to_hub,
        overwrite=args.overwrite,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
    )
    print(f"Dataset folder written: {folder}")
    if args.push_to_hub:
        commit = push_dataset_folder(folder, args.push_to_hub, token=args.token, private=args.private)
        print(f"Uploaded to {commit.repo_url} ({commit.commit_url})")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm dataset``."""
    parser = subparsers.add_parser(
        "dataset",
        help="build a task's Hub dataset (Parquet shards + card) from a source, optionally upload it",
        description=__doc__.splitlines()[0],
    )
    add_dataset_arguments(parser)
    parser.set_defaults(func=run_dataset, command_line=None)


def main(argv: Sequence[str] | None = None, task: str | None = None) -> int:
    """Entry point of the dataset scripts (``task`` fixed) and of ``python -m geofm_hf.cli.dataset``."""
    parser = argparse.ArgumentParser(
        description=f"Build the {task} dataset from a source." if task else __doc__.splitlines()[0]
    )
    add_dataset_arguments(parser, task)
    args = parser.parse_args(argv)
    args.command_line = command_line(argv)
    return run_dataset(args)


if __name__ == "__main__":
    sys.exit(main())
