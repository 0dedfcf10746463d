"""jaxgd.compare: the grid, the budgets in gradient evaluations, the targets, the statistics
against single runs and brute force, strict JSON, the command, and two processes of
jax.distributed giving the numbers of one. One small comparison is shared by the module."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
from jax.flatten_util import ravel_pytree
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import comparison

pytestmark = pytest.mark.xdist_group("compare")  # its module fixtures are made once (make test: --dist loadgroup)

TASKS = ("ill_conditioned", "quadratic_noisy")
BUDGET, SEEDS, NUM_LRS, NUM_SECOND = 24, 3, 3, 2


@pytest.fixture(scope="module")
def cmp():
    """gd, momentum and newton (one union per task; newton's step costs 1 + n evaluations) and a
    factory of the user's (optax.lion, its own call), 3 lrs × 2 second values × 3 seeds."""
    return jaxgd.compare(TASKS, {"gd": "gd", "momentum": "momentum", "newton": "newton", "lion": optax.lion},
                         second={"lion": ("b1", (0.8, 0.95))}, seeds=SEEDS, budget=BUDGET, num_lrs=NUM_LRS,
                         num_second=NUM_SECOND, lr_range=(1e-2, 1.0), n_boot=200)


def _start(problem, seed, jitter=0.1):
    """The seed's start, written out: θ₀ + jitter·rms(θ₀)·z, z ~ N(0, I) from fold_in(key(2026), seed)."""
    flat, unravel = ravel_pytree(problem.init)
    flat = np.asarray(flat)
    z = np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(2026), seed), flat.shape))
    return unravel(flat + jitter * np.sqrt(np.mean(flat**2)) * z)


