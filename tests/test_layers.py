"""The package's layers import only downward, with no cycle and no peeking into another
stage's private modules; every import statement counts, also one inside a function.

    _errors, _version, _util  <  events  <  rules  <  plan  <  store  <  sending  <
    auditing  <  scale  <  notebook  <  cli, receiver, sample  <  postback_lab itself

Hidden edges count too: ``importlib.import_module("postback_lab.x")`` is an import, one
whose module is not written out is allowed only in the lazy loader (``_util._lazy``), and
a module may not change another part when imported (a registry written into at import
time).
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
    {"cli", "receiver", "sample"},
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


def _resolve(name: str, is_pkg: bool, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module>`` written in module ``name``."""
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    base = base[: len(base) - level + 1]
    return ".".join([*base, *([module] if module else [])])


def _string_import(node: ast.Call) -> ast.expr | None:
    """The module argument of ``importlib.import_module(...)`` or ``__import__(...)``."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called in ("import_module", "__import__") and node.args:
        return node.args[0]
    return None


def _imports(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports, anywhere in its body: ``from P import x``
    counts as importing ``P.x`` when that is a module, else ``P``; so does
    ``importlib.import_module("P")`` (or ``".P"``) with the name written out."""
    return _scan(name, path)[0]


def _scan(name: str, path: Path) -> tuple[set[str], list[str]]:
    """(modules imported, dynamic imports): see ``_imports``; an ``import_module`` or
    ``__import__`` whose module is not written out is listed as dynamic."""
    is_pkg = path.name == "__init__.py"
    found, dynamic = set(), []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = (
                _resolve(name, is_pkg, node.level, node.module) if node.level else node.module or ""
            )
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                for a in node.names
            ]
        elif isinstance(node, ast.Call) and (arg := _string_import(node)) is not None:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                text = arg.value
                dots = len(text) - len(text.lstrip("."))
                targets = [_resolve(name, is_pkg, dots, text[dots:] or None) if dots else text]
            else:
                dynamic.append(f"line {node.lineno}: {ast.unparse(node)}")
                continue
        else:
            continue
        found |= {t for t in targets if t == PACKAGE or t.startswith(PACKAGE + ".")}
    return found, dynamic


#: namespaces whose public names load on first use (PEP 562), each from a ``_LAZY`` table
#: of its own submodules, through the one module allowed a dynamic import
LAZY_NAMESPACES = {PACKAGE, f"{PACKAGE}._util", f"{PACKAGE}.auditing"}
LAZY_LOADER = f"{PACKAGE}._util._lazy"


def _imported_names(name: str, tree: ast.Module, is_pkg: bool) -> dict[str, str]:
    """Name bound at module level -> the package module it was imported from."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = (
                _resolve(name, is_pkg, node.level, node.module) if node.level else node.module or ""
            )
            for a in node.names:
                sub = f"{module}.{a.name}"
                names[a.asname or a.name] = sub if sub in MODULES else module
        elif isinstance(node, ast.Import):
            for a in node.names:
                names[(a.asname or a.name).split(".")[0]] = a.name
    return {k: v for k, v in names.items() if v == PACKAGE or v.startswith(PACKAGE + ".")}


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _registrations(name: str, path: Path) -> list[str]:
    """Module-level statements that change another part of the package when this module is
    imported: an assignment into a name imported from another part (``LOG_SCHEMES[k] =
    f``, ``store.X = y``) or a bare call of one (``register_test_fire(f)``,
    ``REGISTRY.update(...)``). Such a side effect is an upward dependency the import graph
    does not show."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _part(name)
    imported = _imported_names(name, tree, path.name == "__init__.py")
    found = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            roots = [_root_name(t) for t in targets if not isinstance(t, ast.Name)]
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            roots = [_root_name(node.value.func)]
        else:
            continue
        for root in roots:
            origin = imported.get(root or "")
            if origin is not None and _part(origin) != here:
                found.append(f"line {node.lineno}: {ast.unparse(node)} (changes {origin})")
    return found


