"""``geofm train``: fine-tune from a YAML/JSON config, any field overridable on the command line.

Every `TrainingConfig` field is an option (``--learning_rate 3e-4``, nested ones dotted: ``--lora.r 16``); values
are read as YAML, so ``--adam_betas '[0.9, 0.99]'`` and ``--max_steps null`` work.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator

from ..training.config import TrainingConfig, load_config, parse_override_value
from .errors import reports_errors

DESCRIPTION = (
    "Fine-tune a GeoFM segmenter (frozen, full or LoRA) with Accelerate. Runs as is on one process, or under "
    "`accelerate launch -m geofm_hf.train` on several."
)
_OVERRIDE = "override:"


def _fields(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """(dotted name, field) of every leaf field, descending into nested settings."""
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            yield from _fields(field.type, f"{prefix}{field.name}.")
        else:
            yield prefix + field.name, field


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and one option per config field (only the given ones override the file), e.g.
    ``--push-to-hub org/name``."""
    parser.add_argument("--config", default=None, help="YAML or JSON file of TrainingConfig fields")
    group = parser.add_argument_group("config fields", "each overrides the file's value; read as YAML")
    for name, field in _fields(TrainingConfig):
        default = field.default if field.default is not dataclasses.MISSING else "required"
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        # The command-line spelling (--max-steps, --push-to-hub) first; the field's own (--max_steps) still works.
        spellings = dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}"])
        # A boolean is a flag (--hub-private); an explicit value (--hub-private false) is still read.
        flag = {"nargs": "?", "const": True} if field.type in (bool, "bool") else {}
        group.add_argument(
            *spellings,
            dest=_OVERRIDE + name,
            type=parse_override_value,
            default=argparse.SUPPRESS,
            metavar="VALUE",
            help=f"{field.metadata.get('help', '')} (default: {default})",
            **flag,
        )


@reports_errors("train")
def run_train(args: argparse.Namespace) -> None:
    """Load the config with its overrides and train; print the folder of the best model."""
    from accelerate import PartialState

    from ..training.run import train

    overrides = {key[len(_OVERRIDE) :]: value for key, value in vars(args).items() if key.startswith(_OVERRIDE)}
    result = train(load_config(args.config, overrides))
    if PartialState().is_main_process:
        print(result.layout.best_dir)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm train --config FILE [--field VALUE ...]``; it prints the folder of the best model."""
    parser = subparsers.add_parser("train", help="Fine-tune a GeoFM segmenter.", description=DESCRIPTION)
    add_training_arguments(parser)
    parser.set_defaults(func=run_train)


__all__ = ["add_parser", "add_training_arguments", "run_train"]
