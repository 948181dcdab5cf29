"""The ``geofm`` command: one subcommand per workflow, each contributed by the module that implements it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import evaluation, quickstart
from ..data import cli as data_cli
from ..inference import cli as inference_cli
from ..training import cli as training_cli
from . import convert_weights

CLI_MODULES = (
    quickstart.add_cli,
    training_cli.add_cli,
    evaluation.add_cli,
    inference_cli.add_cli,
    data_cli.add_cli,
    convert_weights.add_cli,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geofm", description="Adapt vision foundation models to geophysical data.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_cli in CLI_MODULES:
        add_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