def test_every_optimizer_gets_the_same_configurations_and_budget(cmp):
    C = NUM_LRS * NUM_SECOND
    assert cmp.optimizers == ("gd", "momentum", "newton", "lion")
    for o in cmp.optimizers:
        assert cmp.lr[o].shape == (C,) and cmp.final[TASKS[0]][o].shape == (C, SEEDS)
    np.testing.assert_allclose(cmp.lr["gd"], np.geomspace(1e-2, 1.0, C))  # gd: as many lrs instead
    assert np.isnan(cmp.second["gd"]).all() and cmp.second_names["momentum"] == "beta"
    np.testing.assert_allclose(np.unique(cmp.second["lion"]), (0.8, 0.95))
    n = 2  # ill_conditioned's parameters: newton's Hessian charged as n gradient evaluations
    assert cmp.costs["ill_conditioned"] == {"gd": 1, "momentum": 1, "newton": 1 + n, "lion": 1}
    assert cmp.evals["ill_conditioned"]["newton"][-1] == (BUDGET // (1 + n)) * (1 + n)
    assert cmp.evals["ill_conditioned"]["gd"][-1] == BUDGET
    assert cmp.meta["runs"] == len(TASKS) * 4 * C * SEEDS


@pytest.mark.parametrize("opt,hyper", [("momentum", "beta"), ("newton", "damping"), ("lion", "b1")])
def test_a_configuration_is_the_single_run_with_its_settings(cmp, opt, hyper):
    task = "ill_conditioned"
    p = jaxgd.ill_conditioned()
    c, s = 4, 2  # a configuration and a seed
    kw = {hyper: float(cmp.second[opt][c])}
    steps = BUDGET // cmp.costs[task][opt]
    t = jaxgd.run(p, optax.lion if opt == "lion" else opt, lr=float(cmp.lr[opt][c]), epochs=steps,
                  init=_start(p, s), **kw)
    loss = np.where(np.arange(steps + 1) >= t.diverged_at if t.diverged_at >= 0 else False, np.inf, t.loss)
    np.testing.assert_allclose(cmp.curves[task][opt][c, s], loss, rtol=1e-12)
    np.testing.assert_allclose(cmp.final[task][opt][c, s], loss[-1], rtol=1e-12)


def test_targets_and_time_to_target_by_brute_force(cmp):
    k = cmp.stats["k"]
    assert k == 2  # ⌈0.6 · 3⌉: AlgoPerf's 3 of 5, scaled
    for task in TASKS:
        f0 = float(comparison._builtin(task, "float64").problem.loss(comparison._builtin(task, "float64").problem.init))
        assert cmp.f_ref[task] == 0.0 and cmp.targets[task] == pytest.approx(1e-2 * f0)
        for o in cmp.optimizers:
            curves, evals = cmp.curves[task][o], cmp.evals[task][o]
            for c in range(curves.shape[0]):
                times = sorted(next((evals[m] for m in range(len(evals)) if curves[c, s, m] <= cmp.targets[task]),
                                    np.inf) for s in range(SEEDS))
                assert cmp.stats["tasks"][task][o]["evals_to_target"][c] == times[k - 1]
    costs = cmp.stats["profile"]["costs"]
    for i, o in enumerate(cmp.optimizers):
        for j, task in enumerate(TASKS):
            assert costs[i, j] == np.min(cmp.stats["tasks"][task][o]["evals_to_target"])
    p = cmp.stats["profile"]
    assert np.all((p["low"] <= p["area"] + 1e-12) & (p["area"] <= p["high"] + 1e-12))


def test_sensitivity_is_the_median_and_quartiles_over_seeds(cmp):
    row = cmp.stats["tasks"]["quadratic_noisy"]["momentum"]
    fin = cmp.final["quadratic_noisy"]["momentum"]
    ok = np.isfinite(fin).all(axis=1)
    assert ok.any()
    np.testing.assert_allclose(row["median"][ok], np.median(fin[ok], axis=1))
    np.testing.assert_allclose(row["q1"][ok], np.quantile(fin[ok], 0.25, axis=1))
    assert row["best_median"] == np.min(row["median"])


def test_seeds_draw_the_noise_of_the_noisy_task(cmp):
    fin = cmp.final["quadratic_noisy"]["gd"]
    assert np.all(np.ptp(fin[np.isfinite(fin).all(axis=1)], axis=1) > 0)


def test_the_document_is_strict_json(cmp):
    doc = json.loads(cmp.to_json())
    assert doc["config"]["budget"] == BUDGET and set(doc["stats"]["tasks"]) == set(TASKS)
    assert len(doc["stats"]["profile"]["area"]) == 4
    assert "Infinity" not in cmp.to_json() and "NaN" not in cmp.to_json()


@pytest.mark.parametrize("kw,name", [({"budget": 0}, "budget"), ({"tasks": ["nope"]}, "tasks"),
                                     ({"optimizers": ["gd", "nope"]}, "optimizer"), ({"seeds": 0}, "seeds"),
                                     ({"second": {"adam": "b1"}, "optimizers": ["gd"]}, "second"),
                                     ({"k": 5, "seeds": 3}, "k"), ({"target": 1.5}, "target")])
def test_bad_arguments_name_themselves(kw, name):
    with pytest.raises(jaxgd.ArgumentError) as e:
        jaxgd.compare(**{"tasks": ["ill_conditioned"], "optimizers": ["gd"], **kw})
    assert e.value.name == name


def test_the_command_writes_the_page_and_strict_json(tmp_path, cli):
    out = tmp_path / "c"
    code, stdout, stderr = cli(["compare", "--tasks", "ill_conditioned", "--optimizers", "gd,momentum", "--num-lrs",
                                "2", "--num-second", "2", "--seeds", "2", "--budget", "12", "--out", str(out)])
    assert code == 0, stderr
    assert "jaxgd compare: 1 tasks × 2 optimizers" in stdout and "profile area to τ = 4" in stdout
    doc = json.loads((out / "compare.json").read_text())
    assert doc["config"]["optimizers"] == ["gd", "momentum"] and doc["meta"]["versions"]["jaxgd"]
    page = (out / "compare.html").read_text()
    assert "performance profiles" in page and 'id="sens-0"' in page


@pytest.mark.parametrize("argv,flag", [(["--budget", "0"], "--budget"), (["--tasks", "nope"], "--tasks"),
                                       (["--lr-min", "1", "--lr-max", "0.1"], "--lr-max")])
def test_the_command_refuses_bad_flags_in_one_line(tmp_path, cli, argv, flag):
    code, stdout, stderr = cli(["compare", "--out", str(tmp_path / "x"), *argv])
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and flag in stderr
    assert not (tmp_path / "x").exists()


WORKER = """
import json, sys
import jax
from jax.flatten_util import ravel_pytree
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
port, pid = sys.argv[1], int(sys.argv[2])
if pid >= 0:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid)
import jaxgd
c = jaxgd.compare(["rosenbrock", "quadratic_noisy"], ["gd", "adam"], seeds=2, budget=10, num_lrs=3, num_second=2,
                  n_boot=50)
print(json.dumps({"processes": jax.process_count(), "devices": jax.device_count(),
                  "final": {t: {o: c.final[t][o].tolist() for o in c.optimizers} for t in c.tasks},
                  "area": c.stats["profile"]["area"].tolist()}, allow_nan=True))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_the_loopback_get_the_numbers_of_one(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(jaxgd.__file__).parent.parent)}
    for _ in range(3):  # the port was free when asked; another process may take it before the coordinator binds it
        port = str(_free_port())
        procs = [subprocess.Popen([sys.executable, str(script), port, str(i)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        if not any(p.returncode and "in use" in e for p, (o, e) in zip(procs, outs)):
            break
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-2000:]
    one = subprocess.run([sys.executable, str(script), "0", "-1"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    single = json.loads(one.stdout.strip().splitlines()[-1])
    for o, _ in outs:
        got = json.loads(o.strip().splitlines()[-1])
        assert got["processes"] == 2 and got["devices"] == 2 and single["processes"] == 1
        for t in single["final"]:
            for opt in single["final"][t]:
                np.testing.assert_allclose(got["final"][t][opt], single["final"][t][opt], rtol=1e-12)
        np.testing.assert_allclose(got["area"], single["area"])


def test_a_tie_is_no_winner_and_no_change():
    full = {"best": {"gd": 0.0, "adam": 0.0, "lion": 1.0}}
    assert comparison.winners(full) == {"gd", "adam"}
    assert not comparison._changed(full, {"best": {"gd": 2.0, "adam": 1.0, "lion": 3.0}})
    assert comparison._changed(full, {"best": {"gd": 2.0, "adam": 1.0, "lion": 0.5}})
    assert comparison.winners({"best": {"gd": np.inf}}) == set()