def _violations(name: str, path: Path) -> list[str]:
    """Everything the layer rules forbid in module ``name``: upward or private imports,
    dynamic imports outside the lazy loader, and registrations into another part."""
    here = _part(name)
    imported, dynamic = _scan(name, path)
    wrong = []
    for target in sorted(imported):
        there = _part(target)
        if there == here:
            continue
        if RANK[there] > RANK[here]:
            wrong.append(f"{target} (layer {RANK[there]}, above this one's {RANK[here]})")
        elif _private_inside(target):
            wrong.append(f"{target} (a private module of {there}: use {PACKAGE}.{there})")
    if name != LAZY_LOADER:
        wrong += [f"{d} (a dynamic import the layer check cannot follow)" for d in dynamic]
    wrong += _registrations(name, path)
    return wrong


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    """The top-level part a module belongs to (``""`` for the package itself)."""
    return module.split(".")[1] if "." in module else ""


def _private_inside(module: str) -> bool:
    """``module`` is a private module inside a part (``events._read``, ``_util._time``)."""
    return any(p.startswith("_") for p in module.split(".")[2:])


def test_every_part_has_a_layer():
    assert {_part(m) for m in MODULES} <= set(RANK)


#: known registrations, to be removed (not added to): sending registers the test-fire
#: into rules (Rule.test becomes a sending function)
KNOWN = {"postback_lab.sending": 1}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_downward_through_public_doors(name):
    wrong = _violations(name, MODULES[name])
    if name in KNOWN and len(wrong) <= KNOWN[name] and all("(changes " in w for w in wrong):
        return
    assert wrong == [], f"{name} imports " + "; ".join(wrong)


def test_the_checker_catches_planted_violations(tmp_path):
    """A module low in the stack (``events``) that reaches up in each hidden way."""
    planted = tmp_path / "_planted.py"
    planted.write_text(
        "import importlib\n"
        "from ..store import LOG_COLUMNS, open_log\n"
        "from .. import auditing\n"
        "from ..rules._model import Rule\n"
        "open_log.cache = {}\n"
        "LOG_COLUMNS['x'] = 1\n"
        "auditing.register(print)\n"
        "def later(name):\n"
        "    importlib.import_module('postback_lab.sending')\n"
        "    importlib.import_module('..cli', __package__)\n"
        "    return importlib.import_module(name)\n",
        encoding="utf-8",
    )
    wrong = _violations("postback_lab.events._planted", planted)
    assert wrong == [
        "postback_lab.auditing (layer 6, above this one's 1)",
        "postback_lab.cli (layer 9, above this one's 1)",
        "postback_lab.rules._model (layer 2, above this one's 1)",
        "postback_lab.sending (layer 5, above this one's 1)",
        "postback_lab.store (layer 4, above this one's 1)",
        "line 11: importlib.import_module(name) (a dynamic import the layer check cannot follow)",
        "line 5: open_log.cache = {} (changes postback_lab.store)",
        "line 6: LOG_COLUMNS['x'] = 1 (changes postback_lab.store)",
        "line 7: auditing.register(print) (changes postback_lab.auditing)",
    ]
    # higher up, only what is still wrong there: a private module, the dynamic import and
    # the writes into another part
    assert _violations("postback_lab.notebook._planted", planted) == [
        "postback_lab.cli (layer 9, above this one's 8)",
        "postback_lab.rules._model (a private module of rules: use postback_lab.rules)",
        *wrong[-4:],
    ]


def _layers_shown(text: str) -> list[set[str]]:
    """The layers a text draws as ``a, b < c < ...`` (over one or more lines, each but
    the last ending in ``<``), up to the package itself."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "_util" in line and "<" in line)
    chain = [lines[start]]
    while chain[-1].rstrip().endswith("<"):
        chain.append(lines[start + len(chain)])
    parts = " ".join(chain).split("<")
    shown = [{n.strip(" `") for n in part.split(",")} for part in parts]
    return [names for names in shown if not any(n.startswith(PACKAGE) for n in names)]


@pytest.mark.parametrize(
    "where", ["README.md", "docs/api.md", "postback_lab/__init__.py", "tests/test_layers.py"]
)
def test_the_docs_draw_these_layers(where):
    """README's Layout, the API reference, the package docstring and this file's docstring
    show the layers in the order checked here."""
    text = (ROOT.parent / where).read_text(encoding="utf-8")
    assert _layers_shown(text) == LAYERS[:-1]


def test_lazy_namespaces_load_only_their_own_submodules():
    for name in LAZY_NAMESPACES:
        module = importlib.import_module(name)
        for part in set(module._LAZY.values()):
            assert f"{name}.{part}" in MODULES, (name, part)
        assert set(module._LAZY) <= set(module.__all__)


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
