"""``geofm evaluate``."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from geofm_hf.evaluation import add_cli

    add_cli(subparsers)
