"""jaxgd.budget: work is bounded from below by its flops, measured only past a minute of that bound,
and refused past an hour unless the caller goes on; the commands refuse before any work (issue 23)."""

import math

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import budget
from jaxgd._checks import ArgumentError


@pytest.fixture(scope="module")
def nb():
    return jaxgd.notebook()


def test_the_optimistic_bound_counts_flops_a_least_step_and_a_least_loop(nb):
    n, m = 2, 51
    assert nb.num_params == n and nb.num_examples == m
    lane = lambda b: max(6 * n * b / budget.FAST_FLOPS, budget.FAST_STEP)  # noqa: E731  (612 flops: the least step)
    assert budget.optimistic(nb, [(300, 100, None), (2, 10, 8)]) == pytest.approx(
        100 * 300 * lane(m) + 10 * budget.FAST_LOOP, rel=1e-15)  # 300 lanes: 3e-6 s a step; 2 lanes: the loop's least
    model = jaxgd.models.mlp((1, 1))
    big = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (np.zeros((10**6, 1)), np.zeros(10**6)))
    assert budget.optimistic(big, [(1, 5, None)]) == pytest.approx(5 * 6 * 2 * 10**6 / budget.FAST_FLOPS, rel=1e-15)


def test_no_probe_below_a_minute(nb, monkeypatch):
    monkeypatch.setattr(budget, "probe", lambda *a: pytest.fail("probed"))
    assert budget.seconds(nb, [(121, 100, None)]) == (budget.optimistic(nb, [(121, 100, None)]), False)
    assert budget.check(nb, [(121, 100, None)], "epochs") is None


def test_past_an_hour_is_refused_unless_going_on(nb, monkeypatch):
    seen = []
    monkeypatch.setattr(budget, "probe", lambda p, b, lanes: seen.append((b, lanes)) or 1e-6)
    work = [(1000, 10**7, None), (1000, 10**7, None), (1, 10**4, 8)]  # 2·10¹⁰·1e-6 s + 0.01 s
    assert budget.seconds(nb, work) == (pytest.approx(20_000.01, rel=1e-12), True)
    assert seen == [(None, 1000), (8, 1)]  # one probe per batch and lane count
    with pytest.raises(ArgumentError, match=r"^epochs asks for about 5\.6 h of work \(20,000,010,000 run-steps, "
                                            r"estimated on this machine\): past an hour, give --yes to go on$"):
        budget.check(nb, work, "epochs", how="give --yes to go on")
    assert budget.check(nb, work, "epochs", go_on=True).startswith("about 5.6 h of work")
    assert budget.check(nb, [(1000, 3 * 10**6, None)], "epochs") is None  # 3,000 s: under the hour


def test_the_probe_measures_a_lane_step(nb):
    s = budget.probe(nb, None, 4)
    assert 1e-9 <= s < 0.1 and math.isfinite(s)
    assert budget.probe(nb, 8, 10**6) > 0  # lanes capped at PROBE_LANES; a batch of 8


