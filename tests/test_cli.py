"""The CLI: JSON output, human output, argument errors (exit 2, one line on stderr)."""

import json
import subprocess
import sys

import numpy as np
import pytest

import jaxgd
from jaxgd.cli import main


def call(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_run_json_to_stdout_matches_the_api(capsys, restore_x64):
    code, out, err = call(["run", "--optimizer", "adam", "--lr", "0.1", "--epochs", "2", "--batch-size", "8",
                           "--rng", "numpy", "--seed", "1", "--init=-4,-7", "--json", "-"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"optimizer", "config", "final", "params", "loss", "batch_loss", "diverged_at"}
    assert doc["optimizer"] == "adam" and doc["diverged_at"] is None
    assert doc["config"]["steps"] == 14 and doc["config"]["hyper"] == {"b1": 0.9, "b2": 0.999, "eps": 1e-8}
    t = jaxgd.run(jaxgd.notebook(), "adam", lr=0.1, epochs=2, batch_size=8, rng="numpy", seed=1)
    np.testing.assert_array_equal(doc["params"]["w"], np.asarray(t.params.w))
    np.testing.assert_array_equal(doc["loss"], np.asarray(t.loss))
    assert len(doc["batch_loss"]) == 14 and doc["final"]["w"] == float(t.final.w)


def test_run_json_is_strict_when_diverged(tmp_path, capsys, restore_x64):
    path = tmp_path / "t.json"
    code, out, err = call(["run", "--lr", "2", "--epochs", "400", "--json", str(path)], capsys)
    assert code == 0 and "diverged at step" in out
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    k = doc["diverged_at"]
    assert isinstance(k, int) and k > 0
    assert doc["loss"][k] > 1e6 * doc["loss"][0] and doc["loss"][-1] is None  # overflowed by step 400
    assert not list(tmp_path.glob(".*tmp"))


def test_run_prints_a_summary(capsys, restore_x64):
    code, out, err = call(["run", "--epochs", "20", "--lr", "0.05"], capsys)
    assert code == 0
    assert "gd: 20 steps on cpu (float64) -> W = 2.0, b = 1.784233454094307" in out
    assert "finite throughout" in out


BAD = [
    (["run", "--lr", "abc"], "--lr: invalid float value: 'abc'"),
    (["run", "--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["run", "--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["run", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["run", "--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["run", "--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["run", "--epochs", "2.5"], "--epochs: invalid int value: '2.5'"),
    (["run", "--batch-size", "0"], "--batch-size must be an integer in [1, 51], got 0"),
    (["run", "--batch-size", "52"], "--batch-size must be an integer in [1, 51], got 52"),
    (["run", "--init=1"], "--init: must be two numbers W,b"),
    (["run", "--init=1,2,3"], "--init: must be two numbers W,b"),
    (["run", "--init=a,b"], "--init: must be two numbers W,b"),
    (["run", "--optimizer", "adma"], "--optimizer must be one of 'gd', 'momentum', 'nesterov', 'rmsprop', 'adam'"),
    (["run", "--optimizer", "gd", "--beta", "0.9"], "optimizer 'gd' takes no hyperparameter 'beta'"),
    (["run", "--optimizer", "momentum", "--beta", "1.5"], "--beta must be a finite number in [0.0, 1.0)"),
    (["run", "--sampling", "random"], "--sampling must be one of 'shuffle', 'replacement'; got 'random'"),
    (["run", "--rng", "torch"], "--rng must be one of 'jax', 'numpy'; got 'torch'"),
    (["run", "--dtype", "float16"], "--dtype: invalid choice: 'float16'"),
    (["run", "--seed", "-3"], "--seed must be an integer in [0, 4294967295], got -3"),
    (["run", "--noise", "-1"], "--noise must be a finite number >= 0, got -1.0"),
    (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["grads", "--grid", "1"], "--grid must be an integer >= 2, got 1"),
    (["grads", "--grid", "100000"], "--grid must be at most 4001"),
    (["launch"], "invalid choice: 'launch'"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys, restore_x64):
    code, out, err = call(argv, capsys)
    assert code == 2
    assert out == ""
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_json_to_a_missing_folder_is_refused_before_running(tmp_path, capsys, restore_x64):
    code, out, err = call(["run", "--json", str(tmp_path / "nope" / "t.json")], capsys)
    assert code == 2 and "--json: cannot write" in err and out == ""


def test_grads_command(capsys, restore_x64):
    code, out, err = call(["grads", "--grid", "11"], capsys)
    assert code == 0
    assert "max abs error" in out and "max rel error" in out
    rows = [line for line in out.splitlines() if line.strip() and line.strip()[0] in "-0123456789"]
    assert len(rows) == 5


def test_module_and_float32_in_a_subprocess(tmp_path):
    # python -m jaxgd, in float32 (a fresh process: the flag is set before any array exists)
    path = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "jaxgd", "run", "--dtype", "float32", "--json", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(path.read_text())
    assert doc["config"]["dtype"] == "float32"
    np.testing.assert_allclose(doc["final"]["w"], 2.0, atol=1e-5)
    np.testing.assert_allclose(doc["final"]["b"], 1.7842334540943074, atol=1e-5)
