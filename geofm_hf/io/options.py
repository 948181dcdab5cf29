"""Reader options: their parsers, and the command-line flags ``geofm dataset`` and ``geofm predict`` share.

Options reach a reader from the command line as strings (``--shape 300,550``, ``--option patch=512,512``) or from
Python as values of the right type; every parser here accepts both and raises ``ValueError`` naming the option, the
value it got and what it expected. The survey flags (:func:`add_survey_arguments`) mean the same in both commands:

* ``--shape N1,N2[,N3]``: a raw ``.dat`` array, N1 samples per trace (time or depth), N2 traces per section, N3
  sections. A 2-D file is one (N1, N2) section; a 3-D file is a volume of N3 inlines of N2 crosslines.
* ``--order F|C``: which axis varies fastest in the file. ``F`` (default): N1, i.e. every trace is contiguous, the
  convention of Madagascar, the Mines Java Toolkit and Wu et al.'s fault data
  (``np.fromfile(f, ">f4").reshape(n2, n1).T``). ``C``: the last axis (a numpy C-ordered ``(n1, n2)`` image written
  with ``tofile``).
* ``--dtype``: sample type of a raw file (default float32).
* ``--byte-order little|big``: of a raw file (default little) or a SEG-Y file (default big, the standard).
* ``--iline-byte``, ``--xline-byte``: SEG-Y trace-header bytes of the inline and crossline numbers (189, 193).
* ``--option KEY=VALUE``: any other option of the reader (repeatable; dashes in keys read as underscores).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

BYTE_ORDERS = {"little": "<", "big": ">"}
ORDERS = ("F", "C")
# Flags of add_survey_arguments, by the reader keyword they set.
SURVEY_FLAGS = ("shape", "order", "dtype", "byte_order", "iline_byte", "xline_byte")
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


def as_order(name: str, value: Any) -> str:
    """Parse an array order, ``F`` (first axis fastest) or ``C`` (last axis fastest), in either case."""
    return as_choice(name, value, tuple(order.lower() for order in ORDERS)).upper()


def add_survey_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add the survey layout flags and ``--option KEY=VALUE`` (see the module docstring); unset flags are None."""
    parser.add_argument(
        "--shape",
        metavar="N1,N2[,N3]",
        help="raw arrays: N1 samples per trace (time/depth), N2 traces per section, N3 sections",
    )
    parser.add_argument(
        "--order",
        type=str.upper,
        choices=ORDERS,
        help="raw arrays: F = N1 varies fastest (default; Madagascar / Wu et al.: "
        "np.fromfile(f, '>f4').reshape(n2, n1).T), C = the last axis varies fastest",
    )
    parser.add_argument("--dtype", help="raw arrays: sample type (default float32)")
    parser.add_argument(
        "--byte-order", choices=tuple(BYTE_ORDERS), help="raw arrays (default little) and SEG-Y (default big)"
    )
    parser.add_argument("--iline-byte", type=int, help="SEG-Y: trace-header byte of the inline number (default 189)")
    parser.add_argument("--xline-byte", type=int, help="SEG-Y: trace-header byte of the crossline number (default 193)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other reader option, repeatable (e.g. --option patch=512,512 --option axis=inline)",
    )


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """Turn ``["key=value", ...]`` into a dict (dashes in keys become underscores); readers parse the values."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip().replace("-", "_")] = value
    return options


def merge_options(named: Mapping[str, Any], pairs: Sequence[str]) -> dict[str, Any]:
    """Options from named flags (unset ones, None, dropped) and ``--option`` pairs; one given both ways is an error."""
    given = {key: value for key, value in named.items() if value is not None}
    extra = parse_options(pairs)
    twice = sorted(given.keys() & extra.keys())
    if twice:
        raise ValueError(f"Option(s) {', '.join(twice)} given both as a flag and with --option")
    return {**given, **extra}


# Older spellings of survey options, still accepted.
OPTION_ALIASES = {"endian": "byte_order", "iline": "iline_byte", "xline": "xline_byte"}


def canonical_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``options`` with older spellings (:data:`OPTION_ALIASES`) renamed; an option given under both is an error."""
    renamed: dict[str, Any] = {}
    for key, value in options.items():
        name = OPTION_ALIASES.get(key, key)
        if name in renamed:
            raise ValueError(f"{where}: option {name} given twice (as {name} and as its older spelling {key})")
        renamed[name] = value
    return renamed
