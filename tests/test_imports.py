"""No import cycle among hilbert_cli's modules at module level (issue 13).

A cycle makes import order decide whether a name exists yet (a half-initialised module), so
the layers must stay a DAG. The first tests count top-level imports only: an import inside a
function runs when it is called, after every module is loaded (that is how heavy or optional
libraries are kept out of `hilbert --help`). The later ones walk function-level imports too,
where a cycle is a layering fault rather than a crash: the engines and the stage base never
reach up into a stage, and no new function-level cycle appears. The graph is read from the
source (ast), nothing imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hilbert_cli

PACKAGE = Path(hilbert_cli.__file__).resolve().parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(body: list[ast.stmt], functions: bool = False):
    """Import statements that run at import time (also inside top-level if/try/with/class);
    with `functions`, also those inside functions (run when the function is called)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if functions:
                yield from _top_level_imports(node.body, functions)
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _top_level_imports(node.orelse, functions)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for name in ("body", "orelse", "finalbody", "handlers"):
            sub = getattr(node, name, None)
            if isinstance(sub, list):
                yield from _top_level_imports(sub, functions)


def _is_ancestor(pkg: str, name: str) -> bool:
    return name.startswith(pkg + ".")


def _edges(name: str, path: Path, modules: set[str], functions: bool = False) -> set[str]:
    """Modules of the package that importing `name` runs. The implicit import of a module's own
    parent packages is not an edge (they are always started first); an explicit
    `from .. import attr` of a parent package is (it needs that package's code to have run)."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()

    def add(target: str, explicit: bool) -> None:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            mod = ".".join(parts[:i])
            last = i == len(parts)
            if mod in modules and mod != name and (not _is_ancestor(mod, name) or (explicit and last)):
                out.add(mod)

    for node in _top_level_imports(ast.parse(path.read_text()).body, functions):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, explicit=True)
            continue
        if node.level:  # relative: `from ..x import y` is resolved against this module's package
            parent = here[:len(here) - node.level + 1]
            base = ".".join(parent + ([node.module] if node.module else []))
        else:
            base = node.module
        if not base:
            continue
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules:  # from pkg import submodule
                add(base, explicit=False)
                add(sub, explicit=True)
            else:  # from module import attribute: module's code must have run
                add(base, explicit=True)
    return out


def import_graph(root: Path, functions: bool = False) -> dict[str, set[str]]:
    paths = {_module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(paths)
    return {m: _edges(m, p, modules, functions) for m, p in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "pkg"


def test_hilbert_cli_has_no_import_cycle_at_module_level():
    graph = import_graph(PACKAGE)
    assert "hilbert_cli.batch" in graph["hilbert_cli.prepare.pipeline"]  # the walker sees real edges
    assert cycles(graph) == []


def test_the_walker_finds_a_cycle_and_ignores_function_level_imports(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .b import f\n",
        "pkg/b.py": "from . import c\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/d.py": "from .a import x\n",
        "pkg/e.py": "def g():\n    from .d import y\n",
        "pkg/sub/__init__.py": "from .m import z\n",
        "pkg/sub/m.py": "from .. import e\n",
    })
    graph = import_graph(root)
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert graph["pkg.e"] == set()  # the import inside g() is not an edge
    assert graph["pkg.sub.m"] == {"pkg.e"}  # its parent packages are implicit, not edges


def test_an_eager_package_init_that_a_submodule_reads_from_is_a_cycle(tmp_path):
    """`from .. import __version__` in a submodule + the package __init__ importing that
    submodule at top level: the submodule sees a half-run __init__."""
    root = _write(tmp_path, {
        "pkg/__init__.py": "from .io import write\n__version__ = '1'\n",
        "pkg/io.py": "from . import __version__\n",
    })
    assert cycles(import_graph(root)) == [["pkg", "pkg.io"]]


#: stage packages: the engines, the stage base and the batch mechanics sit below them
STAGE_PACKAGES = ("prepare", "embed", "segment", "scoring", "training", "evaluation", "nn", "commands", "demo")
ENGINE_LAYER = ("hilbert_cli.engines", "hilbert_cli.stages", "hilbert_cli.batch")

def test_the_engine_layer_never_imports_a_stage_even_inside_a_function():
    graph = import_graph(PACKAGE, functions=True)
    assert "hilbert_cli.engines.ray" in graph["hilbert_cli.engines.runner"]  # inside get_engine: seen
    upward = {(m, t) for m, targets in graph.items() if m.startswith(ENGINE_LAYER) for t in targets
              if (t.split(".") + [""])[1] in STAGE_PACKAGES}
    assert upward == set()


def test_no_import_cycle_even_inside_functions():
    assert cycles(import_graph(PACKAGE, functions=True)) == []


def test_the_walker_sees_function_level_imports_when_asked(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from .b import g\n",
        "pkg/b.py": "from .a import f\n",
    })
    assert cycles(import_graph(root)) == []
    assert cycles(import_graph(root, functions=True)) == [["pkg.a", "pkg.b"]]
