"""The library's face: the names ``import jaxgd`` offers, loaded on first use, ``jaxgd.plots`` reached
lazily, the command's door (light, so its signals are handled before JAX loads) and the command without its extra. (What ``import jaxgd`` loads, and the imports of every file, are
checked in test_layout.py.)"""

import json
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import pytest

import jaxgd
from jaxgd import runs

ROOT = Path(jaxgd.__file__).parent
APP_ONLY = ("jaxgd.app", "plotly", "matplotlib", "tqdm")
PLANE_NAMES = ("Plane", "random_plane", "pca_plane", "hessian_plane", "interpolate", "project")
MODULES = ("planes", "models", "datasets", "spectrum")


def _fresh(code: str):
    """What ``code`` prints as JSON, run in a new interpreter after ``import jaxgd``."""
    out = subprocess.run([sys.executable, "-c", "import json, sys, jaxgd\n" + code], capture_output=True, text=True,
                         check=True, cwd=ROOT.parent, timeout=300)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def fresh_import():
    return _fresh(f"""
names = {{n: hasattr(jaxgd, n) for n in {MODULES + PLANE_NAMES!r}}}
print(json.dumps(dict(names=names)))""")


def test_modules_and_plane_functions_are_at_top_level(fresh_import):
    assert all(fresh_import["names"].values()), fresh_import["names"]
    assert set(PLANE_NAMES + MODULES) <= set(jaxgd.__all__)


def test_the_adapters_are_public_and_import_no_framework():
    """``import jaxgd`` imports neither Equinox nor Flax: each adapter imports its own on call."""
    assert {"from_equinox", "from_nnx", "from_linen"} <= set(jaxgd.__all__)
    got = _fresh("""
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & {"equinox", "flax"})))""")
    assert got == []


def test_every_public_name_exists_and_plumbing_is_not_public():
    assert [n for n in jaxgd.__all__ if not hasattr(jaxgd, n)] == []
    assert len(set(jaxgd.__all__)) == len(jaxgd.__all__)
    assert not {"RunConfig", "check_run_args", "run_checked"} & set(jaxgd.__all__)
    assert all(hasattr(runs, n) for n in ("RunConfig", "check_run_args", "run_checked"))  # for applications


def test_import_jaxgd_and_the_command_door_load_nothing_heavy():
    """``import jaxgd`` and the console script's module (pyproject.toml's, also ``python -m jaxgd``'s) load
    no JAX, NumPy or app: the command handles its signals before those seconds of imports. A name is
    imported with its module on first use, a module of the library too (``jaxgd.engine``), never the app;
    ``from jaxgd import *`` gives ``__all__``."""
    scripts = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["jaxgd"].partition(":")
    got = _fresh(f"""
heavy = lambda: sorted({{m.split(".")[0] for m in sys.modules}} & {{"jax", "numpy", "optax", "plotly", "matplotlib"}})
import importlib
app = hasattr(jaxgd, "app") or hasattr(jaxgd, "no_such_module")  # __getattr__ imports the library's modules only
door = importlib.import_module({module!r})
light = dict(modules=heavy(), callable=callable(getattr(door, {function!r})),
             ours=sorted(m for m in sys.modules if m.split(".")[0] == "jaxgd"))
engine = jaxgd.engine.__name__
star = {{}}
exec("from jaxgd import *", star)
print(json.dumps(dict(app=app, light=light, loaded=heavy(), engine=engine, run=jaxgd.run.__module__,
                      star=sorted(set(star) - {{"__builtins__"}}))))""")
    assert module == "jaxgd.__main__" and got["app"] is False  # python -m jaxgd runs the same door
    assert got["light"] == dict(modules=[], callable=True,
                                ours=["jaxgd", "jaxgd.__main__", "jaxgd.app", "jaxgd.app.signals", "jaxgd.progress"])
    assert got["loaded"] == ["jax", "numpy", "optax"] and got["engine"] == "jaxgd.engine"  # and not the figures
    assert got["run"] == "jaxgd.runs" and got["star"] == sorted(jaxgd.__all__)


def test_plots_is_reached_lazily():
    got = _fresh("""
before = "jaxgd.plots" in sys.modules
path = jaxgd.plots.Path
print(json.dumps(dict(before=before, after="jaxgd.plots" in sys.modules, name=jaxgd.plots.__name__,
                      listed="plots" in dir(jaxgd))))""")
    assert got == dict(before=False, after=True, name="jaxgd.plots", listed=True)
    with pytest.raises(AttributeError, match="no_such_name"):
        jaxgd.no_such_name


def test_plots_without_the_extra_says_which_to_install():
    code = "import sys; sys.modules['plotly'] = None\nimport jaxgd\ntry:\n    jaxgd.plots\nexcept ImportError as e:\n    print(e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.splitlines() == ["jaxgd.plots needs the app extra (plotly missing): pip install 'jaxgd[app]'"]


def test_the_command_without_its_extra_says_which_to_install():
    code = "import sys; sys.modules['tqdm'] = None; sys.argv = ['jaxgd', 'run']\nfrom jaxgd.__main__ import entry; entry()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == ["jaxgd: the command needs the app extra (tqdm missing): pip install 'jaxgd[app]'"]
