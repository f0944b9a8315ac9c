"""The package's layers import only downward, with no cycle and no peeking into another
stage's private modules; every import statement counts, also one inside a function.

    _errors, _version, _util  <  events  <  rules  <  plan  <  store  <  sending  <
    auditing  <  scale  <  notebook  <  cli, _commands, receiver, sample  <  postback_lab itself
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import postback_lab

PACKAGE = "postback_lab"
ROOT = Path(postback_lab.__file__).parent
LAYERS: list[set[str]] = [
    {"_errors", "_version", "_util"},
    {"events"},
    {"rules"},
    {"plan"},
    {"store"},
    {"sending"},
    {"auditing"},
    {"scale"},
    {"notebook"},
    {"cli", "_commands", "_log_cli", "_hosts_cli", "receiver", "sample"},
    {""},  # the package's own __init__: the public namespace
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports, anywhere in its body: ``from P import x``
    counts as importing ``P.x`` when that is a module, else ``P``."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                for a in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t == PACKAGE or t.startswith(PACKAGE + ".")}
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    """The top-level part a module belongs to (``""`` for the package itself)."""
    return module.split(".")[1] if "." in module else ""


def _private_inside(module: str) -> bool:
    """``module`` is a private module inside a part (``events._read``, ``_util._time``)."""
    return any(p.startswith("_") for p in module.split(".")[2:])


def test_every_part_has_a_layer():
    assert {_part(m) for m in MODULES} <= set(RANK)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_downward_through_public_doors(name):
    here = _part(name)
    wrong = []
    for target in sorted(GRAPH[name]):
        there = _part(target)
        if there == here:
            continue
        if RANK[there] > RANK[here]:
            wrong.append(f"{target} (layer {RANK[there]}, above this one's {RANK[here]})")
        elif _private_inside(target):
            wrong.append(f"{target} (a private module of {there}: use {PACKAGE}.{there})")
    assert wrong == [], f"{name} imports " + "; ".join(wrong)


def test_no_import_cycles():
    seen: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in MODULES:
                continue
            if seen.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for name in sorted(MODULES):
        if name not in seen:
            visit(name, [name])
    assert cycles == []


def test_the_checker_sees_lazy_imports():
    """An import inside a function is an edge like any other."""
    lazy = _imports("postback_lab", ROOT / "__init__.py")
    assert "postback_lab.notebook" in lazy  # explore() imports it when called


@pytest.mark.parametrize(
    "name", sorted(m.name for m in pkgutil.iter_modules(postback_lab.__path__))
)
def test_no_public_name_shadows_a_submodule(name):
    """``import postback_lab.<name>`` gives that module: no function of the public
    namespace has a submodule's name (the stages are ``sending`` and ``auditing``, the
    verbs ``pbl.send`` and ``pbl.audit``)."""
    module = importlib.import_module(f"{PACKAGE}.{name}")
    assert getattr(postback_lab, name, module) is module
    assert name not in postback_lab.__all__


def test_stage_modules_import_as_modules():
    import postback_lab.auditing
    import postback_lab.sending

    assert postback_lab.sending.send is postback_lab.send
    assert postback_lab.auditing.audit is postback_lab.audit
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("postback_lab.send")
