"""The package's shape: the public API at top level, no module and function of one name, the
library below importing nothing of the app above it, no import cycle, no private JAX, and one engine.

The import checks read every file under ``jaxgd/`` (``__init__.py`` included) by AST, imports
inside functions included, and one check imports ``jaxgd`` in a fresh interpreter and reads
``sys.modules``. Each checker is also run on small synthetic sources that break its rule, so a
check that could never fail would show here."""

import ast
import functools
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import jaxgd

PKG = Path(jaxgd.__file__).parent
APP = "jaxgd.app"
PLOTS = "jaxgd.plots"  # the figures: above the library, below the app
FORBIDDEN_IN_LIBRARY = (APP, PLOTS, "plotly", "matplotlib", "tqdm")  # the layers above and their dependencies
PRIVATE_JAX = "jax._src"
SCAN = "jax.lax.scan"  # a scan over steps is the engine's alone
ENGINE = {"jaxgd.engine"}  # spectrum loops with while_loop, surface and planes map with lax.map: no scan
DOOR = "jaxgd.__main__"  # `python -m jaxgd` is the command: it opens the app, and `import jaxgd` never runs it
# The issue allows "a figure helper reached lazily": `jaxgd.plots`, imported by importlib.import_module on
# first access, and (issue 19) a Landscape's figures() and write(). Those imports, made that way, cross the
# wall; any other (or an import statement) doesn't.
LAZY = {("jaxgd", "jaxgd.plots"),
        ("jaxgd.survey", "jaxgd.plots"), ("jaxgd.survey", "jaxgd.app.landscape_page"),
        ("jaxgd.progress", "tqdm")}  # issue 19: run/sweep(progress=True) use tqdm's bar where it is installed

# --- the checkers: sources in, offences out ----------------------------------------------------

def parse(sources: dict[str, str]) -> dict[str, tuple[ast.Module, bool]]:
    """``{path: text}`` (paths like ``jaxgd/app/__init__.py``) -> ``{module: (tree, is_package)}``."""
    return dict(_parse(path, text) for path, text in sources.items())


@functools.cache
def _parse(path: str, text: str) -> tuple[str, tuple[ast.Module, bool]]:
    parts = Path(path).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), (ast.parse(text, path), is_package)


