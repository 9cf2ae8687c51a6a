"""The import graph of the package is a clean stack (docs/architecture.md).

* ``cohortrec.ops`` is the single door to native code: no other module
  imports ``cohortrec._core`` or ``cohortrec._cuda``;
* modules import each other only downwards through the floors (kernels ->
  ops -> estimators -> discovery -> report/CLI/serve), with no cycles;
* nothing inside the package imports the package root (``import cohortrec``
  or ``from cohortrec import X`` for a name defined in ``__init__``);
* no module imports a private module of another subpackage (``ops._x``
  from outside ``ops``).

The graph is read from the source with :mod:`ast`, so the checks see every
import, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cohortrec

PKG = Path(cohortrec.__file__).parent

# floor of each top-level module or subpackage (higher floors may import lower ones)
FLOORS = {
    "_validation": 0, "_version": 0, "_errors": 0, "_io": 0, "_progress": 0,
    "ops": 1,
    "interactions": 2, "preprocessing": 2, "datasets": 2,
    "cluster": 3, "encoders": 3, "recommenders": 3, "evaluation": 3, "privacy": 3,
    "distributed": 4, "discovery": 4, "distributed_discovery": 4, "trust": 4,
    "report": 5,
    "cli": 6, "serve": 6, "__main__": 7, "__init__": 7,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every cohortrec import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(n) for n in tree.body}
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "cohortrec" or name.startswith("cohortrec."):
                out.append((name, node.lineno, id(node) in top))
    return out


def _files() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py"))


def _floor(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return FLOORS["__init__"]
    return FLOORS.get(parts[1])


def test_only_ops_imports_native_modules():
    offenders = []
    for path in _files():
        mod = _module_name(path)
        if mod == "cohortrec.ops" or mod.startswith("cohortrec.ops."):
            continue
        for name, line, _ in _imports(path):
            if name in ("cohortrec._core", "cohortrec._cuda") or name.startswith(("cohortrec._core.",
                                                                                  "cohortrec._cuda.")):
                offenders.append(f"{path.relative_to(PKG)}:{line} imports {name}")
    assert not offenders, "only cohortrec.ops may import the native modules:\n" + "\n".join(offenders)


def test_no_upward_imports():
    offenders = []
    for path in _files():
        mod = _module_name(path)
        mine = _floor(mod)
        if mine is None:
            pytest.fail(f"{mod} has no floor in FLOORS: add it (and to docs/architecture.md)")
        for name, line, _ in _imports(path):
            theirs = _floor(name)
            if name == "cohortrec" or theirs is None:
                continue
            if theirs > mine and not name.startswith(mod):
                offenders.append(f"{path.relative_to(PKG)}:{line} (floor {mine}) imports {name} (floor {theirs})")
    assert not offenders, "imports must go down the floors:\n" + "\n".join(offenders)


def test_no_package_root_imports_inside_the_package():
    offenders = []
    init_names = set(cohortrec.__all__) | {"__version__"}
    for path in _files():
        if path == PKG / "__init__.py" or path == PKG / "__main__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "cohortrec" for a in node.names):
                offenders.append(f"{path.relative_to(PKG)}:{node.lineno} import cohortrec")
            if isinstance(node, ast.ImportFrom) and node.module == "cohortrec":
                for a in node.names:
                    if a.name in init_names and a.name not in cohortrec._SUBMODULES | {"ops"}:
                        offenders.append(f"{path.relative_to(PKG)}:{node.lineno} from cohortrec import {a.name}")
    assert not offenders, "import from the defining module instead of the package root:\n" + "\n".join(offenders)


def test_no_private_imports_across_subpackages():
    offenders = []
    for path in _files():
        mod = _module_name(path)
        for name, line, _ in _imports(path):
            parts = name.split(".")
            # cohortrec.<sub>._private from outside cohortrec.<sub>
            private = len(parts) >= 3 and parts[2].startswith("_") and not parts[2].startswith("__")
            if private and not parts[1].startswith("_") and not mod.startswith(".".join(parts[:2])):
                offenders.append(f"{path.relative_to(PKG)}:{line} imports {name}")
    assert not offenders, "use the subpackage's public names:\n" + "\n".join(offenders)


def test_no_import_cycles_at_module_level():
    graph: dict[str, set[str]] = {}
    known = {_module_name(p) for p in _files()}
    for path in _files():
        mod = _module_name(path)
        deps = set()
        for name, _, top in _imports(path):
            if not top:
                continue
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != mod:
                deps.add(name)
        graph[mod] = deps

    def is_parent_package(a: str, b: str) -> bool:  # importing a submodule runs its package first
        return b.startswith(a + ".") or a.startswith(b + ".")

    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if is_parent_package(node, dep):
                continue
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]) if dep in stack else f"{node}->{dep}")
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "module-level import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", ["_core", "_cuda"])
def test_native_stubs_list_every_function(module):
    import importlib

    try:
        native = importlib.import_module(f"cohortrec.{module}")
    except ImportError:
        pytest.skip(f"cohortrec.{module} is not built")
    stub = ast.parse((PKG / f"{module}.pyi").read_text())
    in_stub = {n.name for n in stub.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    in_stub |= {t.id for n in stub.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    public = {n for n in dir(native) if not n.startswith("__")}
    missing = public - in_stub
    assert not missing, f"regenerate python/cohortrec/{module}.pyi (see its header): missing {sorted(missing)}"
