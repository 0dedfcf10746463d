"""Robustness: bad invocations answered clearly, divergence end to end, atomic outputs,
Ctrl-C, determinism across processes, and a fuzz test of the API."""

import gc
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxgd
from jaxgd.app import files as jio
from jaxgd.app import signals
from jaxgd import sweep

ROOT = Path(__file__).resolve().parent.parent

# Every bad command-line invocation, in one table: exit 2, one line on stderr naming the flag,
# nothing on stdout, nothing written. Files the cases name are made in the test's folder.
FILES = {
    "syntax.toml": "grid = [\n",
    "unknown.toml": "grd = 11\n",
    "wrongtype.toml": "epochs = \"ten\"\n",
    "notbool.toml": "gif = 1\n",
    "boolgrid.toml": "grid = true\n",
    "lrtable.toml": "lr = {adam = 0.1}\noptimizers = ['gd']\n",
    "lrbad.toml": "lr = {gd = -1}\noptimizers = ['gd']\n",
    "afile": "keep me",
    "bad.csv": "1\n2\n",
    "small.csv": "0,1\n1,2\n2,3\n",
    "words.csv": "f1,f2,label\n1,2,0\n3,x,1\n5,6,0\n",
    "oneclass.csv": "f1,f2,label\n1,2,0\n3,4,0\n5,6,0\n",
    "table.csv": "f1,f2,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
    "dup.toml": "batch-size = 4\nbatch_size = 5\n",
    "bigx.csv": "".join(f"{1e308 if i == 0 else i},{i}\n" for i in range(10)),
    "semi.csv": "x;y\n1;2\n2;3;4\n",
    "tabs.csv": "1\t2\t3\n",
    "two.csv": "x,y\n1,0\n2,1\n",
}
FOLDERS = ("d1/report.html", "d2/sweep.json", "d3/landscape.json")  # a folder where an output file goes
LINKS = {"dangling": "nowhere/x"}  # a symbolic link to nothing
LONG = "a" * 300  # longer than a file name may be

