"""The library's face: the names ``import jaxgd`` offers, ``jaxgd.plots`` reached lazily, and the
command without its extra. (What ``import jaxgd`` loads, and the imports of every file, are
checked in test_layout.py.)"""

import json
import subprocess
import sys
from pathlib import Path

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
                         check=True, cwd=ROOT.parent)
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
    code = "import sys; sys.modules['tqdm'] = None; sys.argv = ['jaxgd', 'run']\nfrom jaxgd.app.cli import entry; entry()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == ["jaxgd: the command needs the app extra (tqdm missing): pip install 'jaxgd[app]'"]
