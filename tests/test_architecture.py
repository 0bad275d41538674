"""The package's structure as tested contracts (``docs/architecture.md``).

- the import contract in ``pyproject.toml`` (``[tool.importlinter]``: the layer order and a
  torch-free spec layer) holds, and it does catch an upward import made inside a function;
- no import cycle among the package's modules, imports inside functions included (only
  ``if TYPE_CHECKING:`` blocks are exempt);
- no two exception classes share a name, so catching one never misses its namesake.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import grimp

import resnetv2
import resnetv2.errors

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "resnetv2"


def _lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the contracts in ``cwd/pyproject.toml``, for the package in ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_contract_is_kept():
    result = _lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_contract_catches_an_upward_import_inside_a_function(tmp_path):
    """The contract is only worth its green tick if it can turn red: a copy of the package
    whose spec layer imports the PyTorch model inside a function breaks both contracts."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "src" / PACKAGE,
        tmp_path / "src" / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    spec = tmp_path / "src" / PACKAGE / "spec.py"
    spec.write_text(
        spec.read_text(encoding="utf-8")
        + "\n\ndef _upward():\n    from resnetv2.nn.model import ResNetV2\n\n    return ResNetV2\n",
        encoding="utf-8",
    )
    result = _lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    assert "2 broken" in result.stdout
    assert "resnetv2.spec -> resnetv2.nn.model" in result.stdout


def import_graph() -> grimp.ImportGraph:
    """Every import between the package's modules, those inside functions included."""
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(root: str) -> None:
        # Iterative, so a long import chain cannot hit the recursion limit.
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycles():
    assert import_cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    """``import_cycles`` reports a cycle made by one added import (here: the preprocessing
    description importing the model, which reads it)."""
    graph = import_graph()
    graph.add_import(importer="resnetv2.preprocessing_spec", imported="resnetv2.nn.model")
    cycles = import_cycles(graph)
    assert len(cycles) == 1
    assert {"resnetv2.preprocessing_spec", "resnetv2.nn.model"} <= set(cycles[0])


def package_modules() -> list[ModuleType]:
    """Every module of the package, imported (``__main__`` would run the CLI: left out)."""
    modules = [resnetv2]
    for info in pkgutil.walk_packages(resnetv2.__path__, prefix=f"{PACKAGE}."):
        if info.name == f"{PACKAGE}.__main__":
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # only the optional Keras twin may be missing
            if not info.name.startswith(f"{PACKAGE}.keras"):
                raise
    return modules


def exception_classes(modules: list[ModuleType]) -> dict[str, set[str]]:
    """Exception class name → the qualified names of the distinct classes found with it."""
    found: dict[str, set[str]] = {}
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith(PACKAGE):
                found.setdefault(obj.__name__, set()).add(f"{obj.__module__}.{obj.__qualname__}")
    return found


def test_no_two_exception_classes_share_a_name():
    shared = {k: v for k, v in exception_classes(package_modules()).items() if len(v) > 1}
    assert shared == {}


def test_the_exception_name_check_finds_a_duplicate():
    """Two modules that each define a ``DataError`` are reported."""
    other = ModuleType("resnetv2_namesake")
    other.DataError = type("DataError", (ValueError,), {"__module__": other.__name__})
    found = exception_classes([resnetv2.errors, other])
    assert found["DataError"] == {"resnetv2.errors.DataError", "resnetv2_namesake.DataError"}