BAD = [
    # run
    ("run --lr abc", "--lr: invalid float value: 'abc'"),
    ("run --lr 0", "--lr must be a finite number > 0, got 0.0"),
    ("run --lr -1", "--lr must be a finite number > 0, got -1.0"),
    ("run --lr nan", "--lr must be a finite number > 0, got nan"),
    ("run --lr inf", "--lr must be a finite number > 0, got inf"),
    ("run --epochs 0", "--epochs must be an integer >= 1, got 0"),
    ("run --epochs -1", "--epochs must be an integer >= 1, got -1"),
    ("run --epochs 2.5", "--epochs: invalid int value: '2.5'"),
    ("run --batch-size 0", "--batch-size must be an integer in [1, 51], got 0"),
    ("run --batch-size 52", "--batch-size must be an integer in [1, 51], got 52"),
    ("run --init=1", "--init: must be two numbers W,b"),
    ("run --init=1,2,3", "--init: must be two numbers W,b"),
    ("run --init=a,b", "--init: must be two numbers W,b"),
    ("run --optimizer adma", "--optimizer must be one of 'gd', 'momentum', 'nesterov', 'rmsprop', 'adam'"),
    ("run --optimizer optax:nope", "--optimizer 'optax:nope': optax has no optimizer named 'nope'"),
    ("run --optimizer gd --beta 0.9", "--beta is not a hyperparameter of optimizer 'gd' (its hyperparameters: none)"),
    ("run --optimizer momentum --beta 1.5", "--beta must be a finite number in [0.0, 1.0), got 1.5"),
    ("run --batch-size 2 --sampling random", "--sampling must be one of 'shuffle', 'replacement'; got 'random'"),
    ("run --batch-size 2 --rng torch", "--rng must be one of 'jax', 'numpy'; got 'torch'"),
    ("run --dtype float16", "--dtype: invalid choice: 'float16'"),
    ("run --batch-size 2 --seed -3", "--seed must be an integer in [0, 4294967295], got -3"),
    ("run --frobnicate", "unrecognized arguments: --frobnicate"),
    ("run --noise -1", "--noise must be a finite number >= 0, got -1.0"),
    ("run --noise nan", "--noise must be a finite number >= 0, got nan"),
    ("run --noise 1 --data-seed -1", "--data-seed must be an integer in [0, 4294967295], got -1"),
    ("run --json missing/t.json", "--json cannot write to"),
    ("run --schedule wobbly", "--schedule must be one of 'constant', 'exponential', 'cosine', 'warmup-cosine'"),
    ("run --data nope.csv", "--data file 'nope.csv' does not exist"),
    ("run --data bad.csv --noise 1", "--noise applies to the notebook's data, not to your own data"),
    ("run --problem bowl", "--problem must be one of 'notebook', 'data', 'rosenbrock'"),
    ("run --problem beale --batch-size 2", "--batch-size does not apply to problem 'beale'"),
    ("run --problem beale --noise 1", "--problem beale has no data"),
    ("launch", "invalid choice: 'launch'"),
    ("run --epochs 2147483648", "--epochs asks for 2,147,483,648 steps; a run takes at most 2,147,483,647"),
    ("run --epochs 99999999999999999999", "--epochs asks for 99,999,999,999,999,999,999 steps"),
    ("run --epochs 1000000000", "--epochs asks for 1,000,000,000 steps of 2 parameters: about 104.3 GiB"),
    # grads
    ("grads --grid 1", "--grid must be an integer in [2, 4001], got 1"),
    ("grads --grid 100000", "--grid must be an integer in [2, 4001], got 100000"),
    ("grads --data bad.csv", "--data file 'bad.csv': row 1 has 1 column(s)"),
    # report
    ("report --lr 0", "--lr must be a finite number > 0, got 0.0"),
    ("report --epochs 0", "--epochs must be an integer >= 1, got 0"),
    ("report --epochs 2.5", "--epochs: invalid int value: '2.5'"),
    ("report --batch-size 0", "--batch-size must be an integer >= 1, got 0"),
    ("report --batch-size 52", "--batch-size must be an integer in [1, 51], got 52"),
    ("report --optimizers=", "--optimizers must name at least one optimizer"),
    ("report --optimizers gd,adma", "--optimizers must be one of"),
    ("report --optimizers gd,gd", "--optimizers must not repeat a name, got gd, gd"),
    ("report --grid 0", "--grid must be an integer in [2, 4001], got 0"),
    ("report --loss-every 0", "--loss-every must be an integer in [1, 2147483647], got 0"),
    ("run --loss-every -3", "--loss-every must be an integer in [1, 2147483647], got -3"),
    ("report --grid 1", "--grid must be an integer in [2, 4001], got 1"),
    ("report --grid -5", "--grid must be an integer in [2, 4001], got -5"),
    ("report --grid abc", "--grid: invalid int value: 'abc'"),
    ("report --grid 1000000", "--grid must be an integer in [2, 4001], got 1000000"),
    ("report --noise -0.5", "--noise must be a finite number >= 0, got -0.5"),
    ("report --dtype float16", "--dtype: invalid choice: 'float16'"),
    ("report --config missing.toml", "--config file 'missing.toml' does not exist"),
    ("report --config syntax.toml", "--config file 'syntax.toml' is not valid TOML"),
    ("report --config unknown.toml", "--config file 'unknown.toml': unknown key 'grd'"),
    ("report --config wrongtype.toml", "key 'epochs' must be an integer, got str 'ten'"),
    ("report --config notbool.toml", "key 'gif' must be true or false"),
    ("report --config boolgrid.toml", "key 'grid' must be an integer, got bool"),
    ("report --config lrtable.toml", "--lr has a value for 'adam', which is not among the optimizers (gd)"),
    ("report --config lrbad.toml", "--lr for gd must be a finite number > 0, got -1"),
    ("report --lr 1e308", "--lr must be at most 3.595e+307: the seed cloud tries up to 5× it, and float64 ends at"),
    ("report --lr 1e38 --dtype float32", "--lr must be at most 6.806e+37: the seed cloud tries up to 5× it"),
    ("report --data nope.csv", "--data file 'nope.csv' does not exist"),
    ("report --data small.csv --batch-size 8", "--batch-size must be an integer in [1, 3], got 8"),
    ("report --problem bowl", "--problem must be one of 'notebook', 'data', 'rosenbrock'"),
    ("report --problem saddle --noise 1", "--problem saddle has no data"),
    ("report --out afile", "--out 'afile' exists and is not a folder"),
    ("report --out /proc/jaxgd-out", "--out cannot write to '/proc/jaxgd-out'"),
    ("report --bogus", "unrecognized arguments: --bogus"),
    # landscape
    ("landscape --data words.csv", "--data file 'words.csv': row 3, column 2 ('f2')"),
    ("landscape --data table.csv --target y", "--target 'y' is not a column"),
    ("landscape --data oneclass.csv", "one class"),
    ("landscape --data table.csv --batch-size 10", "--batch-size must be an integer in [1, 4], got 10"),
    ("landscape --data nope.csv", "--data file 'nope.csv' does not exist"),
    ("landscape --data iris --target y", "--target applies to a CSV file, not to the data set 'iris'"),
    ("landscape --model cnn:3", "--model"),
    ("landscape --model mlp:0", "--model"),
    ("landscape --activation swish", "--activation must be one of 'tanh'"),
    ("landscape --loss hinge", "--loss must be one of 'xent', 'mse'"),
    ("landscape --plane diagonal", "--plane must be one of 'pca', 'random', 'hessian'; got 'diagonal'"),
    ("landscape --grid 1", "--grid must be an integer in [2, 4001], got 1"),
    ("landscape --grid 100000", "--grid must be an integer in [2, 4001], got 100000"),
    ("landscape --lr 0.1,0.2", "--lr must be one number or one per optimizer (3: gd, momentum, adam), got 2"),
    ("landscape --lr 0.1,-1,0.1", "--lr must be a finite number > 0, got -1.0"),
    ("landscape --sharpness-every -1", "--sharpness-every must be an integer >= 0, got -1"),
    ("landscape --optimizers gd,bogus", "--optimizers must be one of"),
    ("landscape --out afile", "--out 'afile' exists and is not a folder"),
    ("landscape --epochs 99999999999", "--epochs asks for 99,999,999,999 steps; a run takes at most 2,147,483,647"),
    # sweep
    ("sweep --lr-min 0", "--lr-min must be a finite number > 0, got 0.0"),
    ("sweep --lr-max nan", "--lr-max must be a finite number > 0, got nan"),
    ("sweep --lr-min 1 --lr-max 0.1", "--lr-max must be >= --lr-min (1.0), got 0.1"),
    ("sweep --num 0", "--num must be an integer in [1, 1000000], got 0"),
    ("sweep --epochs 0", "--epochs must be an integer >= 1, got 0"),
    ("sweep --optimizers=", "--optimizers must name at least one optimizer"),
    ("sweep --batch-size 0", "--batch-size must be an integer in [1, 51], got 0"),
    ("sweep --batch-size 2 --sampling xyz", "--sampling must be one of 'shuffle', 'replacement'; got 'xyz'"),
    ("sweep --out afile", "--out 'afile' exists and is not a folder"),
    # output names: every target checked before anything is computed or written
    ("run --json=", "--json must be a file path, got ''"),
    ("run --json d1", "--json 'd1' is a folder; give a file path"),
    (f"run --json {LONG}", "--json has a name of 300 bytes ('aaaaaaaaaaaaaaaaaaaa…'); the file system allows 255"),
    (["run", "--json", "a\nb.json"], "--json must not hold control characters ('\\n'), got 'a\\nb.json'"),
    (f"report --out {LONG}", "--out has a name of 300 bytes"),
    ("report --out dangling", "--out 'dangling' is a symbolic link to"),
    ("report --out d1", "--out 'd1/report.html' is a folder, where the file report.html goes"),
    (["report", "--out", "out\x1b[2J"], "--out must not hold control characters ('\\x1b')"),
    ("sweep --out=", "--out must be a folder path, got ''"),
    ("sweep --out dangling", "--out 'dangling' is a symbolic link to"),
    ("sweep --out d2", "--out 'd2/sweep.json' is a folder, where the file sweep.json goes"),
    (["sweep", "--out", "a\tb"], "--out must not hold control characters ('\\t')"),
    (f"sweep --out {LONG}/x", "--out has a name of 300 bytes"),
    ("landscape --out d3", "--out 'd3/landscape.json' is a folder"),
    # numbers that do not survive the working precision, misleading names
    ("run --dtype float32 --lr 1e-50", "--lr 1e-50 is 0.0 in float32: a learning rate must lie between 1.4e-45 and"),
    ("run --dtype float32 --lr 1e39", "--lr 1e+39 is inf in float32"),
    ("run --noise 1e308", "--noise 1e+308 is too large for float64: the noisy y overflows"),
    ("run --noise 1e155", "--noise 1e+155 makes the loss overflow float64 at (W, b) = "),
    ("run --dtype float32 --noise 1e20", "--noise 1e+20 makes the loss overflow float32"),
    ("report --data bigx.csv", "--data file 'bigx.csv' makes the loss overflow float64 at (W, b) = (-8.0, -8.0)"),
    ("grads --data bigx.csv", "--data file 'bigx.csv' makes the loss overflow float64"),
    ("run --schedule warmup-cosine --epochs 1", "--schedule warmup-cosine needs a run of at least 2 steps"),
    ("report --config dup.toml", "keys 'batch-size' and 'batch_size' are the same setting; give it once"),
    # data and config files: the separator said, devices refused (they never end)
    ("run --data semi.csv", "row 3 has 3 column(s); it needs two, x and y (read as semicolon-separated)"),
    ("run --data tabs.csv", "row 1 has 3 column(s); it needs two, x and y (read as tab-separated)"),
    ("run --data /dev/zero", "--data file '/dev/zero' is not a regular file (a device or a socket)"),
    ("report --data /dev/zero", "--data file '/dev/zero' is not a regular file"),
    ("report --config /dev/zero", "--config file '/dev/zero' is not a regular file"),
    ("report --config d1", "--config file 'd1' is a folder"),
    ("landscape --data /dev/zero", "--data file '/dev/zero' is not a regular file"),
    # flags that would change nothing where given: refused, naming the flag and why (issue 21)
    ("run --seed 7", "--seed applies to minibatch runs (--batch-size): a full-batch run draws no sample order"),
    ("run --problem rosenbrock --sampling replacement", "--sampling applies to minibatch runs (--batch-size)"),
    ("run --rng numpy", "--rng applies to minibatch runs (--batch-size)"),
    ("sweep --seed 7", "--seed applies to minibatch runs (--batch-size)"),
    ("run --data-seed 3", "--data-seed is the seed of --noise on the notebook's data: without --noise it changes nothing"),
    ("grads --data-seed 3", "--data-seed is the seed of --noise"),
    ("sweep --problem beale --data-seed 3", "--data-seed is the seed of --noise"),
    ("run --decay-rate 0.5", "--decay-rate applies to --schedule exponential, not constant"),
    ("run --schedule cosine --warmup 3", "--warmup applies to --schedule warmup-cosine, not cosine"),
    ("run --schedule exponential --final-fraction 0.5",
     "--final-fraction applies to --schedule cosine or warmup-cosine, not exponential"),
    ("report --problem rosenbrock --batch-size 4", "--batch-size does not apply to problem 'rosenbrock', which has no "
                                                   "data: its runs are full batch"),
    ("report --problem rosenbrock --seed 7", "--seed does not apply to problem 'rosenbrock'"),
    ("report --problem saddle --data-seed 7", "--data-seed does not apply to problem 'saddle'"),
    ("report --data small.csv --data-seed 3", "--data-seed is the seed of the notebook's noise: your own data (--data) "
                                              "has none"),
    ("landscape --data table.csv --task regression --loss mse", "--loss applies to classification; 'table.csv' is a "
                                                                "regression"),
    ("landscape --data table.csv --sharpness-every 0 --sharpness-of preconditioned",
     "--sharpness-of applies where the sharpness is measured: give --sharpness-every k ≥ 1"),
    # issue 21: the landscape's inputs, its memory (16 GiB available here: test_bad_invocation), the flag typed
    ("landscape --data mnist", "--data file 'mnist' does not exist, and no data set has that name (the data sets: "
                               "digits, iris, diabetes, breast_cancer)"),
    ("landscape --model mlp:100000,100000", "--model asks for 10,007,600,010 parameters on 1,797 examples and a 51² "
                                            "grid: about 388.9 GiB, and 16.0 GiB of memory is available"),
    ("landscape --model mlp:100000", "--model asks for 7,500,010 parameters on 1,797 examples and a 51² grid: about "
                                     "8.3 GiB, and 16.0 GiB of memory is available"),
    ("landscape --model mlp:10000 --epochs 300", "--epochs asks for 750,010 parameters on 1,797 examples, 3 runs of "
                                                 "300 steps and a 51² grid: about 30.2 GiB"),  # 15.1 kept + 15.1 PCA
    ("landscape --data two.csv --model mlp:4 --grid 5 --sharpness-every 0 --optimizers gd --lr 0.1 --epochs 1",
     "--plane 'pca' needs at least 3 points on the paths in all; 1 run(s) of 1 step(s) have 2: train longer, add a "
     "run, or choose the 'random' or 'hessian' plane"),
    ("compare --optimizers foo", "--optimizers must be one of 'gd'"),
    ("sweep --optimizers gd,optax:nope", "--optimizers 'optax:nope': optax has no optimizer named 'nope'"),
]