def package_sources() -> dict[str, str]:
    """Every ``.py`` file of the installed ``jaxgd``, keyed by its path from the folder above it."""
    return {str(p.relative_to(PKG.parent)): p.read_text() for p in sorted(PKG.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def _is_lazy(node: ast.AST) -> bool:
    """Whether ``node`` is ``importlib.import_module(...)`` or ``__import__(...)`` of a constant name."""
    return (isinstance(node, ast.Call) and bool(node.args) and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (isinstance(node.func, ast.Name) and node.func.id == "__import__"
                 or isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"))


def _named(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """What one node imports: ``import a.b`` -> ``a.b``; ``from a import b`` -> ``a``, ``a.b`` (relative
    made absolute); ``importlib.import_module("a")`` and ``__import__("a")`` -> ``a``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _absolute(node, module, is_package)
        return [base] + [f"{base}.{a.name}" for a in node.names if a.name != "*"]
    return [node.args[0].value] if _is_lazy(node) else []


def imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """``(name, line, lazy)`` of everything the module imports, anywhere in it (functions included);
    ``lazy``: by importlib."""
    return [(name, node.lineno, _is_lazy(node)) for node in ast.walk(tree) for name in _named(node, module, is_package)]


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def uses(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """``(dotted name, line, lazy)`` of every name and attribute chain the module refers to, resolved through
    its imports (``from jax import lax`` makes ``lax.scan`` read ``jax.lax.scan``), imports included."""
    alias = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                alias[a.asname or a.name.partition(".")[0]] = a.name if a.asname else a.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            alias |= {a.asname or a.name: f"{base}.{a.name}" for a in node.names}
    out = list(imports(tree, module, is_package))
    for node in ast.walk(tree):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in alias:
            out.append((".".join([alias[node.id], *reversed(chain)]), node.lineno, False))
    return out


def offences(sources: dict[str, str], modules, forbidden, *, names=imports, lazy=frozenset()) -> list[str]:
    """``"module:line name"`` for each name in ``forbidden`` (or below it) that one of ``modules``
    (a predicate on the module's name) imports, or with ``names=uses`` refers to; but not the
    ``(module, name)`` pairs in ``lazy`` where imported by importlib."""
    out = set()
    for module, (tree, is_package) in parse(sources).items():
        if modules(module):
            out |= {f"{module}:{line} {name}" for name, line, by_importlib in names(tree, module, is_package)
                    if _within(name, forbidden) and not (by_importlib and (module, name) in lazy)}
    return sorted(out)


def import_graph(sources: dict[str, str], lazy=frozenset()) -> dict[str, set[str]]:
    """``{module: the package's modules it imports}``, function-level imports included (but not the
    ``(module, name)`` pairs in ``lazy`` where imported by importlib). An import names the innermost
    module it reaches (``from jaxgd.app import plots`` -> ``jaxgd.app.plots``; ``from jaxgd.model
    import Params`` -> ``jaxgd.model``), not the parent packages Python loads first (else every
    package that re-exports a submodule would be a cycle)."""
    parsed = parse(sources)

    def innermost(name):
        while name and name not in parsed:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, (tree, is_package) in parsed.items():
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):  # ``from a import b``: the module a.b if there is one, else a
                base = _absolute(node, module, is_package)
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in parsed else innermost(base) for a in node.names}
            else:
                targets |= {innermost(name) for name in _named(node, module, is_package)
                            if not (_is_lazy(node) and (module, name) in lazy)}
        graph[module] = targets - {"", module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one module
    (Tarjan), each sorted, in sorted order."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
    return sorted(out)


def loaded_by(*steps: str) -> list[list[str]]:
    """The names in ``sys.modules`` after each of ``steps`` (Python statements), run one after the
    other in a fresh interpreter that imports this ``jaxgd``."""
    show = "print(__import__('json').dumps(sorted(__import__('sys').modules)))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PKG.parent), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", "\n".join(f"{step}\n{show}" for step in steps)],
                         env=env, capture_output=True, text=True, check=True, timeout=300).stdout
    return [json.loads(line) for line in out.splitlines()[-len(steps):]]


SOURCES = package_sources()
MODULES = sorted(parse(SOURCES))
LIBRARY = [m for m in MODULES if not _within(m, [APP, PLOTS]) and m != DOOR]  # the numerics, jaxgd/__init__.py included
FIGURES = [m for m in MODULES if _within(m, [PLOTS])]


# --- the public surface ------------------------------------------------------------------------

def test_everything_a_user_calls_is_at_top_level():
    for name in ("run", "sweep", "theory", "loss_surface", "grad_check", "model_problem", "problem", "lr_scan",
                 "Trajectory", "Problem", "Params", "Order", "plots", *jaxgd.OPTIMIZERS, *jaxgd.LANDSCAPES):
        assert name in jaxgd.__all__, name
        assert callable(getattr(jaxgd, name)) or name == "plots", name
    for name in jaxgd.__all__:
        assert hasattr(jaxgd, name), name


def test_no_module_shares_a_name_with_a_function():
    modules = {m.name for m in pkgutil.iter_modules([str(PKG)])}
    for name in jaxgd.__all__:
        obj = getattr(jaxgd, name)
        if name in modules:
            assert obj is importlib.import_module(f"jaxgd.{name}"), f"jaxgd.{name} is a module and a {type(obj)}"


# --- the wall: the library imports nothing of the app or its dependencies ----------------------

def test_every_file_is_read():
    assert {"jaxgd", "jaxgd.engine", "jaxgd.app", "jaxgd.app.cli", "jaxgd.plots", "jaxgd.plots.common"} <= set(MODULES)
    assert "jaxgd" in LIBRARY and not any(_within(m, [APP, PLOTS]) for m in LIBRARY)


@pytest.mark.parametrize("module", LIBRARY)
def test_the_library_imports_nothing_of_the_app(module):
    assert offences(SOURCES, lambda m: m == module, FORBIDDEN_IN_LIBRARY, lazy=LAZY) == []


@pytest.mark.parametrize("module", FIGURES)
def test_the_figures_import_nothing_of_the_app(module):
    assert offences(SOURCES, lambda m: m == module, [APP]) == []


def computed_imports(sources: dict[str, str]) -> list[str]:
    """``module:line`` of every ``importlib.import_module`` / ``__import__`` of a computed name: such
    an import would escape every check here."""
    return [f"{m}:{node.lineno}" for m, (tree, _) in parse(sources).items() for node in ast.walk(tree)
            if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) == "import_module"
                                               or getattr(node.func, "id", None) == "__import__")
            and not _is_lazy(node)]


def test_every_lazy_import_names_its_module():
    # but jaxgd/__init__.py's __getattr__ (issue 21): the module of a public name, as its TYPE_CHECKING block
    # (read by every check here) says, or a module file jaxgd/NAME.py (never the app or the figures, packages)
    assert [o for o in computed_imports(SOURCES) if not o.startswith("jaxgd:")] == []
    planted = _package(init="import importlib\nname = 'pkg.app'\nimportlib.import_module(name)\n",
                       data="import importlib\nimportlib.import_module('pkg.app')\n")
    assert computed_imports(planted) == ["pkg:3"]


@pytest.fixture(scope="module")
def loaded():
    """``sys.modules`` of a fresh interpreter after ``import jaxgd``, then after ``import jaxgd.app``."""
    return loaded_by("import jaxgd", "import jaxgd.app")


def _forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules if _within(m, FORBIDDEN_IN_LIBRARY)]


def test_import_jaxgd_loads_nothing_of_the_app(loaded):
    assert _forbidden(loaded[0]) == []


def test_the_subprocess_check_sees_the_app(loaded):
    """The same check fails where the app is loaded."""
    assert "jaxgd" in loaded[0] and APP in _forbidden(loaded[1])


# --- no private JAX, no import cycle -----------------------------------------------------------

@pytest.mark.parametrize("module", MODULES)
def test_no_file_imports_private_jax(module):
    assert offences(SOURCES, lambda m: m == module, [PRIVATE_JAX], names=uses) == []


def test_the_library_has_no_import_cycle():
    graph = import_graph(SOURCES)
    assert cycles({m: graph[m] & set(LIBRARY) for m in LIBRARY}) == []  # (LAZY is an arrow out of the library)


def test_no_import_cycle_anywhere():
    assert cycles(import_graph(SOURCES, lazy=LAZY)) == []


# --- one engine --------------------------------------------------------------------------------

def test_one_engine():
    """Only engine.py scans; run and sweep are jit(one_run) and jit of one_run vmapped or mapped over the runs."""
    assert offences(SOURCES, lambda m: m not in ENGINE, [SCAN], names=uses) == []
    assert offences(SOURCES, lambda m: m in ENGINE, [SCAN], names=uses)  # the check sees the engine's
    from jaxgd import engine

    assert engine.run_compiled.__wrapped__ is engine.one_run
    assert engine.sweep_compiled.__wrapped__ is engine._many_runs
    body = inspect.getsource(engine._many_runs)
    assert "one = partial(one_run, static, data)" in body and "jax.vmap(one)" in body and "one(*a)" in body


# --- the checkers fail where they should: synthetic packages ----------------------------------

def _package(**files: str) -> dict[str, str]:
    """``_package(a="...", app__x="...")`` -> ``{"pkg/a.py": ..., "pkg/app/x.py": ...}``; ``__init__``
    files as ``init=`` / ``app__init=``."""
    return {"pkg/" + k.replace("__", "/").replace("init", "__init__") + ".py": v for k, v in files.items()}


def test_wall_checker_sees_imports_in_functions_and_init():
    src = _package(init="from pkg.app import plots\n", app__init="", app__plots="import plotly\n",
                   model="def f():\n    import pkg.app.plots\n    import tqdm.auto\n",
                   data="def g():\n    from .app import plots\n",
                   surface="def h():\n    import importlib\n    return importlib.import_module('matplotlib.pyplot')\n",
                   clean="import jax\nfrom pkg import model\n")
    library = lambda m: not _within(m, ["pkg.app"])  # noqa: E731
    assert offences(src, library, ["pkg.app", "plotly", "matplotlib", "tqdm"]) == [
        "pkg.data:2 pkg.app", "pkg.data:2 pkg.app.plots", "pkg.model:2 pkg.app.plots", "pkg.model:3 tqdm.auto",
        "pkg.surface:3 matplotlib.pyplot", "pkg:1 pkg.app", "pkg:1 pkg.app.plots"]


def test_only_the_allowed_lazy_import_crosses_the_wall():
    lazy = {("pkg", "pkg.app.plots")}
    getattr_ = "def __getattr__(name):\n    import importlib\n    return importlib.import_module({!r})\n"
    src = _package(init=getattr_.format("pkg.app.plots"), app__init="", app__plots="import pkg\n",
                   model=getattr_.format("pkg.app.plots"), data="def f():\n    from pkg.app import plots\n")
    library = lambda m: not _within(m, ["pkg.app"])  # noqa: E731
    others = ["pkg.data:2 pkg.app", "pkg.data:2 pkg.app.plots", "pkg.model:3 pkg.app.plots"]
    assert offences(src, library, ["pkg.app"], lazy=lazy) == others
    assert offences(src, library, ["pkg.app"]) == others + ["pkg:3 pkg.app.plots"]
    assert cycles(import_graph(src, lazy=lazy)) == [] and cycles(import_graph(src)) == [["pkg", "pkg.app.plots"]]


def test_private_jax_checker_sees_every_spelling():
    src = _package(a="def f():\n    from jax._src import config\n", b="import jax._src.core as c\n",
                   c="from jax import _src\n", d="import jax\nx = jax._src.config\n",
                   e='import jax\nx = jax.config  # jax._src in a comment\n"""jax._src in a docstring"""\n')
    assert offences(src, lambda m: True, [PRIVATE_JAX], names=uses) == [
        "pkg.a:2 jax._src", "pkg.a:2 jax._src.config", "pkg.b:1 jax._src.core", "pkg.c:1 jax._src",
        "pkg.d:2 jax._src", "pkg.d:2 jax._src.config"]


def test_scan_checker_sees_every_spelling():
    src = _package(engine="import jax\ndef run(f, c, xs):\n    return jax.lax.scan(f, c, xs)\n",
                   a="from jax.lax import scan\n", b="from jax import lax\ny = lax.scan(f, 0, xs)\n",
                   c="import jax\ndef g():\n    return jax.lax.scan(f, 0, xs)\n",
                   d="import jax.lax as L\ny = L.scan(f, 0, xs)\n", e="from jax.lax import scan as s\n",
                   f='"""A ``lax.scan`` in prose."""\nimport jax\ny = jax.lax.map(f, xs)\n')
    assert offences(src, lambda m: m != "pkg.engine", [SCAN], names=uses) == [
        "pkg.a:1 jax.lax.scan", "pkg.b:2 jax.lax.scan", "pkg.c:3 jax.lax.scan", "pkg.d:2 jax.lax.scan",
        "pkg.e:1 jax.lax.scan"]


def test_cycle_checker_sees_function_level_and_relative_imports():
    src = _package(init="from pkg.run import run\n", run="from pkg.engine import step\n", engine="import numpy\n",
                   app__init="", app__cli="from pkg.app import report\n",
                   app__report="def f():\n    from .cli import main\n")
    graph = import_graph(src)
    assert graph == {"pkg": {"pkg.run"}, "pkg.run": {"pkg.engine"}, "pkg.engine": set(), "pkg.app": set(),
                     "pkg.app.cli": {"pkg.app.report"}, "pkg.app.report": {"pkg.app.cli"}}
    assert cycles(graph) == [["pkg.app.cli", "pkg.app.report"]]
    src["pkg/engine.py"] = "def f():\n    import pkg\n"  # the library's face, imported back by a function
    assert cycles(import_graph(src)) == [["pkg", "pkg.engine", "pkg.run"], ["pkg.app.cli", "pkg.app.report"]]
    src["pkg/engine.py"] = "from pkg.app import plots\n"  # pkg.app is the parent package: no edge to it
    assert cycles(import_graph(src)) == [["pkg.app.cli", "pkg.app.report"]]


def test_the_checkers_catch_violations_planted_in_the_real_sources():
    """Today's files, each with one violation added in a function (the layout the checks must see)."""
    src = dict(SOURCES)
    src["jaxgd/model.py"] += "\n\ndef _f():\n    import jaxgd.app.report\n"
    src["jaxgd/engine.py"] += "\n\ndef _g():\n    from jax._src import core\n    from jaxgd import runs\n"
    src["jaxgd/surface.py"] += "\n\ndef _h(f, xs):\n    from jax.lax import scan\n    return scan(f, 0, xs)\n"
    library = lambda m: m in LIBRARY  # noqa: E731
    assert [o.split(":")[0] for o in offences(src, library, FORBIDDEN_IN_LIBRARY)
            if o not in offences(SOURCES, library, FORBIDDEN_IN_LIBRARY)] == ["jaxgd.model"]
    assert [o.split(" ")[1] for o in offences(src, lambda m: m == "jaxgd.engine", [PRIVATE_JAX], names=uses)] == [
        "jax._src", "jax._src.core"]
    assert {o.split(":")[0] for o in offences(src, lambda m: m not in ENGINE, [SCAN], names=uses)} == {
        "jaxgd.surface"}
    engine_runs = [c for c in cycles(import_graph(src)) if {"jaxgd.engine", "jaxgd.runs"} <= set(c)]
    assert engine_runs and not [c for c in cycles(import_graph(SOURCES)) if {"jaxgd.engine", "jaxgd.runs"} <= set(c)]
