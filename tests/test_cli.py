"""The CLI: JSON output, human output, argument errors (exit 2, one line on stderr)."""

import json
import subprocess
import sys

import numpy as np

import jaxgd


def test_run_json_to_stdout_matches_the_api(cli):
    code, out, err = cli(["run", "--optimizer", "adam", "--lr", "0.1", "--epochs", "2", "--batch-size", "8",
                           "--rng", "numpy", "--seed", "1", "--init=-4,-7", "--json", "-"])
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"optimizer", "config", "final", "params", "loss", "batch_loss", "diverged_at"}
    assert doc["optimizer"] == "adam" and doc["diverged_at"] is None
    assert doc["config"]["steps"] == 14 and doc["config"]["hyper"] == {"b1": 0.9, "b2": 0.999, "eps": 1e-8}
    t = jaxgd.run(jaxgd.notebook(), "adam", lr=0.1, epochs=2, batch_size=8, rng="numpy", seed=1)
    np.testing.assert_array_equal(doc["params"]["w"], np.asarray(t.params.w))
    np.testing.assert_array_equal(doc["loss"], np.asarray(t.loss))
    assert len(doc["batch_loss"]) == 14 and doc["final"]["w"] == float(t.final.w)


def test_run_json_is_strict_when_diverged(tmp_path, cli):
    path = tmp_path / "t.json"
    code, out, err = cli(["run", "--lr", "2", "--epochs", "400", "--json", str(path)])
    assert code == 0 and "diverged at step" in out
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    k = doc["diverged_at"]
    assert isinstance(k, int) and k > 0
    assert doc["loss"][k] > 1e6 * doc["loss"][0] and doc["loss"][-1] is None  # overflowed by step 400
    assert not list(tmp_path.glob(".*tmp"))


def test_run_prints_a_summary(cli):
    code, out, err = cli(["run", "--epochs", "20", "--lr", "0.05"])
    assert code == 0
    assert "gd: 20 steps on cpu (float64) -> W = 2.0, b = 1.784233454094307" in out
    assert "finite throughout" in out


def test_json_to_a_missing_folder_is_refused_before_running(tmp_path, cli):
    code, out, err = cli(["run", "--json", str(tmp_path / "nope" / "t.json")])
    assert code == 2 and "--json cannot write" in err and out == ""


def test_grads_command(cli):
    code, out, err = cli(["grads", "--grid", "11"])
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


def test_a_long_report_off_a_terminal_says_what_it_is_doing(tmp_path, monkeypatch, cli):
    from jaxgd.app import terminal as cli_module

    monkeypatch.setattr(cli_module, "LONG_REPORT_STEPS", 1)  # every report counts as long
    code, out, err = cli(["report", "--optimizers", "gd", "--epochs", "1", "--grid", "5", "--no-sweep",
                          "--out", tmp_path / "r"])
    assert code == 0, err
    lines = err.splitlines()
    assert lines[0] == "jaxgd: computing 3 runs (59 steps)"  # 1 + 51 + 7
    assert lines[-2] == "jaxgd: runs 100 % done (59 of 59 steps)" and lines[-1] == f"jaxgd: writing {tmp_path / 'r'}"
    monkeypatch.setattr(cli_module, "LONG_REPORT_STEPS", 10**9)
    code, out, err = cli(["report", "--optimizers", "gd", "--epochs", "1", "--grid", "5", "--no-sweep",
                          "--out", tmp_path / "r"])
    assert code == 0 and err == ""  # a short report stays quiet


def test_the_command_thins_the_full_data_loss_only_past_its_budget_and_says_so(tmp_path, cli, monkeypatch):
    # issue 21: a budget of 510 example evaluations on the notebook's 51 points (10 losses a run) stands
    # for 10⁸ on big data: the run measures steps 0, 6, ..., 48 and the last, says so in one line, records 6
    monkeypatch.setattr(jaxgd.runs, "LOSS_BUDGET", 510)
    code, out, err = cli(["run", "--batch-size", "1", "--epochs", "1", "--json", "-"])
    assert code == 0 and err.count("\n") == 1
    assert "jaxgd: 51 examples: the full-data loss of the run every 6 steps (NaN between; --loss-every to choose)" in err
    doc = json.loads(out)
    assert doc["config"]["loss_every"] == 6
    assert [t for t, v in enumerate(doc["loss"]) if v is not None] == [0, 6, 12, 18, 24, 30, 36, 42, 48, 51]
    code, out, err = cli(["run", "--batch-size", "1", "--epochs", "1", "--loss-every", "6", "--json", "-"])
    assert code == 0 and err == "" and json.loads(out)["loss"] == doc["loss"]  # asked for: no line
    code, out, err = cli(["sweep", "--batch-size", "1", "--epochs", "1", "--num", "2", "--optimizers", "gd",
                          "--no-png", "--out", tmp_path / "s"])
    assert code == 0 and "of each run every 6 steps" in err and err.count("\n") == 1
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["config"]["loss_every"] == 6


def test_a_four_row_csv_report_takes_minibatches_that_fit_and_thins_by_run(tmp_path, cli, monkeypatch):
    csv = tmp_path / "four.csv"
    csv.write_text("0,1\n1,3\n2,5\n3,8\n")
    monkeypatch.setattr(jaxgd.runs, "LOSS_BUDGET", 20)  # 5 losses of 4 examples a run
    code, out, err = cli(["report", "--data", csv, "--optimizers", "gd", "--no-sweep", "--grid", "5",
                          "--out", tmp_path / "out"])
    assert code == 0, err
    lines = err.splitlines()
    assert "jaxgd: --data has 4 examples: the minibatch mode takes batches of 3 (--batch-size to choose)" in lines
    # gd's presets: SGD 2 epochs of 4 steps (every 2nd of 8), minibatch 2 epochs of 2 steps (4 steps: every one)
    assert "jaxgd: 4 examples: the full-data loss of the SGD (batch 1) runs every 2 steps (NaN between" in err
    assert len(lines) == 2 and "minibatch (batch 3) runs every" not in err
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["config"]["batch_size"] == 3
    rows = {r["mode"]: r for r in doc["runs"]}
    assert [(m, rows[m]["batch_size"], rows[m]["steps"], rows[m]["loss_every"]) for m in ("full", "sgd", "minibatch")] == [
        ("full", None, 20, 1), ("sgd", 1, 8, 2), ("minibatch", 3, 4, 1)]
    assert [v is None for v in rows["sgd"]["loss"]] == [t % 2 == 1 for t in range(9)]
    assert "minibatch (batch 3)" in (tmp_path / "out" / "report.html").read_text()
