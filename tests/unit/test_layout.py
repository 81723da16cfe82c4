"""A house a newcomer can read: no import circle between perfsuite's modules (imports inside functions count
too), and no module reaches into another's private names (`from perfsuite.x import _y`, `x._y`)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

PKG = Path(__file__).resolve().parents[2] / "perfsuite"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports() -> Tuple[Dict[str, Set[str]], List[str]]:
    """module -> perfsuite modules it imports (anywhere in the file); and every private name taken from another."""
    mods = _modules()
    graph: Dict[str, Set[str]] = {m: set() for m in mods}
    private: List[str] = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        is_pkg = path.name == "__init__.py"
        aliases: Dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("perfsuite"):
                        target = a.name if a.name in mods else a.name.rsplit(".", 1)[0]
                        graph[mod].add(target)
                        aliases[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom):
                src = _resolve(mod, node, is_pkg)
                if not src.startswith("perfsuite"):
                    continue
                for a in node.names:
                    sub = f"{src}.{a.name}"
                    if sub in mods:  # from perfsuite import gate
                        graph[mod].add(sub)
                        aliases[a.asname or a.name] = sub
                    else:
                        graph[mod].add(src)
                        if a.name.startswith("_") and not a.name.startswith("__") and src != mod:
                            private.append(f"{mod}: from {src} import {a.name}")
        for node in ast.walk(tree):  # module._private attribute access through an imported perfsuite module
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and node.value.id in aliases:
                private.append(f"{mod}: {aliases[node.value.id]}.{node.attr}")
    for m in graph:
        graph[m].discard(m)
        graph[m] = {t for t in graph[m] if t in mods and not m.startswith(t + ".") and t != "perfsuite"}
    return graph, sorted(set(private))


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_between_perfsuites_modules():
    graph, _ = imports()
    assert cycles(graph) == []


def test_no_private_name_imported_from_another_module():
    _, private = imports()
    assert private == []


def test_the_checks_see_a_circle_and_a_private_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_one_copy_of_the_small_text_helpers():
    """one_line and clock exist once (errors.py, tables.py); gate, run and worker use them."""
    from perfsuite.errors import one_line
    from perfsuite.tables import clock

    assert one_line(RuntimeError("Traceback\n\n  frame\nMXNetError: bad shape")) == "RuntimeError: MXNetError: bad shape"
    assert one_line(RuntimeError("a\nb\nc\nd"), lines=3) == "RuntimeError: b | c | d"
    assert len(one_line(ValueError("x" * 900), limit=800)) == 800 and one_line(KeyError()) == "KeyError: "
    assert clock(0) == "0:00" and clock(59.6) == "1:00" and clock(754) == "12:34" and clock(-3) == "0:00"
    for name in ("gate/gate.py", "run.py", "gate/worker.py"):
        text = (Path(__file__).resolve().parents[2] / "perfsuite" / name).read_text()
        assert "def _clock" not in text and "lines = [ln for ln in str(exc)" not in text, name


#: Modules allowed over the 600-line limit (none may grow): none left.
OVERSIZE_MODULES: Dict[str, int] = {}


def test_no_function_over_80_lines_and_no_module_over_600():
    """Rooms a newcomer can read: every function fits on a screen (80 lines), every module under 600 lines except
    the listed ones, which must not grow."""
    import ast

    root = Path(__file__).resolve().parents[2] / "perfsuite"
    long_functions, big_modules = [], []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        lines = text.count("\n")
        if lines > OVERSIZE_MODULES.get(rel, 600):
            big_modules.append(f"{rel} ({lines} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long_functions.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    assert not long_functions, long_functions
    assert not big_modules, big_modules


#: Libraries whose import is heavy or optional: a perfsuite module that imports one at its top is heavy itself, and
#: so is every module that imports a heavy one at its top. Only imports of heavy modules may sit inside functions.
HEAVY_LIBRARIES = ("mxnet", "gluonnlp", "onnx", "onnxruntime", "matplotlib")


def _top_level_imports(tree: ast.Module) -> List[ast.stmt]:
    """Import statements that run when the module is imported: at its top, including under if/try."""
    out: List[ast.stmt] = []
    stack: List[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            stack += node.body + node.orelse + getattr(node, "finalbody", []) \
                + [s for h in getattr(node, "handlers", []) for s in h.body]
    return out


def _imported_names(node: ast.stmt, mod: str, is_pkg: bool, mods: Dict[str, Path]) -> List[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    src = _resolve(mod, node, is_pkg)
    subs = [f"{src}.{a.name}" for a in node.names if f"{src}.{a.name}" in mods]
    return subs or [src]


def lazy_imports() -> Tuple[Set[str], List[str]]:
    """The heavy modules, and every import of a light perfsuite module inside a function ("module:line name")."""
    mods = _modules()
    trees = {m: ast.parse(p.read_text(), str(p)) for m, p in mods.items()}
    top: Dict[str, Set[str]] = {}
    heavy: Set[str] = set()
    for m, tree in trees.items():
        names = [n for node in _top_level_imports(tree)
                 for n in _imported_names(node, m, mods[m].name == "__init__.py", mods)]
        if any(n.split(".")[0] in HEAVY_LIBRARIES for n in names):
            heavy.add(m)
        top[m] = {n for n in names if n in mods}
    changed = True
    while changed:
        changed = False
        for m, deps in top.items():
            if m not in heavy and deps & heavy:
                heavy.add(m)
                changed = True
    lazy: List[str] = []
    for m, tree in trees.items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for n in _imported_names(node, m, mods[m].name == "__init__.py", mods):
                        if n.startswith("perfsuite") and n in mods and n not in heavy and n != m:
                            lazy.append(f"{m}:{node.lineno} {n}")
    return heavy, sorted(set(lazy))


def test_perfsuites_own_light_modules_are_imported_at_the_top():
    """An import of perfsuite's own module inside a function hides a dependency; it is kept only where the module
    imports MXNet, GluonNLP, ONNX (Runtime) or matplotlib when loaded, so that `perfsuite --help`, the gate's
    driver and the report stay free of them."""
    heavy, lazy = lazy_imports()
    assert "perfsuite.models" in heavy and "perfsuite.errors" not in heavy
    assert lazy == [], "\n".join(lazy)
