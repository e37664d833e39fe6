"""The import graph of the library (``lstm_seq/``), read from the source with ``ast``: every ``import`` and
``from … import`` statement anywhere in a module (inside functions and ``if TYPE_CHECKING:`` blocks too,
relative imports resolved) and ``importlib.import_module("…")`` / ``__import__("…")`` with a literal name.

The layers, bottom to top; a module may import its own layer and those below it, never one above:

1. core: ``lstm_seq/__init__.py`` and the modules directly in ``lstm_seq/`` (the LSTM and its backends,
   ``kernels/``, ``lstm_export``, ``export_files``, ``settings``, ``text``, ``cpus``, ``outputs``, …);
2. ``lstm_seq.metrics``: WER/CER and the caption metrics;
3. ``lstm_seq.training``: fault-tolerant, data-parallel training (Lightning, no model of its own);
4. the domains ``lstm_seq.audio`` and ``lstm_seq.vision``, which do not import each other.

Nothing in ``lstm_seq`` imports ``pipelines`` (the Hydra command lines), ``benchmarks`` or ``tests``, nor
Hydra or OmegaConf; there is no import cycle between modules; and no string in the library's code (docstrings
and comments aside) names a file under ``benchmarks/``.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lstm_seq"

CORE = "core"
# bottom to top; the names in one layer do not import each other
LAYERS: list[tuple[str, ...]] = [
    (CORE,),
    ("lstm_seq.metrics",),
    ("lstm_seq.training",),
    ("lstm_seq.audio", "lstm_seq.vision"),
]
CORE_PACKAGES = ("lstm_seq.kernels",)  # subpackages that belong to the core layer
FORBIDDEN = (
    "pipelines",
    "benchmarks",
    "tests",
    "hydra",
    "omegaconf",
)  # top-level names lstm_seq never imports


@dataclass(frozen=True)
class Import:
    importer: str  # the module that imports
    target: str  # the module imported (a lstm_seq module, or the top-level name of anything else)
    file: str  # the importer's file, relative to the repository
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.target}"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package under ``root``: dotted name → file (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported_names(tree: ast.Module, name: str, is_package: bool) -> list[tuple[str, list[str], int]]:
    """(module, names taken from it, line) of every import in ``tree``, relative ones made absolute."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[str, list[str], int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found.append((base, [alias.name for alias in node.names], node.lineno))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module"))
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.args[0].value, [], node.lineno))
    return found


def imports(root: Path = ROOT) -> list[Import]:
    """Every import of every module of the package under ``root`` (self-imports left out)."""
    mods = modules(root)
    out = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        file = path.relative_to(root).as_posix()
        for module, names, line in _imported_names(tree, name, path.name == "__init__.py"):
            if module.split(".")[0] != PACKAGE:
                out.append(Import(name, module.split(".")[0], file, line))
                continue
            # ``from pkg import sub`` imports the module pkg.sub; ``from mod import obj`` the module mod
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in mods] or [module]
            for target in targets:
                while target not in mods:  # an attribute path: its module
                    target = target.rpartition(".")[0]
                if target != name:
                    out.append(Import(name, target, file, line))
    return out


def layer_of(module: str) -> tuple[int, str]:
    """The layer index (0 = bottom) and the layer entry (``core`` or a subpackage) of a lstm_seq module."""
    top = ".".join(module.split(".")[:2])
    if top == PACKAGE or top in CORE_PACKAGES or top not in _subpackages():  # lstm_seq/*.py: the core
        return 0, CORE
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i, top
    raise LookupError(f"{module}: the subpackage {top} is in no layer; add it to LAYERS in {__file__}")


@functools.cache
def _subpackages(root: Path = ROOT) -> frozenset[str]:
    return frozenset(f"{PACKAGE}.{p.parent.name}" for p in (root / PACKAGE).glob("*/__init__.py"))


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.importer].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    edges = imports()
    assert len(modules()) > 50 and len(edges) > 100  # the walk found the package
    return edges


def test_the_walk_sees_every_kind_of_import() -> None:
    """Relative imports resolved (in a package and in a module), imports inside functions and
    ``TYPE_CHECKING`` blocks, ``import_module`` with a literal name."""
    source = """
from typing import TYPE_CHECKING
from . import sibling
from ..other import thing
if TYPE_CHECKING:
    from lstm_seq.vision.module import CaptionModule
def f():
    import hydra
    from omegaconf import OmegaConf
    importlib.import_module("pipelines.asr")
    return __import__("benchmarks")
"""
    found = _imported_names(ast.parse(source), "lstm_seq.audio.data.io", is_package=False)
    assert [(m, line) for m, _, line in found] == [
        ("typing", 2), ("lstm_seq.audio.data", 3), ("lstm_seq.audio.other", 4),
        ("lstm_seq.vision.module", 6), ("hydra", 8), ("omegaconf", 9), ("pipelines.asr", 10),
        ("benchmarks", 11),
    ]  # fmt: skip
    in_package = _imported_names(ast.parse("from .sub import x"), "lstm_seq.audio", is_package=True)
    assert in_package == [("lstm_seq.audio.sub", ["x"], 1)]


def test_no_import_cycle(graph: list[Import]) -> None:
    internal = [e for e in graph if e.target.startswith(PACKAGE)]
    problems = []
    for component in cycles(internal):
        members = set(component)
        edges = [str(e) for e in internal if e.importer in members and e.target in members]
        problems.append(" <-> ".join(component) + ":\n    " + "\n    ".join(edges))
    assert not problems, "import cycles in lstm_seq:\n" + "\n".join(problems)


def test_no_import_from_a_lower_layer_to_a_higher_one(graph: list[Import]) -> None:
    order = " < ".join(" | ".join(layer) for layer in LAYERS)
    problems = []
    for e in graph:
        if not e.target.startswith(PACKAGE):
            continue
        (low, own), (high, other) = layer_of(e.importer), layer_of(e.target)
        if high > low:
            problems.append(f"{e}: up from {own} to {other}")
        elif high == low and own != other:
            problems.append(f"{e}: across from {own} to {other}, which are independent")
    assert not problems, f"layers ({order}):\n" + "\n".join(problems)


def test_the_library_imports_no_pipelines_benchmarks_tests_hydra_or_omegaconf(graph: list[Import]) -> None:
    bad = [str(e) for e in graph if e.target in FORBIDDEN]
    assert not bad, "\n".join(bad)


def test_no_constant_names_a_file_under_benchmarks() -> None:
    """Paths of benchmark results belong to benchmarks/ or the tests that read them, not to the library."""
    bad = []
    for path in modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "benchmarks/" in node.value
                and id(node) not in docstrings
            ):
                bad.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}: {node.value!r}")
    assert not bad, "\n".join(bad)


def test_every_subpackage_has_a_layer() -> None:
    for module in modules():
        layer_of(module)  # raises for a subpackage that no layer names
