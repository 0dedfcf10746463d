"""Faults of the environment: a full disk, a closed or narrow stdout, a deleted current folder, a
folder another jaxgd is writing, SIGTERM. Each exits 1 (143 for SIGTERM) with one line on stderr
and no traceback, leaves no temporary file, and keeps the files that were there. Also the
output-set transaction (``write_all``) on its own, and writing through links, FIFOs and devices."""

import errno
import fcntl
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import jax
import pytest

from jaxgd._checks import ArgumentError
from jaxgd.app import cli as jcli
from jaxgd.app import files as jio
from jaxgd.app.files import OutputError, write_all

SWEEP = ["sweep", "--num", "2", "--epochs", "1", "--optimizers", "gd", "--no-png"]


def _text(s):
    return lambda p: Path(p).write_text(s)


def _enospc(p):
    Path(p).write_text("half")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _interrupt(p):
    Path(p).write_text("half")
    raise KeyboardInterrupt


def _listing(d: Path) -> dict:
    return {p.name: p.read_text() for p in sorted(d.iterdir())}


# ----------------------------------------------------------------------------- write_all


def test_write_all_writes_the_set_and_leaves_no_lock(tmp_path):
    out = tmp_path / "out"
    paths = write_all(out, {"a.txt": _text("A"), "b.json": _text("{}")})
    assert paths == [out / "a.txt", out / "b.json"]
    assert _listing(out) == {"a.txt": "A", "b.json": "{}"}  # no temporary, no .jaxgd.lock


@pytest.mark.parametrize("fault,error", [(_enospc, OutputError), (_interrupt, KeyboardInterrupt)],
                         ids=["ENOSPC", "Ctrl-C"])
def test_write_all_keeps_the_old_set_on_a_failure(tmp_path, fault, error):
    out = tmp_path / "out"
    write_all(out, {"a.txt": _text("old a"), "b.txt": _text("old b")})
    with pytest.raises(error) as e:
        write_all(out, {"a.txt": _text("new a"), "b.txt": fault, "c.txt": _text("new c")})
    if error is OutputError:
        assert str(e.value) == f"cannot write {str(out / 'b.txt')!r}: No space left on device"
    assert _listing(out) == {"a.txt": "old a", "b.txt": "old b"}  # nothing renamed, every temporary gone


def test_write_all_removes_the_folders_it_made_when_it_fails(tmp_path):
    with pytest.raises(OutputError):
        write_all(tmp_path / "a" / "b", {"x.txt": _enospc}, note=None)
    assert list(tmp_path.iterdir()) == []


def test_write_all_says_when_it_makes_parents(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    notes = []
    write_all("p/q/r", {"x.txt": _text("x")}, note=notes.append)
    write_all("s", {"x.txt": _text("x")}, note=notes.append)  # one new folder: no note
    assert notes == ["jaxgd: created the folder p/q/r and its missing parents (p, p/q)"]


@pytest.mark.parametrize("names,message", [
    ({"a\nb.txt": None}, "out must not hold control characters ('\\n')"),
    ({"sub/a.txt": None}, "writers must map plain file names to writers, got 'sub/a.txt'"),
    ({"ok.txt": None, "dir": None}, "is a folder, where the file dir goes"),
])
def test_write_all_checks_every_name_before_writing_any(tmp_path, names, message):
    out = tmp_path / "out"
    (out / "dir").mkdir(parents=True)
    called = []
    with pytest.raises(ArgumentError, match=re.escape(message)):
        write_all(out, {k: called.append for k in names})
    assert called == [] and [p.name for p in out.iterdir()] == ["dir"]


def test_a_second_writer_of_the_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / jio.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another jaxgd holds the folder
        with pytest.raises(OutputError, match="is in use by another jaxgd"):
            write_all(out, {"a.txt": _text("A")})
        assert not (out / "a.txt").exists()
    finally:
        os.close(fd)
    write_all(out, {"a.txt": _text("A")})  # free again
    assert (out / "a.txt").read_text() == "A"


def test_a_symbolic_link_stays_a_link_and_its_target_is_replaced(tmp_path):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.json").symlink_to(tmp_path / "real.json")
    write_all(tmp_path / "out", {"a.json": _text("new")})
    assert (tmp_path / "out" / "a.json").is_symlink() and (tmp_path / "real.json").read_text() == "new"
    (tmp_path / "link.json").symlink_to("real.json")
    jio.write_text_atomic(tmp_path / "link.json", "newer")
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "out", "real.json"]