def _snapshot(d: Path) -> dict:
    """Every file (its bytes), folder and link under ``d``."""
    return {str(p.relative_to(d)): "link" if p.is_symlink() else p.read_bytes() if p.is_file() else "folder"
            for p in sorted(d.rglob("*"))}


def _id(cmd) -> str:
    text = cmd if isinstance(cmd, str) else " ".join(cmd)
    return ascii(text.replace(LONG, "a*300"))[1:-1]


@pytest.mark.parametrize("cmd,message", BAD, ids=[_id(c) for c, _ in BAD])
def test_bad_invocation(cmd, message, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    for name in FOLDERS:
        (tmp_path / name).mkdir(parents=True)
    for name, target in LINKS.items():
        (tmp_path / name).symlink_to(tmp_path / target)
    before = _snapshot(tmp_path)
    monkeypatch.setattr(jaxgd._checks, "available_memory", lambda: 16 * 2**30)  # the same refusals anywhere
    code, out, err = cli(cmd.split() if isinstance(cmd, str) else cmd)
    assert code == 2, err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""
    assert _snapshot(tmp_path) == before  # nothing created or changed
    assert not Path("/proc/jaxgd-out").exists()


# ----------------------------------------------------------------------------- divergence


def test_diverging_report_completes_without_warnings(tmp_path, cli):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (overflow, invalid value) fails the test
        code, out, err = cli(["report", "--optimizers", "gd,momentum", "--lr", "100", "--epochs", "4", "--grid", "11",
                              "--out", tmp_path, "--no-sweep"])
    assert code == 0 and err == ""
    assert out.count("diverged at step") == 6
    assert max(len(line) for line in out.splitlines()[:-1]) < 130  # no 300-digit numbers (the last line lists files)
    doc = json.loads((tmp_path / "results.json").read_text())  # strict: no NaN / Infinity tokens
    assert all(r["diverged_at"] is not None for r in doc["runs"])
    html = (tmp_path / "report.html").read_text()
    assert html.count("diverged at step") >= 6
    for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]:
        assert "nan" not in line and "inf" not in line


