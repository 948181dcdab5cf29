"""Training entry point for launchers: ``accelerate launch -m geofm_hf.train --config cfg.yaml [--field VALUE ...]``.

The same command as ``geofm train``; ``python -m geofm_hf.train`` runs it on one process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .cli.train import DESCRIPTION, add_training_arguments, run_train


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geofm_hf.train", description=DESCRIPTION)
    add_training_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_train(args)


if __name__ == "__main__":
    sys.exit(main())
