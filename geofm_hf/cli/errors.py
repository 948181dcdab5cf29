"""The error boundary of every ``geofm`` subcommand and dataset script.

A failure of a known family (bad input files, an unusable device, the Hub out of reach, a full disk, ...) ends in
one line on stderr, ``geofm <command>: error: <what, naming the file or field>``, and exit code 2; the traceback
is shown only with ``geofm --debug <command>`` or ``GEOFM_DEBUG=1``. Anything else is a bug and keeps its traceback.
SIGTERM is turned into an exception while a command runs, so that every ``finally`` and ``except BaseException``
on the way out (temporary files, staging folders) runs as it does for Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
# The shell's convention for a process ended by a signal: 128 + the signal number.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
DEBUG_ENV = "GEOFM_DEBUG"
# A Hub look-up on an unreachable endpoint retries for ~25 s before failing; one connection attempt this long decides.
HUB_PROBE_SECONDS = 3.0

# Errors that mean "bad input or environment" (ImportError: a missing optional package, with the pip command to run;
# OSError includes geofm_hf.hub.HubPushError), each raised with a message that says what to fix.
USER_ERRORS = (ValueError, KeyError, OSError, ImportError)


def debug_enabled() -> bool:
    """Whether tracebacks are wanted: ``geofm --debug`` sets ``GEOFM_DEBUG=1`` for the command it runs."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# --- failure families --------------------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    """A message on one line: libraries' messages often span several, with the useful part in the first."""
    return " ".join(str(text).split())


def _frames(error: BaseException) -> Iterator[TracebackType]:
    """The traceback entries of ``error``, innermost first."""
    entries = []
    tb = error.__traceback__
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    return reversed(entries)


def _raised_in(error: BaseException, package: str) -> bool:
    """Whether ``error`` was raised while ``package`` was running (a frame of its traceback is in the package)."""
    modules = (tb.tb_frame.f_globals.get("__name__", "") for tb in _frames(error))
    return any(module == package or module.startswith(package + ".") for module in modules)


def _file_being_read(error: BaseException, suffixes: tuple[str, ...]) -> str | None:
    """The file a library was reading when it failed, found among the local variables of the failing frames (the
    libraries' own messages often do not name it)."""
    for tb in _frames(error):
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, (str, os.PathLike)) and os.fspath(value).lower().endswith(suffixes):
                return os.fspath(value)
    return None


def _error_types(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """Exception classes of an optional, already imported ``module`` (a family whose library is not loaded cannot
    have raised)."""
    loaded = sys.modules.get(module)
    return tuple(getattr(loaded, name) for name in names if loaded is not None and hasattr(loaded, name))


def _safetensors(error: BaseException) -> str | None:
    if type(error).__name__ != "SafetensorError":
        return None
    path = _file_being_read(error, (".safetensors",)) or "a .safetensors file"
    return f"{path}: not a readable safetensors file ({_one_line(error)}): it is truncated or corrupted"


def _unpickling(error: BaseException) -> str | None:
    if not isinstance(error, pickle.UnpicklingError):
        return None
    path = _file_being_read(error, (".bin", ".pt", ".pth", ".pkl", ".ckpt")) or "a weight file"
    return (
        f"{path}: holds a Python pickle that is not plain tensors, and loading it could run code, so it is refused; "
        "save the weights as safetensors (save_pretrained) where the file is trusted"
    )


def _segyio(error: BaseException) -> str | None:
    if not (isinstance(error, (RuntimeError, OSError)) and _raised_in(error, "segyio")):
        return None
    path = _file_being_read(error, (".sgy", ".segy")) or "the SEG-Y file"
    return (
        f"{path}: not readable as SEG-Y ({_one_line(error)}); expected a complete big-endian SEG-Y file (see "
        "--option endian=little for little-endian files, --option ignore_geometry=true for unsorted ones)"
    )


def _datasets(error: BaseException) -> str | None:
    families = _error_types(
        "datasets.exceptions", "DatasetGenerationError", "DataFilesNotFoundError", "DatasetNotFoundError"
    ) + _error_types("datasets.data_files", "EmptyDatasetError")
    if not families or not isinstance(error, families):
        return None
    cause = f" ({_one_line(error.__cause__)})" if error.__cause__ is not None else ""
    return f"cannot read the dataset: {_one_line(error)}{cause}"


def _yaml(error: BaseException) -> str | None:
    families = _error_types("yaml", "YAMLError")
    if not families or not isinstance(error, families):
        return None
    return f"not valid YAML: {_one_line(error)}"


def _pil(error: BaseException) -> str | None:
    families = _error_types("PIL.Image", "DecompressionBombError", "UnidentifiedImageError")
    if not families or not isinstance(error, families):
        return None
    return f"cannot read the picture: {_one_line(error)}"


def _torch_device(error: BaseException) -> str | None:
    if not (isinstance(error, (RuntimeError, AssertionError, TypeError)) and _raised_in(error, "torch")):
        return None
    text = _one_line(error)
    words = ("cuda", "device", "dtype", "scalar type", "half", "bfloat16", "mps")
    if not any(word in text.lower() for word in words):
        return None
    return f"the device or precision asked for is not usable here: {text} (see --device, mixed_precision)"


def _disk_full(error: BaseException) -> str | None:
    if not (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)):
        return None
    where = f" writing {error.filename}" if error.filename else ""
    return f"no space left on the device{where}: free space or choose another output folder"


