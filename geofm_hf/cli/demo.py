"""``geofm demo``: the Gradio page over the model zoo, served from this machine (the same app as the Space)."""

from __future__ import annotations

import argparse

from .errors import reports_errors


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm demo`` to the ``geofm`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="serve the demo page: pick a model, drop a section in, see and download its prediction",
        description=(
            "Serve a Gradio page offering the zoo's models and those named with --model: upload a section (PNG, "
            ".npy, or a SEG-Y survey and the section to take from it) or pick a bundled example, and see the predicted "
            "classes over it, a class probability, the scores against a label, and download the prediction. "
            'Needs the demo extra: pip install "geofm_hf[demo]".'
        ),
    )
    parser.add_argument(
        "--model",
        dest="models",
        action="extend",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="models to offer besides the zoo's: zoo:NAME, a model folder or a Hub id (repeatable)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    parser.set_defaults(func=run_demo)


def _import_demo_app():
    """The demo package; a missing Gradio is a missing extra, said with the command that installs it."""
    try:
        from ..demo import app
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] not in ("gradio", "gradio_client"):
            raise
        raise ImportError(
            f'the demo needs Gradio ({error.name} is not installed): pip install "geofm_hf[demo]"'
        ) from None
    return app


@reports_errors("demo")
def run_demo(args: argparse.Namespace) -> None:
    _import_demo_app().serve(args.models, host=args.host, port=args.port)


__all__ = ["add_parser", "run_demo"]
