"""The ``geofm`` command: one module of :mod:`geofm_hf.cli` per subcommand, each imported only when it runs.

Every subcommand module has ``add_parser(subparsers)``, which adds its parser and sets ``func`` (the run function,
wrapped by :func:`~geofm_hf.cli.errors.reports_errors`). Option names follow one convention: dashes
(``--output-dir``), with the underscore spellings of earlier versions still accepted; booleans are flags.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable, Sequence

from geofm_hf_cli import DEBUG_FLAG, DEBUG_HELP, DESCRIPTION, SUBCOMMANDS, take_debug_flag, version


def build_parser(commands: Iterable[str] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The ``geofm`` parser with the full options of ``commands`` (default: all of them)."""
    parser = argparse.ArgumentParser(prog="geofm", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"geofm_hf {version()}")
    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in commands:
        importlib.import_module(SUBCOMMANDS[name][0]).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line), run the chosen subcommand and return its exit code.

    ``geofm --debug <command> ...`` shows tracebacks (see :mod:`geofm_hf.cli.errors`).
    """
    argv = take_debug_flag(list(sys.argv[1:] if argv is None else argv))
    chosen = [argv[0]] if argv and argv[0] in SUBCOMMANDS else SUBCOMMANDS
    args = build_parser(chosen).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)