def _user_error(error: BaseException) -> str | None:
    if not isinstance(error, USER_ERRORS):
        return None
    # KeyError's str() adds quotes around the message.
    return _one_line(error.args[0] if isinstance(error, KeyError) and error.args else error)


@dataclass(frozen=True)
class FailureFamily:
    """A kind of failure that is the input's or the environment's fault, and how to say it in one line.

    Attributes:
        name: what the family is (for the debug log).
        explain: the one-line message for an error of this family, or None if the error is not one.
    """

    name: str
    explain: Callable[[BaseException], str | None]


# In order: the first family that explains an error wins (the specific ones before the catch-all of user errors).
FAILURE_FAMILIES: tuple[FailureFamily, ...] = (
    FailureFamily("safetensors", _safetensors),
    FailureFamily("unpickling", _unpickling),
    FailureFamily("segyio", _segyio),
    FailureFamily("datasets", _datasets),
    FailureFamily("yaml", _yaml),
    FailureFamily("pil", _pil),
    FailureFamily("torch device or dtype", _torch_device),
    FailureFamily("disk full", _disk_full),
    FailureFamily("bad input", _user_error),
)


def explain_failure(error: BaseException) -> str | None:
    """The one-line message for ``error`` if it belongs to a known family, else None (a bug: keep the traceback)."""
    for family in FAILURE_FAMILIES:
        message = family.explain(error)
        if message is not None:
            logger.debug("%s: %s failure", type(error).__name__, family.name)
            return message
    return None


# --- signals and the Hub ----------------------------------------------------------------------------------------


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that cleanups run as for Ctrl-C (a BaseException, like it)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"terminated by signal {signum}")


@contextlib.contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (only the main thread can set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether one TCP connection to the Hub endpoint (``HF_ENDPOINT``) opens within ``timeout`` seconds."""
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def offline_when_hub_unreachable() -> None:
    """Switch the Hub libraries to offline mode (cached files only) when the endpoint cannot be reached.

    Otherwise every look-up retries with back-off for ~25 s before failing; offline, a file missing from the cache
    fails at once with the libraries' offline message. Nothing is probed when ``HF_HUB_OFFLINE`` is already set.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or hub_reachable():
        return
    logger.warning("The Hub (%s) cannot be reached: working offline, from cached files only", constants.ENDPOINT)
    os.environ["HF_HUB_OFFLINE"] = "1"  # read by libraries imported from now on
    constants.HF_HUB_OFFLINE = True  # read at call time by huggingface_hub and transformers
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = True


# --- the boundary ------------------------------------------------------------------------------------------------


def run_reporting_errors(command: str, run: Callable[[], None]) -> int:
    """Run ``run()`` as the ``geofm <command>`` subcommand and return its exit code.

    0 on success; 2 after one line on stderr for a failure of a known family (:data:`FAILURE_FAMILIES`), with the
    traceback before it when debugging; 130 on Ctrl-C and 143 on SIGTERM. Other exceptions propagate.
    """
    try:
        with sigterm_as_exception():
            run()
    except (KeyboardInterrupt, Terminated) as error:
        print(f"geofm {command}: {'terminated' if isinstance(error, Terminated) else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(error, Terminated) else EXIT_INTERRUPTED
    except Exception as error:
        message = explain_failure(error)
        if message is None:
            raise
        if debug_enabled():
            traceback.print_exc()
        print(f"geofm {command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def reports_errors(command: str) -> Callable[[Callable[[argparse.Namespace], None]], Callable[[argparse.Namespace], int]]:
    """Decorate a subcommand's ``run(args)`` with :func:`run_reporting_errors`: it returns the exit code."""

    def decorate(run: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def wrapper(args: argparse.Namespace) -> int:
            offline_when_hub_unreachable()
            return run_reporting_errors(command, lambda: run(args))

        return wrapper

    return decorate


__all__ = [
    "DEBUG_ENV",
    "EXIT_BAD_INPUT",
    "FAILURE_FAMILIES",
    "FailureFamily",
    "Terminated",
    "USER_ERRORS",
    "debug_enabled",
    "explain_failure",
    "hub_reachable",
    "offline_when_hub_unreachable",
    "reports_errors",
    "run_reporting_errors",
    "sigterm_as_exception",
]
