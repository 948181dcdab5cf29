"""Conversion of reader options.

Options reach a reader from the command line as strings (``--option patch=512,512``) or from Python as values of
the right type; every parser here accepts both and raises ``ValueError`` naming the option, the value it got and what
it expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BYTE_ORDERS = {"little": "<", "big": ">"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _fail(name: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"Option {name}={value!r}: expected {expected}")


def _items(value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, Sequence):
        return [str(item) for item in value]
    return [str(value)]


def as_int(name: str, value: Any, minimum: int | None = None) -> int:
    """Parse an integer option, optionally bounded below."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _fail(name, value, "an integer") from None
    if minimum is not None and number < minimum:
        raise _fail(name, value, f"an integer >= {minimum}")
    return number


def as_float(name: str, value: Any) -> float:
    """Parse a finite float option."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise _fail(name, value, "a number") from None
    if not np.isfinite(number):
        raise _fail(name, value, "a finite number")
    return number


def as_ints(name: str, value: Any, lengths: tuple[int, ...], minimum: int = 1) -> tuple[int, ...]:
    """Parse a comma-separated list of integers whose length is one of ``lengths``.

    A single value stands for all entries when ``lengths`` has one length only, so ``patch=256`` means ``256,256``.
    """
    items = _items(value)
    if len(items) == 1 and len(lengths) == 1:
        items = items * lengths[0]
    expected = f"{' or '.join(str(n) for n in lengths)} comma-separated integers >= {minimum}"
    try:
        parsed = tuple(int(item) for item in items)
    except ValueError:
        raise _fail(name, value, expected) from None
    if len(parsed) not in lengths or min(parsed) < minimum:
        raise _fail(name, value, expected)
    return parsed


def as_floats(name: str, value: Any) -> tuple[float, ...]:
    """Parse a comma-separated list of numbers (possibly empty)."""
    return tuple(as_float(name, item) for item in _items(value))


def as_bool(name: str, value: Any) -> bool:
    """Parse ``true/false/1/0/yes/no``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise _fail(name, value, "true or false")


def as_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Parse one of ``choices`` (case-insensitive)."""
    text = str(value).strip().lower()
    if text not in choices:
        raise _fail(name, value, "one of " + ", ".join(choices))
    return text


def as_label_map(name: str, value: Any) -> dict[int, int]:
    """Parse ``src:dst,src:dst`` (e.g. ``label_map=0:0,1:1,6:5,7:5``) into a class-id mapping."""
    if isinstance(value, dict):
        return {as_int(name, k, 0): as_int(name, v, 0) for k, v in value.items()}
    mapping: dict[int, int] = {}
    for item in _items(value):
        source, sep, target = item.partition(":")
        if not sep:
            raise _fail(name, value, "comma-separated pairs source_id:target_id")
        mapping[as_int(name, source, 0)] = as_int(name, target, 0)
    if not mapping:
        raise _fail(name, value, "at least one pair source_id:target_id")
    return mapping


def as_dtype(name: str, value: Any, byte_order: str) -> np.dtype:
    """Parse a numeric dtype name (``float32``, ``int8``, ...) stored with ``byte_order`` (``little``/``big``)."""
    try:
        dtype = np.dtype(str(value).strip())
    except TypeError:
        raise _fail(name, value, "a numpy dtype name such as float32, int16, uint8") from None
    if dtype.kind not in "biuf":
        raise _fail(name, value, "a numeric dtype (bool, int, uint or float)")
    return dtype.newbyteorder(BYTE_ORDERS[byte_order])