def test_diverged_path_is_drawn_up_to_where_it_left_and_marked():
    p = jaxgd.notebook()
    t = jaxgd.run(p, "gd", lr=1.0, epochs=50)
    k = int(t.diverged_at)
    path = jaxgd.plots.Path.from_trajectory("gd", t)
    g = np.linspace(-8, 8, 11)
    fig = jaxgd.plots.plotly_contour(g, g, jaxgd.loss_surface(p, g, g), [path], slider=False)
    tr = fig.data[-1]
    assert len(tr.x) == k and tr.marker.symbol[-1] == "x" and f"diverged at step {k}" in tr.name


# ----------------------------------------------------------------------------- atomic writes, Ctrl-C


def test_atomic_path_leaves_the_old_file_on_interrupt(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with jio.atomic_path(target) as tmp:
            Path(tmp).write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    jio.write_text_atomic(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def _whole(path: Path) -> bool:
    """Whether ``path`` is a complete file of its kind (JSON parses, an archive or image loads, a page ends)."""
    from PIL import Image

    kind = path.suffix
    if kind == ".json":
        json.loads(path.read_text())
    elif kind == ".npz":
        with np.load(path) as z:
            [z[k] for k in z.files]
    elif kind in (".png", ".gif"):
        Image.open(path).load()
    elif kind == ".html":
        assert path.read_text().rstrip().endswith("</html>"), path
    else:
        assert path.read_text().endswith("\n"), path
    return True


def _wait_for(event, proc, timeout: float = 300) -> bool:
    """True once ``event()`` (the process announced it); False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not event():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # polling for the event, not waiting for time to pass
    return True


# Each command, tiny, with work enough after each stage for the signal to land in it (the report: the
# session's report command with --png --gif, over a copy of its files). The files there before: the
# old ones (placeholders), each of which must stay, or be a whole new one.
SIGNAL_COMMANDS = {
    "run": (["run", "--epochs", "2000", "--batch-size", "1", "--json", "{out}/t.json"], ["t.json"]),
    "sweep": (["sweep", "--epochs", "5", "--num", "5", "--optimizers", "gd,adam", "--out", "{out}"],
              ["sweep.json", "sweep.html", "sweep.png"]),
    "landscape": (["landscape", "--data", "iris", "--model", "mlp:4", "--epochs", "5", "--grid", "5", "--out", "{out}"],
                  ["landscape.json", "landscape.npz", "landscape.html"]),
}
SIGNALS = {signal.SIGINT: (130, "jaxgd: interrupted\n"), signal.SIGTERM: (143, "jaxgd: terminated\n"),
           signal.SIGHUP: (129, "jaxgd: hung up\n")}
# Every stage the command announces (signals.READY_FILE) × both signals, the four commands spread over them
# (eight processes), and SIGHUP (the terminal closed; issue 23: it left the lock and two temporaries) twice: "handlers" lands in the imports, "imported" in the parsing or set-up, "working" in the
# data, compile and run, "lock" (the output folder's lock appears) in the writing.
STAGES = [("handlers", signal.SIGINT, "run"), ("handlers", signal.SIGTERM, "landscape"),
          ("imported", signal.SIGINT, "landscape"), ("imported", signal.SIGTERM, "run"),
          ("working", signal.SIGINT, "report"), ("working", signal.SIGTERM, "sweep"),
          ("lock", signal.SIGINT, "sweep"), ("lock", signal.SIGTERM, "report"),
          ("lock", signal.SIGHUP, "report"), ("imported", signal.SIGHUP, "sweep")]  # (landscape: seconds to its files)


@pytest.mark.parametrize("stage,sig,command", [
    pytest.param(*case, marks=[pytest.mark.xdist_group("cli_report")] if case[2] == "report" else [],
                 id=f"{case[0]}-{signal.Signals(case[1]).name}-{case[2]}") for case in STAGES])
def test_ctrl_c_and_sigterm_exit_with_one_line_and_whole_files(tmp_path, stage, sig, command, monkeypatch, request):
    """The command (caches off) signalled once it announces ``stage`` in ``$JAXGD_READY_FILE``, or while it
    writes its files (the moment its folder's lock appears): never after a sleep, which races the imports
    on a slow machine. One line, 130 or 143, each file the old one or a whole new one, nothing else."""
    out = tmp_path / "out"
    if command == "report":
        shutil.copytree(request.getfixturevalue("cli_report"), out)  # the session's finished report (made first)
    else:
        out.mkdir()
        for f in SIGNAL_COMMANDS[command][1]:
            (out / f).write_text("old\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    ready = tmp_path / "ready"
    monkeypatch.setenv(signals.READY_FILE, str(ready))
    hup = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the child as from a terminal: under nohup (a CI's runner,
    try:                                                 # a test script) it inherits SIGHUP ignored, and keeps it so
        if command == "report":
            proc = request.getfixturevalue("run_report")(out, "--png", "--gif", popen=True)
        else:
            argv = [a.format(out=out) for a in SIGNAL_COMMANDS[command][0]]
            proc = subprocess.Popen([sys.executable, "-m", "jaxgd", *argv], env=dict(os.environ, JAXGD_CACHE_DIR="off"),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGHUP, hup)
    lock = out / jio.LOCK_NAME
    announced = _wait_for(lock.exists if stage == "lock" else
                          lambda: ready.exists() and stage in ready.read_text().split(), proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=300)
    assert announced, f"the command ended before its {stage} event: {stderr}"
    assert (proc.returncode, stderr) == SIGNALS[sig]
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) <= set(after) and all(after[f] == before.get(f) or _whole(out / f) for f in after)
    assert not [f for f in after if f.startswith(".")]  # no temporary file left, no lock


def _signal_after(monkeypatch, module, name):
    """``module.name`` (a function) raises SIGINT just after it first returns: the handler runs there. Once
    only: a later call (anything in this process, until the test ends) must not send a stray SIGINT."""
    real, sent = getattr(module, name), []

    def then_signal(*args, **kwargs):
        out = real(*args, **kwargs)
        if not sent:
            sent.append(True)
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(module, name, then_signal)


@pytest.mark.parametrize("where", ["temporary", "atomic temporary", "lock"])
def test_an_interrupt_as_a_file_is_made_leaves_nothing(tmp_path, monkeypatch, where):
    """Ctrl-C the moment a temporary file or the folder's lock is made (before its name is kept for the
    clean-up): the file is removed all the same, the old file kept."""
    import fcntl
    import tempfile

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    _signal_after(monkeypatch, *((fcntl, "flock") if where == "lock" else (tempfile, "mkstemp")))
    with pytest.raises(KeyboardInterrupt), signals.as_exceptions():
        if where == "atomic temporary":
            jio.write_text_atomic(out / "a.txt", "new")
        else:
            jio.write_all(out, {"a.txt": jio.text_writer("new")})
    assert [(p.name, p.read_text()) for p in out.iterdir()] == [("a.txt", "old")]


class _Dropping:
    """Where Python drops an exception: its ``__del__``, and (``callback``) a garbage-collection callback."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)  # runs the handler here: a KeyboardInterrupt raised here is dropped

    @staticmethod
    def callback(phase, info):
        gc.callbacks.remove(_Dropping.callback)
        signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("where", ["gc-callback", "__del__"])
def test_an_interrupt_python_would_drop_still_stops_the_command(where):
    """Ctrl-C handled where Python drops exceptions (JAX's garbage-collection callback runs at every
    collection, and most signals in its imports landed there) comes again until it lands in the
    command's code: else the command would go on, and finish with exit 0."""
    with pytest.raises(KeyboardInterrupt), signals.as_exceptions():
        if where == "gc-callback":
            gc.callbacks.append(_Dropping.callback)
            gc.collect()
        else:
            _Dropping()  # dropped at once: its __del__ runs
        threading.Event().wait(60)  # the signal again, from a thread: it interrupts this wait


def test_a_dropped_interrupt_is_not_sent_again_after_the_block():
    """A Ctrl-C dropped just as the command's block ends is not sent again into the caller's code (there
    it raised at random, e.g. in another library's garbage-collection callback, and was dropped again)."""
    seen = []
    old = signal.signal(signal.SIGINT, lambda *a: seen.append("SIGINT"))
    try:
        with signals.as_exceptions():
            _Dropping()  # its __del__'s KeyboardInterrupt is dropped: sent again in 20 ms, from a thread
        assert signals._sent.wait(60)  # the thread has decided
        for _ in range(1000):  # a pending signal runs its handler within these bytecodes
            pass
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen == []


def test_a_signal_ends_the_wait_for_one_long_call_at_once():
    """A command's work runs on a thread of its own (signals.on_a_thread): Ctrl-C raises in the main thread
    while the work is still inside one call that nothing interrupts (here a wait, as an XLA call), and
    ``stop`` is set, so the work's next callback (signals.unless) ends it."""
    release, stops = threading.Event(), []
    main = threading.main_thread().ident

    def work(stop):
        stops.append(stop)
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C while this "call" runs
        release.wait(60)
        signals.unless(stop)()  # the next callback

    try:
        with pytest.raises(KeyboardInterrupt), signals.as_exceptions():
            signals.on_a_thread(work)
        assert not release.is_set() and stops[0].is_set()  # raised without waiting for the call; stop set
        with pytest.raises(KeyboardInterrupt):
            signals.unless(stops[0], lambda *a: pytest.fail("called after stop"))(1, 2)
    finally:
        release.set()
    assert signals.on_a_thread(lambda stop: 7) == 7
    with pytest.raises(ValueError, match="raised in the work"):
        signals.on_a_thread(lambda stop: (_ for _ in ()).throw(ValueError("raised in the work")))


def test_leaving_removes_another_threads_temporary(tmp_path, monkeypatch):
    """The process leaves by os._exit while another thread writes a cache entry (its work goes on after
    Ctrl-C): jaxgd.__main__.leave removes that thread's temporary file, and no new one is made."""
    monkeypatch.setattr(jio, "_leaving", False)  # put back after the test: this process goes on
    inside, release, errors = threading.Event(), threading.Event(), []

    def writer():
        try:
            with jio.atomic_path(tmp_path / "entry") as tmp:
                Path(tmp).write_text("half")
                inside.set()
                release.wait(60)
        except jio.OutputError as e:
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert inside.wait(60) and len(list(tmp_path.iterdir())) == 1
        jio.remove_temporaries()
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(jio.OutputError, match="leaving"), jio.atomic_path(tmp_path / "other"):
            pass
    finally:
        release.set()
        t.join(60)
    assert list(tmp_path.iterdir()) == [] and len(errors) == 1  # its rename failed: no entry, nothing left


# ----------------------------------------------------------------------------- determinism


def test_jax_orders_are_identical_across_processes():
    code = ("import json, sys, numpy as np, jaxgd;"
            "o = jaxgd.sample_order(51, 8, 3, 'shuffle', 'jax', 11);"
            "r = jaxgd.sample_order(51, 4, 2, 'replacement', 'jax', 11);"
            "json.dump([np.asarray(o.idx).tolist(), np.asarray(r.idx).tolist()], sys.stdout)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    here = [np.asarray(jaxgd.sample_order(51, 8, 3, "shuffle", "jax", 11).idx).tolist(),
            np.asarray(jaxgd.sample_order(51, 4, 2, "replacement", "jax", 11).idx).tolist()]
    assert json.loads(r.stdout) == here


@pytest.mark.xdist_group("cli_report")
def test_same_command_twice_gives_identical_files(tmp_path, cli_report, run_report):
    again = tmp_path / "again"
    run_report(again)  # the session's report command, once more in a new process
    assert (cli_report / "metrics.csv").read_bytes() == (again / "metrics.csv").read_bytes()
    assert (cli_report / "results.json").read_bytes() == (again / "results.json").read_bytes()
    with np.load(cli_report / "results.npz") as za, np.load(again / "results.npz") as zb:
        assert za.files == zb.files
        for k in za.files:
            np.testing.assert_array_equal(za[k], zb[k])


# ----------------------------------------------------------------------------- fuzz

P = jaxgd.notebook()
NAMES = ["gd", "momentum", "rmsprop", "adam", "nesterov", "optax:sgd", "sgd", "", "optax:nope"]
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-3, 3),
                    st.sampled_from(["0.1", None, True]))


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _valid(optimizer, lr, epochs, batch_size, init, sampling, rng):
    return (optimizer in NAMES[:6] and (lr is None or _is_number(lr) and lr > 0)  # None: the default lr
            and isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1
            and (batch_size is None or (isinstance(batch_size, int) and 1 <= batch_size <= 51))
            and isinstance(init, tuple) and len(init) == 2 and all(_is_number(v) for v in init)
            and sampling in ("shuffle", "replacement") and rng in ("jax", "numpy"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(optimizer=st.sampled_from(NAMES), lr=numbers, epochs=st.sampled_from([0, 1, 2, -1, 1.5, "2"]),
       batch_size=st.sampled_from([None, 0, 1, 8, 51, 52, -1]),
       init=st.one_of(st.tuples(numbers, numbers), st.tuples(numbers), st.just(None)),
       sampling=st.sampled_from(["shuffle", "replacement", "random"]), rng=st.sampled_from(["jax", "numpy", "torch"]))
def test_fuzz_run(optimizer, lr, epochs, batch_size, init, sampling, rng):
    init_arg = (-4.0, -7.0) if init is None else init
    if _valid(optimizer, lr, epochs, batch_size, init_arg, sampling, rng):
        t = jaxgd.run(P, optimizer, lr=lr, epochs=epochs, batch_size=batch_size, init=init_arg, sampling=sampling,
                      rng=rng)
        k = int(t.diverged_at)
        finite = np.isfinite(np.asarray(t.loss)) & np.isfinite(np.asarray(t.params.w))
        assert (k == -1 and finite.all()) or (0 <= k <= t.steps and finite[:k].all())
    else:
        with pytest.raises((ValueError, TypeError)):
            jaxgd.run(P, optimizer, lr=lr, epochs=epochs, batch_size=batch_size, init=init_arg, sampling=sampling,
                      rng=rng)


@settings(max_examples=30, deadline=None)
@given(lrs=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=4),
       opt=st.sampled_from(["gd", "adam", "bogus"]), final_only=st.booleans())
def test_fuzz_sweep(lrs, opt, final_only):
    valid = opt != "bogus" and len(lrs) > 0 and all(math.isfinite(v) and v > 0 for v in lrs)
    if valid:
        r = sweep(P, opt, lr=np.array(lrs), epochs=2, final_only=final_only)
        div = np.asarray(r.diverged_at)
        loss = np.asarray(r.loss[:, -1])
        assert div.shape == (len(lrs),) and np.all((div >= 0) | np.isfinite(loss))
    else:
        with pytest.raises((ValueError, TypeError)):
            sweep(P, opt, lr=np.array(lrs), epochs=2, final_only=final_only)


@settings(max_examples=30, deadline=None)
@given(w=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=5),
       b=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5))
