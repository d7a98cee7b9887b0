"""The package's floors (docs/design.md): cli → service → engine, each importing only those below
it, the service only the engine's public surface; the GIMP side never imports the server."""
import ast
from pathlib import Path

import pytest

import nst_server.engine as engine_package

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "nst_server"


def imports_of(path: Path) -> set[str]:
    """The absolute module names `path` imports (relative imports resolved)."""
    return imports_in(path.read_text(), ".".join(path.relative_to(ROOT).parts[:-1]))


def imports_in(source: str, package: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def floor_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0] if len(path.relative_to(PACKAGE).parts) > 1 else ""


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_floor_above_its_own(path):
    floor = floor_of(path)
    imported = {name for name in imports_of(path) if name.startswith("nst_server.")}
    above = {"engine": ("nst_server.service", "nst_server.cli"), "service": ("nst_server.cli",),
             "": ("nst_server.engine", "nst_server.service", "nst_server.cli")}.get(floor, ())
    assert not [name for name in imported if name.startswith(above)]
    if floor == "service":  # the engine's public surface only: nst_server.engine and its names
        inner = {name for name in imported if name.startswith("nst_server.engine.")}
        exported = {f"nst_server.engine.{name}" for name in engine_package.__all__}
        assert inner <= exported


def test_the_gimp_side_never_imports_the_server():
    for path in (ROOT / "gimp_plugin").rglob("*.py"):
        assert not [name for name in imports_of(path) if name.split(".")[0] in ("nst_server", "torch")]


def test_the_checker_sees_a_forbidden_import():
    """The rules above can fail: relative imports up a floor are resolved, as absolute ones."""
    assert "nst_server.service.server" in imports_in("from ..service import server\n",
                                                     "nst_server.engine")
    assert "nst_server.engine.vgg" in imports_in("from ..engine.vgg import load_vgg19\n",
                                                 "nst_server.service")
