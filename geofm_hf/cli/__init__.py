"""The ``geofm`` command: one module per subcommand."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``geofm`` with ``argv`` (default: the command line); returns the exit code."""
    from .geofm import main as run

    return run(argv)


__all__ = ["main"]