def test_the_commands_refuse_before_any_work(cli, monkeypatch, tmp_path):
    monkeypatch.setattr(budget, "probe", lambda *a: 1e-6)
    monkeypatch.setattr(jaxgd.runs, "sweep", lambda *a, **k: pytest.fail("ran"))
    monkeypatch.setattr(jaxgd.runs, "run_checked", lambda *a, **k: pytest.fail("ran"))
    code, out, err = cli(["sweep", "--num", "100000", "--epochs", "100000", "--out", tmp_path / "s"])
    assert code == 2 and out == "" and err == ("jaxgd: error: --epochs asks for about 11.1 h of work (40,000,000,000 "
                                               "run-steps, estimated on this machine): past an hour, give --yes to go on\n")
    monkeypatch.setattr(budget, "MINUTE", 0.0)  # the notebook's runs are never a minute at the optimistic speed: probe
    monkeypatch.setattr(budget, "probe", lambda *a: 1e-3)
    code, out, err = cli(["run", "--epochs", "200000", "--batch-size", "1"])
    assert code == 2 and out == "" and err == ("jaxgd: error: --epochs asks for about 2.8 h of work (10,200,000 "
                                               "run-steps, estimated on this machine): past an hour, give --yes to go on\n")
    code, out, err = cli(["report", "--epochs", "20000", "--no-sweep", "--out", tmp_path / "r"])
    assert code == 2 and err.startswith("jaxgd: error: --epochs asks for about 79 min of work (4,720,000 run-steps")
    code, out, err = cli(["compare", "--budget", "100000", "--quick", "--out", tmp_path / "c"])
    assert code == 2 and err.startswith("jaxgd: error: --budget asks for about ") and "go on with --yes" in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_library_entries_refuse_before_compiling_unless_going_on(nb, monkeypatch):
    monkeypatch.setattr(budget, "MINUTE", 0.0)
    monkeypatch.setattr(budget, "probe", lambda *a: 1.0)  # a second a lane-step: 3,601 steps pass the hour
    calls = []
    real = jaxgd.engine.compiled_call
    monkeypatch.setattr(jaxgd.engine, "compiled_call", lambda jitted, name, *a: calls.append(name) or real(jitted, name, *a))
    for entry in (lambda **k: jaxgd.run(nb, "adam", lr=0.1, epochs=3601, **k),
                  lambda **k: jaxgd.sweep(nb, "gd", lr=[0.01, 0.02], epochs=1801, **k),
                  lambda **k: jaxgd.lr_scan(nb, ["gd"], [0.01, 0.02], epochs=1801, **k),
                  lambda **k: jaxgd.flows.flow("gradient", nb, lr=0.01, steps=3601, **k)):
        with pytest.raises(ArgumentError, match=r"^epochs asks for about 60 min of work \(3,60[12] run-steps, "
                                                r"estimated on this machine\): past an hour, pass go_on=True$"):
            entry()
        assert "run" not in calls and "sweep" not in calls  # refused before compiling
    t = jaxgd.run(nb, "adam", lr=0.1, epochs=3601, go_on=True)
    monkeypatch.setattr(budget, "probe", lambda *a: 1e-9)
    assert np.array_equal(np.asarray(t.loss), np.asarray(jaxgd.run(nb, "adam", lr=0.1, epochs=3601).loss))
    s = jaxgd.sweep(nb, "gd", lr=[0.01, 0.02], epochs=1801, go_on=True)
    assert s.loss.shape == (2, 1802) and np.all(np.isfinite(s.loss))
    with pytest.raises(jaxgd.ArgumentTypeError, match="^go_on must be True or False, got 1$"):
        jaxgd.run(nb, epochs=1, go_on=1)


def test_the_report_counts_its_basins(cli, monkeypatch, tmp_path):
    """himmelblau's basins run 201² starts per optimizer for the runs' steps: 4·10⁹ run-steps at
    --epochs 50000 (over an hour at a probed 1e-6 s a lane-step), where the runs alone are 0.1 s."""
    from jaxgd.app import config, report
    monkeypatch.setattr(budget, "MINUTE", 0.0)
    monkeypatch.setattr(budget, "probe", lambda *a: 1e-6)
    monkeypatch.setattr(report, "compute", lambda *a, **k: pytest.fail("ran"))
    code, out, err = cli(["report", "--problem", "himmelblau", "--optimizers", "gd,adam", "--epochs", "50000",
                          "--out", tmp_path / "r"])
    points, epochs = report.sweep_shape(config.ReportConfig())
    steps = 2 * 201**2 * 50000 + 2 * 50000 + 2 * points * epochs
    assert code == 2 and out == "" and err.startswith("jaxgd: error: --epochs asks for about ") and \
        f"({steps:,} run-steps" in err, err
