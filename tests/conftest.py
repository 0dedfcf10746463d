"""Shared set-up. Tests run in float64 (the notebook's precision): x64 is enabled, and rank
promotion made an error, before any array exists. The fixtures shared between test files live
here: the notebook's problem (``problem``), the CLI called in-process (``cli``), one real
``jaxgd report`` run per session (``cli_report``) and the session's headless browser
(``browser``). Helpers that are not fixtures live in helpers.py."""

import gc
import os
import subprocess
import sys

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
os.environ.setdefault("JAXGD_CACHE_DIR", "off")  # the CLI's persistent compilation cache: not in tests

# The xdist workers of one session share a compilation cache in a fresh folder (made by the first
# process, inherited by the workers, removed at the end), so a program compiled by one is loaded by
# the other. Subprocesses (the CLI runs) keep compiling for themselves: JAXGD_CACHE_DIR=off.
if "JAXGD_TEST_XLA_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["JAXGD_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="jaxgd-test-xla-")
    atexit.register(shutil.rmtree, os.environ["JAXGD_TEST_XLA_CACHE"], ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", os.environ["JAXGD_TEST_XLA_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import pytest  # noqa: E402

# The command of the session's one real report (CLI in a subprocess): the browser tests look at
# its page, the Ctrl-C tests interrupt a second run of it, the determinism test repeats it.
REPORT_CMD = ["report", "--no-png"]  # the page and the results files; the PNGs are tested in test_report.py


def pytest_sessionfinish(session):
    """Collect, then freeze the heap before an xdist worker reports that it has finished (xdist's hook
    sends that after this one), so pytest's five last collections (at unconfigure) skip it. With both
    cores busy those collections over this suite's heap ran past 5 s, and execnet sends a worker still
    busy 5 s after the controller's exit a SIGINT (``execnet.gateway_base._terminate_execution``): it
    landed in a garbage-collection callback, and pytest printed a dropped KeyboardInterrupt."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def problem():
    """The notebook's problem, ``jaxgd.notebook()`` in float64, shared by the session (a ``Problem``
    is frozen, and its arrays immutable)."""
    import jaxgd

    return jaxgd.notebook()


@pytest.fixture
def restore_x64():
    """For tests that call the CLI in-process: it sets x64 from --dtype."""
    yield
    jax.config.update("jax_enable_x64", True)


@pytest.fixture
def cli(capsys, restore_x64):
    """``cli(argv) -> (exit code, stdout, stderr)``: the ``jaxgd`` command run in-process."""
    from jaxgd.app.cli import main

    def call(argv):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return call


_CLI_CACHE = []  # this worker's compilation cache for report subprocesses, made on first use


def _run_report(out, *extra, check=True, popen=False):
    """``python -m jaxgd report ... --out OUT`` in a subprocess; with ``popen`` started and
    returned as a ``Popen``, its compilation cache off (the interrupt tests need a slow report);
    else with a compilation cache of this worker's own, so the first report compiles cold and
    later ones load what it compiled."""
    if not _CLI_CACHE:
        import tempfile

        _CLI_CACHE.append(tempfile.mkdtemp(prefix="jaxgd-test-cli-xla-"))
    env = dict(os.environ, JAXGD_CACHE_DIR="off" if popen else _CLI_CACHE[0], PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "jaxgd", *REPORT_CMD, *extra, "--out", str(out)]
    if popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, check=check, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def cli_report(tmp_path_factory):
    """The output folder of one ``jaxgd report --no-png`` run, shared by the whole session (read only). Under
    ``pytest -n 2 --dist loadgroup`` (``make test``) its users are in the xdist group "cli_report",
    so it is made once."""
    out = tmp_path_factory.mktemp("cli-report") / "out"
    _run_report(out)
    return out


@pytest.fixture
def run_report():
    """The session's report command as a function: ``run_report(out, *extra_flags, popen=False)``."""
    return _run_report


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright (settings in helpers.py): one per
    session here, so that every browser test file shares it (a second ``sync_playwright`` in the
    same thread fails)."""
    from playwright.sync_api import sync_playwright

    from helpers import ARGS, CHROMIUM

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
