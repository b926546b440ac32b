"""Dependencies run one way (STYLE.md, "Layers run one way"):

    asksage_admin/lib (0) → accounts, audit (1) → tokens (2) → analytics (3)

and asksage_admin's own modules (settings, urls, asgi, wsgi) at the top. Every module of the
apps (migrations and management commands too) is read as source, not imported, and each of its
imports, at the top or inside a function, is checked:

- no import from a higher layer;
- no cycle between the apps of one layer (accounts may use audit, then audit never uses
  accounts);
- no import of a project module inside a function: that is how a cycle is dodged, and the
  cure is to move the code. The one exception is Django's idiom of connecting signal
  receivers in `AppConfig.ready()`.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"asksage_admin.lib": 0, "accounts": 1, "audit": 1, "tokens": 2, "analytics": 3}
TOP = 99  # asksage_admin.settings, .urls, .asgi, .wsgi: they wire everything together
WALKED = ["asksage_admin/lib", "accounts", "audit", "tokens", "analytics"]

# Function-level imports that are Django idioms rather than dodges: (module, imported module).
FUNCTION_LEVEL_ALLOWED = {
    ("accounts.apps", "accounts.signals"),  # AppConfig.ready() connects the signal receivers
    ("tokens.apps", "tokens.queue_health"),  # AppConfig.ready() registers the queue's checks
    ("tokens.apps", "tokens.signals"),  # AppConfig.ready() connects the ban's receiver
}

# Upward imports still to remove, as (importing module, imported module). Keep it empty: the
# test fails on any upward edge not listed, and on a listed one that no longer exists.
UPWARD_ALLOWED: set[tuple[str, str]] = set()


def _unit(module: str) -> str:
    """The layered unit a dotted module belongs to (an app, `asksage_admin.lib`, or the top)."""
    if module == "asksage_admin.lib" or module.startswith("asksage_admin.lib."):
        return "asksage_admin.lib"
    head = module.split(".", 1)[0]
    if head == "asksage_admin":
        return "asksage_admin"
    return head


def _layer(unit: str) -> int | None:
    if unit == "asksage_admin":
        return TOP
    return LAYERS.get(unit)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str = "") -> list[tuple[str, bool, int]]:
    """(imported module, inside a function?, line) for every import of a project module."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports the submodule when there is one.
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    target = candidate if _is_project_module(candidate) else base
                    found.append((target, in_function, child.lineno))
            visit(child, nested)

    visit(tree, False)
    return [(name, fn, line) for name, fn, line in found if _layer(_unit(name)) is not None]


def _is_project_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _modules() -> list[Path]:
    return sorted(p for top in WALKED for p in (ROOT / top).rglob("*.py"))


def _edges() -> list[tuple[str, str, bool, int]]:
    """(importing module, imported module, inside a function?, line), project imports only."""
    return [
        (_module_name(path), target, in_function, line)
        for path in _modules()
        for target, in_function, line in _imports(path)
    ]


def test_every_layer_is_walked():
    walked = {_unit(_module_name(path)) for path in _modules()}
    assert walked == set(LAYERS)


def test_no_module_imports_from_a_layer_above_it():
    upward = set()
    for importer, imported, _, _ in _edges():
        if _layer(_unit(imported)) > _layer(_unit(importer)):
            upward.add((importer, imported))
    unexpected = sorted(upward - UPWARD_ALLOWED)
    assert not unexpected, "Upward imports (move the code down, or the importer up):\n" + "\n".join(
        f"  {a} ({_unit(a)}, layer {_layer(_unit(a))}) imports {b} ({_unit(b)}, layer "
        f"{_layer(_unit(b))})"
        for a, b in unexpected
    )
    assert not UPWARD_ALLOWED - upward, "Allowed upward imports that are gone: shrink the list"


def test_the_apps_of_one_layer_do_not_import_each_other_in_a_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, imported, _, _ in _edges():
        a, b = _unit(importer), _unit(imported)
        if a != b and _layer(a) == _layer(b):
            graph[a].add(b)
    cycles = sorted((a, b) for a in graph for b in graph[a] if a in _reachable(graph, b))
    assert not cycles, f"Apps of one layer importing each other: {cycles}"


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_no_project_module_is_imported_inside_a_function():
    allowed = FUNCTION_LEVEL_ALLOWED
    found = {(a, b) for a, b, in_function, _ in _edges() if in_function}
    inside = sorted(
        f"  {importer}:{line} imports {imported}"
        for importer, imported, in_function, line in _edges()
        if in_function and (importer, imported) not in allowed
    )
    assert not allowed - found, "Allowed function-level imports that are gone: shrink the list"
    assert not inside, "Imports inside functions (move the code, not the import):\n" + "\n".join(
        inside
    )


def test_the_walker_sees_an_upward_import_at_the_top_and_inside_a_function(tmp_path):
    """The checks above are only as good as the walker: it must see both kinds of import."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from tokens.models import Purchase\n\n\ndef f():\n    from analytics import views\n"
    )
    edges = {(imported, fn) for imported, fn, _ in _imports(source, "accounts.probe")}
    assert edges == {("tokens.models", False), ("analytics.views", True)}