def test_fuzz_loss_surface(w, b):
    if w and all(math.isfinite(v) for v in w):
        S = np.asarray(jaxgd.loss_surface(P, w, b))
        assert S.shape == (len(w), len(b)) and np.all((S >= 0) | ~np.isfinite(S))
    else:
        with pytest.raises(ValueError):
            jaxgd.loss_surface(P, w, b)


# ----------------------------------------------------------------------------- memory and time

MEMINFO = "MemTotal:       24683784 kB\nMemFree:          209716 kB\nMemAvailable:   22020096 kB\nCached: 21000000 kB\n"


@pytest.mark.parametrize("cgroup,files,gib", [
    (None, {}, 21.0),  # no cgroup file: MemAvailable (21 GiB), not MemFree (0.2 GiB)
    ("0::/user/me\n", {"user/me/memory.max": "max\n", "user/me/memory.current": "1073741824\n"}, 21.0),
    ("0::/user/me\n", {"user/me/memory.max": "4294967296\n", "user/me/memory.current": "1073741824\n",
                       "user/me/memory.stat": "anon 1\ninactive_file 536870912\n"}, 3.5),  # 4 − 1 + 0.5 droppable
    ("0::/a/b\n", {"a/memory.max": "2147483648\n", "a/memory.current": "1073741824\n",
                   "a/b/memory.max": "max\n", "a/b/memory.current": "0\n"}, 1.0),  # an enclosing group's limit
    ("5:memory:/job\n1:cpu:/\n", {"memory/job/memory.limit_in_bytes": "3221225472\n",
                                  "memory/job/memory.usage_in_bytes": "1073741824\n"}, 2.0),  # cgroup v1
    ("5:memory:/job\n", {"memory/job/memory.limit_in_bytes": "9223372036854771712\n",
                         "memory/job/memory.usage_in_bytes": "5\n"}, 21.0),  # v1's "no limit"
    ("0::/x\n", {"x/memory.max": "garbage\n", "x/memory.current": "1\n"}, 21.0),  # unreadable: ignored
])
def test_available_memory_reads_memavailable_and_the_cgroup_limit(tmp_path, monkeypatch, cgroup, files, gib):
    from jaxgd import _checks

    (tmp_path / "meminfo").write_text(MEMINFO)
    for name, text in files.items():
        (tmp_path / "cg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "cg" / name).write_text(text)
    if cgroup is not None:
        (tmp_path / "cgroup").write_text(cgroup)
    monkeypatch.setattr(_checks, "MEMINFO", str(tmp_path / "meminfo"))
    monkeypatch.setattr(_checks, "CGROUP", str(tmp_path / "cgroup"))
    monkeypatch.setattr(_checks, "CGROUP_ROOT", str(tmp_path / "cg"))
    assert _checks.available_memory() == int(gib * 2**30)
    _checks.check_fits("grid", int(gib * 2**29), "half of it")
    with pytest.raises(jaxgd.ArgumentError, match=rf"^grid asks for a test: about 1,024\.0 GiB, and {gib:.1f} GiB of "
                                                  "memory is available$"):
        _checks.check_fits("grid", 2**40, "a test")


def test_available_memory_without_meminfo_falls_back_to_free_pages(tmp_path, monkeypatch):
    from jaxgd import _checks

    monkeypatch.setattr(_checks, "MEMINFO", str(tmp_path / "missing"))
    monkeypatch.setattr(_checks, "CGROUP", str(tmp_path / "missing"))
    monkeypatch.setattr(os, "sysconf", lambda k: {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}[k])
    assert _checks.available_memory() == 4096 * 1000


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_error_left_by_a_signal_still_says_the_signal(tmp_path, capsys, sig):
    """A clean-up that fails as the signal's exception unwinds the work (a ValueError from a file closed
    under a writer: a report signalled as it wrote its files under load, exit 1 with a traceback) gives
    the signal's line and code; the same error with no signal behind it is not hidden."""
    from jaxgd.app import terminal

    def command():
        f = open(tmp_path / "a.bin", "wb")
        try:
            raise KeyboardInterrupt() if sig == signal.SIGINT else signals.Terminated(sig)
        finally:
            f.close()
            f.write(b"late")  # ValueError: I/O operation on closed file

    old = {s: signal.getsignal(s) for s in signals.LINES}
    try:
        code = terminal.run_command(command, False, None)
    finally:  # stopped() ignores later signals (the process ends next): put this process's handlers back
        for s, h in old.items():
            signal.signal(s, h)
    assert (code, capsys.readouterr().err) == SIGNALS[sig]

    def plain():
        raise ValueError("I/O operation on closed file")

    with pytest.raises(ValueError, match="closed file"):
        terminal.run_command(plain, False, None)
