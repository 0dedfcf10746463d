"""The package's shape: the public API at top level, no module and function of one name, the
library below importing nothing of the app above it, and one engine."""

import ast
import importlib
import pkgutil
from pathlib import Path

import jaxgd

PKG = Path(jaxgd.__file__).parent
LIBRARY = sorted(p for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))  # the numerics
APP = sorted((PKG / "app").rglob("*.py"))


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


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


def test_the_library_imports_nothing_of_the_app():
    assert LIBRARY and APP
    for path in LIBRARY:
        bad = {m for m in _imports(path) if m.startswith("jaxgd.app") or m in ("plotly", "matplotlib")}
        assert not bad, f"{path.name} imports {bad}"


def test_one_engine():
    """Only engine.py scans steps; run and sweep are jit(one_run) and jit(vmap(one_run))."""
    for path in LIBRARY + APP:
        if path.name != "engine.py":
            assert "lax.scan(" not in path.read_text(), path
    from jaxgd import engine

    assert engine.run_compiled.__wrapped__ is engine.one_run
    assert "vmap(partial(one_run" in Path(engine.__file__).read_text()
