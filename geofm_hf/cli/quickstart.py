"""``geofm quickstart``: the README's main job, on synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..quickstart import QuickstartSettings, print_summary, run_quickstart
from .errors import reports_errors


@reports_errors("quickstart")
def _run(args: argparse.Namespace) -> None:
    settings = QuickstartSettings(
        task=args.task,
        decoder=args.decoder,
        num_sections=args.num,
        size=args.size,
        crop_size=min(args.crop_size, args.size),
        max_steps=args.steps,
    )
    print_summary(run_quickstart(Path(args.output), settings, overwrite=args.overwrite))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = QuickstartSettings()
    parser = subparsers.add_parser("quickstart", help="synthetic data -> LoRA fine-tune -> evaluate -> save -> reload")
    parser.add_argument("--output-dir", "--output", dest="output", default="outputs/quickstart", help="folder of all outputs")
    parser.add_argument("--task", default=defaults.task)
    parser.add_argument("--decoder", default=defaults.decoder)
    parser.add_argument("--num", type=int, default=defaults.num_sections, help="synthetic sections")
    parser.add_argument("--size", type=int, default=defaults.size, help="section height and width")
    parser.add_argument("--crop-size", type=int, default=defaults.crop_size, help="training crop and tile size")
    parser.add_argument("--steps", type=int, default=defaults.max_steps, help="optimiser steps")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    parser.set_defaults(func=_run)
