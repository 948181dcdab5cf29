"""Weight files checked when they are used, not only when they are made.

A truncated or overwritten ``model.safetensors`` otherwise surfaces as a Rust deserialisation error deep in a
loader, or, worse, loads and trains at loss NaN. Every loader of geofm_hf (model folders, training checkpoints, the
converted backbone cache) checks its files here first, so a bad file is refused naming the file and how to fix it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from .checks import check_finite_tensor

SAFETENSORS_SUFFIX = ".safetensors"
NON_FINITE_WEIGHTS_HINT = (
    "A model with non-finite weights predicts nothing meaningful: it comes from a diverged training "
    "(retrain with a lower learning_rate) or a damaged file"
)


def sha256_of_file(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_safetensors_file(path: str | os.PathLike, finite: bool = False) -> None:
    """Refuse a safetensors file that is truncated or corrupted (its header does not describe the file) or, with
    ``finite``, holds NaN or Inf in any tensor.

    Args:
        path: the ``.safetensors`` file.
        finite: also read every tensor and check it is finite (reads the whole file).

    Raises:
        ValueError: naming the file (and the tensor).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(os.fspath(path), framework="pt") as handle:
            for name in handle.keys() if finite else ():
                check_finite_tensor(handle.get_tensor(name), f"{path}: tensor {name!r}", NON_FINITE_WEIGHTS_HINT)
    except SafetensorError as error:
        raise ValueError(
            f"{path}: not a readable safetensors file ({error}): it is truncated or corrupted; copy or save it again"
        ) from error


def safetensors_files(folder: str | os.PathLike) -> Iterator[Path]:
    """The ``.safetensors`` files directly inside ``folder`` (shards included), in name order."""
    return iter(sorted(Path(folder).glob(f"*{SAFETENSORS_SUFFIX}")))


def check_weight_folder(folder: str | os.PathLike, finite: bool = False) -> None:
    """Run :func:`check_safetensors_file` on every safetensors file of a model or checkpoint folder."""
    for path in safetensors_files(folder):
        check_safetensors_file(path, finite=finite)


def check_checksums(folder: str | os.PathLike, expected: Mapping[str, str], rebuild: str) -> None:
    """Refuse a folder whose files differ from the sha256 digests recorded when it was made.

    Args:
        folder: the folder holding the files.
        expected: file name (relative to ``folder``) -> hex sha256.
        rebuild: how to make the folder again, ending the message.

    Raises:
        ValueError: a file is missing or its digest differs, naming it.
    """
    for name, digest in expected.items():
        path = Path(folder) / name
        if not path.is_file():
            raise ValueError(f"{path}: missing from {folder}; {rebuild}")
        actual = sha256_of_file(path)
        if actual != digest:
            raise ValueError(
                f"{path}: sha256 is {actual}, not the {digest} recorded when it was written: the file was changed or "
                f"damaged; {rebuild}"
            )


__all__ = [
    "NON_FINITE_WEIGHTS_HINT",
    "SAFETENSORS_SUFFIX",
    "check_checksums",
    "check_safetensors_file",
    "check_weight_folder",
    "safetensors_files",
    "sha256_of_file",
]
