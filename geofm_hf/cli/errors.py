"""What every ``geofm`` subcommand shares: user mistakes end in one line on stderr and exit code 2, not a traceback."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable

logger = logging.getLogger(__name__)

# Errors that mean "bad input or environment" (ImportError: a missing optional package, with the pip command to run;
# OSError includes geofm_hf.hub.HubPushError), each raised with a message that says what to fix.
USER_ERRORS = (ValueError, KeyError, OSError, ImportError)


def reports_errors(command: str) -> Callable[[Callable[[argparse.Namespace], None]], Callable[[argparse.Namespace], int]]:
    """Decorate a subcommand's ``run(args)``: it returns exit code 0, or 2 after printing
    ``geofm <command>: error: <message>`` for a user error (the traceback goes to the debug log)."""

    def decorate(run: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def wrapper(args: argparse.Namespace) -> int:
            try:
                run(args)
            except USER_ERRORS as error:
                logger.debug("%s failed", command, exc_info=True)
                # KeyError's str() adds quotes around the message.
                message = error.args[0] if isinstance(error, KeyError) and error.args else error
                print(f"geofm {command}: error: {message}", file=sys.stderr)
                return 2
            return 0

        return wrapper

    return decorate
