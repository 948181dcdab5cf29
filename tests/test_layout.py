"""The package's shape: what ``import geofm_hf`` loads, which layer imports which, and no import cycle."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "geofm_hf"
# Packages that run a workflow; the model layer must never need them.
WORKFLOWS = ("cli", "data", "evaluation", "hub", "inference", "training")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    """Absolute names a ``from ... import ...`` statement imports (a module, or the modules it names)."""
    if node.level == 0:
        base = node.module or ""
    else:
        package = module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in names if _is_module(name)] or [base]


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def module_level_imports(path: Path) -> set[str]:
    """geofm_hf modules imported when ``path`` is imported (statements run at import, not inside functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                break
            if isinstance(child, ast.ImportFrom):
                found.update(resolve(path, child))
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
    return {name for name in found if name.split(".")[0] == "geofm_hf"}


def all_imports(path: Path) -> set[str]:
    """geofm_hf modules named by any import statement of ``path``, deferred ones included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.update(resolve(path, node))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "geofm_hf"}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): module_level_imports(path) for path in PACKAGE.rglob("*.py")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path of module names), or None."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return trail[trail.index(target) :] + [target] if target in trail else [node, target]
            if target not in state and (cycle := visit(target, trail + [target])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    # A package imports its submodules to re-export them; a submodule reaching back to its own package's
    # __init__ is the only thing that could close a loop through that, and is counted like any other edge.
    assert find_cycle(graph) is None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_model_layer_needs_no_workflow():
    offenders = {
        module_name(path): sorted(name for name in all_imports(path) if name.split(".")[1] in WORKFLOWS)
        for path in (PACKAGE / "models").rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_model_layer_files_can_be_copied_flat():
    """transformers' remote-code copier puts a model's modules side by side: their file names must be unique and
    their relative imports name modules (``from .x import y``), never ``from . import x``."""
    files = [path for path in (PACKAGE / "models").rglob("*.py") if path.name != "__init__.py"]
    names = [path.name for path in files]
    assert len(names) == len(set(names))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.module, f"{path}: 'from {'.' * node.level} import ...' cannot be copied flat"


@pytest.mark.slow
def test_import_geofm_hf_loads_only_the_model_layer():
    code = (
        "import sys, geofm_hf\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m == 'segyio' or m.startswith('geofm_hf'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    outside = [name for name in loaded if name != "geofm_hf" and not name.startswith("geofm_hf.models")]
    assert outside == []
    assert "geofm_hf.models.geofm.modeling_geofm" in loaded


def test_shared_fixtures_build_what_they_promise(tiny_model_dir, segy_file, small_volume, dataset_folder):
    import segyio
    from datasets import load_dataset
    from transformers import AutoImageProcessor, AutoModel

    assert type(AutoModel.from_pretrained(tiny_model_dir)).__name__ == "GeoFMForSemanticSegmentation"
    assert type(AutoImageProcessor.from_pretrained(tiny_model_dir)).__name__ == "GeoFMImageProcessor"
    with segyio.open(segy_file) as handle:
        assert list(handle.ilines) == [10, 11, 12, 13, 14, 15]
        assert (segyio.tools.cube(handle) == small_volume).all()
    splits = load_dataset(str(dataset_folder))
    assert sum(len(split) for split in splits.values()) == 20
    assert len(splits["train"][0]["image"]) == 28