def test_a_fifo_and_a_device_are_written_through(tmp_path, cli):
    fifo = tmp_path / "t.json"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    code, out, err = cli(["run", "--epochs", "1", "--json", fifo])
    reader.join(timeout=60)
    assert code == 0, err
    assert json.loads(got[0])["config"]["steps"] == 1
    assert fifo.is_fifo() and [p.name for p in tmp_path.iterdir()] == ["t.json"]
    code, out, err = cli(["run", "--epochs", "1", "--json", "/dev/null"])
    assert code == 0 and Path("/dev/null").is_char_device()


def test_write_all_writes_through_a_fifo_in_the_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "live.txt")
    got = []
    reader = threading.Thread(target=lambda: got.append((out / "live.txt").read_text()))
    reader.start()
    write_all(out, {"a.txt": _text("A"), "live.txt": _text("through")})
    reader.join(timeout=30)
    assert got == ["through"] and (out / "live.txt").is_fifo()
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "live.txt"]


def test_atomic_path_reports_a_full_disk_and_leaves_no_temporary(tmp_path):
    (tmp_path / "a.json").write_text("old")
    with pytest.raises(OutputError, match="No space left on device"):
        with jio.atomic_path(tmp_path / "a.json") as tmp:
            _enospc(tmp)
    assert _listing(tmp_path) == {"a.json": "old"}


# ----------------------------------------------------------------------------- the command line


class _Full(io.StringIO):
    def write(self, s):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("argv", [["run", "--epochs", "1"], ["run", "--epochs", "1", "--json", "-"],
                                  ["grads", "--grid", "3"], ["notebook"]], ids=" ".join)
def test_closed_stdout_is_an_error_when_it_is_the_only_output(argv, cli, monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    code, out, err = cli(argv)
    assert code == 1
    assert err == "jaxgd: cannot write to stdout: it is closed, and it is this command's only output\n"


def test_closed_stdout_does_not_stop_a_command_that_writes_files(cli, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdout", None)
    code, out, err = cli([*SWEEP, "--out", tmp_path])
    assert code == 0 and err == "" and sys.stdout is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.html", "sweep.json"]


def test_full_stdout_is_said(cli, monkeypatch):
    monkeypatch.setattr(sys, "stdout", _Full())
    code, out, err = cli(["run", "--epochs", "1"])
    assert code == 1 and err == "jaxgd: cannot write to stdout: No space left on device\n"


@pytest.mark.parametrize("encoding,argv,expect", [
    ("ascii", ["grads", "--grid", "3"], "on a 3x3 grid"),
    ("latin-1", SWEEP, "stable for lr < 2/lambdamax = "),
])
def test_a_narrow_stdout_gets_ascii_spellings(cli, monkeypatch, tmp_path, encoding, argv, expect):
    buf = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buf, encoding=encoding))
    code, _, err = cli([*argv, *(["--out", tmp_path] if argv[0] == "sweep" else [])])
    sys.stdout.flush()
    assert code == 0, err
    assert expect in buf.getvalue().decode(encoding)


