"""Prediction entry point for launchers: ``accelerate launch -m geofm_hf.predict MODEL INPUT OUTPUT [options]``.

The same command and options as ``geofm predict``. Under a launcher the processes split the sections of each
direction and the main process writes the one output, equal to a one-process run's; without GPUs, make the
processes a CPU group with ``ACCELERATE_USE_CPU=1``::

    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m geofm_hf.predict model survey.sgy faults.sgy

``python -m geofm_hf.predict`` runs it on one process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .cli.predict import DESCRIPTION, add_predict_arguments, run_predict


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geofm_hf.predict", description=DESCRIPTION)
    add_predict_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_predict(args)


if __name__ == "__main__":
    sys.exit(main())
