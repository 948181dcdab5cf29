"""What an evaluation writes: the results JSON and the names of its files.

An evaluation folder (``geofm evaluate --output DIR``, or ``test/`` in a training run's folder) holds::

    eval_results.json        the dict returned by `geofm_hf.evaluation.evaluate_model` (strict JSON: NaN as null)
    confusion_matrix.png     the split's confusion matrix
    example_<row>.png        example sections: label, prediction and errors
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..io.atomic import write_atomically

EVAL_RESULTS_FILE = "eval_results.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
EXAMPLE_FILE = "example_{row:05d}.png"


def example_file(row: int) -> str:
    """File name of the example picture of dataset row ``row``."""
    return EXAMPLE_FILE.format(row=row)


def _json_ready(value: Any) -> Any:
    """``value`` with NaN/Inf floats as None: strict JSON has no NaN (a class absent from the split has NaN scores)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def write_results_json(results: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write evaluation results as indented strict JSON (NaN scores become ``null``), atomically."""
    text = json.dumps(_json_ready(results), indent=2, allow_nan=False) + "\n"
    return write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


__all__ = ["CONFUSION_MATRIX_FILE", "EVAL_RESULTS_FILE", "EXAMPLE_FILE", "example_file", "write_results_json"]
