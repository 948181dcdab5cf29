"""The model's code saved next to its weights, so that transformers alone loads the folder (Hub "remote code").

``AutoModel.from_pretrained(folder_or_repo_id, trust_remote_code=True)`` then works where geofm_hf is not installed.
transformers' own copier (``register_for_auto_class``) follows only ``from .x import y`` of sibling files, while the
model layer is a package of folders (``geofm/``, ``geofm_unet/``, ``decoders/``). :func:`save_model_code` copies
every module a model class needs, flat, and rewrites each relative import to its flat sibling; module file names
are unique across the model layer for that (a test checks it). Where geofm_hf is installed, its registered classes
are used and ``trust_remote_code`` is not needed.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# `from .x import y`, `from ..pkg.x import y`, indented (deferred) ones included: transformers' loader fetches every
# module such a line names, so the copy must hold all of them.
RELATIVE_IMPORT = re.compile(r"^(?P<indent>\s*)from (?P<dots>\.+)(?P<module>[\w.]+) import", flags=re.MULTILINE)
MODEL_AUTO_CLASSES = ("AutoModel", "AutoModelForSemanticSegmentation")


def _imported_file(source: Path, dots: str, module: str) -> Path:
    """The file a relative import in ``source`` names (a module, not a package)."""
    folder = source.parent
    for _ in range(len(dots) - 1):
        folder = folder.parent
    return folder.joinpath(*module.split(".")).with_suffix(".py")


def needed_files(entry: Path) -> list[Path]:
    """``entry`` and every module file it imports relatively, recursively (deferred imports included)."""
    found: dict[Path, None] = {}
    pending = [entry.resolve()]
    while pending:
        path = pending.pop()
        if path in found:
            continue
        found[path] = None
        for match in RELATIVE_IMPORT.finditer(path.read_text(encoding="utf-8")):
            imported = _imported_file(path, match["dots"], match["module"])
            if not imported.is_file():
                raise FileNotFoundError(f"{path}: imports {match['dots']}{match['module']}, which is not a module file")
            pending.append(imported.resolve())
    return sorted(found)


def flat_source(path: Path) -> str:
    """The text of ``path`` with each relative import turned into an import of its flat sibling module."""
    return RELATIVE_IMPORT.sub(
        lambda match: f"{match['indent']}from .{match['module'].split('.')[-1]} import", path.read_text(encoding="utf-8")
    )


def class_file(cls: type) -> Path:
    """The module file defining ``cls``."""
    return Path(sys.modules[cls.__module__].__file__)


def _reference(cls: type) -> str:
    return f"{class_file(cls).stem}.{cls.__name__}"


def auto_map(config_class: type, model_class: type, processor_class: type) -> dict[str, str]:
    """The ``auto_map`` of a model's ``config.json``: each Auto class -> ``flat_module.ClassName``.

    The image processor is named here, not in ``preprocessor_config.json`` (see ``GeoFMImageProcessor.to_dict``).
    """
    return {
        "AutoConfig": _reference(config_class),
        **{name: _reference(model_class) for name in MODEL_AUTO_CLASSES},
        "AutoImageProcessor": _reference(processor_class),
    }


def save_model_code(folder: str | os.PathLike, *classes: type) -> list[str]:
    """Write, flat into ``folder``, the modules ``classes`` need; returns the file names written.

    Two modules with the same file name would overwrite each other: refused.
    """
    files: dict[str, Path] = {}
    for cls in classes:
        for path in needed_files(class_file(cls)):
            if files.setdefault(path.name, path) != path:
                raise ValueError(f"Cannot save model code flat: {path} and {files[path.name]} share a file name")
    folder = Path(folder)
    for name, path in files.items():
        (folder / name).write_text(flat_source(path), encoding="utf-8")
    return sorted(files)


__all__ = ["MODEL_AUTO_CLASSES", "auto_map", "flat_source", "needed_files", "save_model_code"]