def test_a_deleted_current_folder_is_one_line(cli, monkeypatch, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    for argv in (["run", "--epochs", "1", "--json", "t.json"], [*SWEEP]):
        code, out, err = cli(argv)
        assert code == 1 and out == "" and err.count("\n") == 1
        assert "the current folder no longer exists" in err, err


def test_a_full_disk_keeps_the_old_files(cli, monkeypatch, tmp_path):
    code, _, err = cli([*SWEEP, "--out", tmp_path])
    assert code == 0, err
    before = _listing(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from jaxgd.plots import plotly_figs

    monkeypatch.setattr(plotly_figs, "sweep", full)  # sweep.html's writer fails: sweep.json stays the old one
    code, out, err = cli([*SWEEP, "--out", tmp_path, "--lr-max", "5"])
    assert code == 1 and out == ""
    assert err == f"jaxgd: cannot write {str(tmp_path / 'sweep.html')!r}: No space left on device\n"
    assert _listing(tmp_path) == before


def test_sigterm_is_like_ctrl_c(cli, monkeypatch, tmp_path):
    code, _, err = cli([*SWEEP, "--out", tmp_path])
    before = _listing(tmp_path)
    from jaxgd.plots import plotly_figs

    monkeypatch.setattr(plotly_figs, "sweep", lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM))
    outer = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a fresh process (xdist workers set their own)
    try:
        code, out, err = cli([*SWEEP, "--out", tmp_path])
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # main puts the handler back
    finally:
        signal.signal(signal.SIGTERM, outer)
    assert code == 143 and err == "jaxgd: terminated\n"
    assert _listing(tmp_path) == before  # sweep.json's temporary removed, the old set kept


def test_no_home_no_compilation_cache(monkeypatch, tmp_path):
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.delenv("JAXGD_CACHE_DIR", raising=False)
    for home in (None, str(tmp_path / "nohome")):
        if home is None:
            monkeypatch.delenv("HOME", raising=False)
        else:
            monkeypatch.setenv("HOME", home)
        jcli._setup_cache()
        assert jax.config.jax_compilation_cache_dir == before
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_cache_folder_means_no_cache(monkeypatch, tmp_path):
    """A file in the cache's place, a path under it, a dangling link, /proc: no cache and no warning
    (JAX would warn on every compile), the run going on as without one."""
    before = jax.config.jax_compilation_cache_dir
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x")
    for d in (tmp_path / "afile", tmp_path / "afile" / "sub", tmp_path / "dangling", "/proc/jaxgd-cache"):
        monkeypatch.setenv("JAXGD_CACHE_DIR", str(d))
        jcli._setup_cache()
        assert jax.config.jax_compilation_cache_dir == before, d


def test_closed_stderr_still_writes_the_report(tmp_path):
    """`jaxgd report 2>&-`: the progress bar's terminal check must not fail on a missing stderr."""
    env = dict(os.environ, JAXGD_CACHE_DIR="off")
    cmd = [sys.executable, "-m", "jaxgd", "report", "--no-sweep", "--grid", "11", "--out", str(tmp_path / "r")]
    r = subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *cmd], env=env, stdout=subprocess.PIPE, text=True,
                       timeout=300)
    assert r.returncode == 0 and "wrote " in r.stdout
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["metrics.csv", "report.html", "results.json",
                                                                   "results.npz"]


def test_a_line_for_a_missing_stderr_is_dropped(capsys, monkeypatch):
    """No stderr at all (``sys.stderr`` None): a note is dropped, not printed to stdout (where
    ``print(file=None)`` would send it), and a progress bar draws nothing."""
    from jaxgd.app import terminal

    monkeypatch.setattr(sys, "stderr", None)
    terminal.stderr("jaxgd: a note")
    with terminal.Progress(10**6, unit="step") as bar:
        bar.say("computing")
        bar.update("runs", 10**6, 10**6)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("how", ["closed", "full"])
def test_stdout_faults_of_the_real_program(how):
    """The console program, in a subprocess: fd 1 closed (`jaxgd run >&-`) or /dev/full."""
    env = dict(os.environ, JAXGD_CACHE_DIR="off")
    cmd = [sys.executable, "-m", "jaxgd", "run", "--epochs", "1"]
    if how == "closed":
        r = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *cmd], env=env, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        line = "jaxgd: cannot write to stdout: it is closed, and it is this command's only output\n"
    else:
        with open("/dev/full", "w") as full:
            r = subprocess.run(cmd, env=env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
        line = "jaxgd: cannot write to stdout: No space left on device\n"
    assert r.returncode == 1 and r.stderr == line
