"""Sweeps: run i equals run(), broadcasting, final_only, theory's stability limit, sharding."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import divergence_boundary, lr_scan, sweep
from jaxgd import theory


CASES = [
    ("gd", {}, dict(batch_size=None)),
    ("momentum", {"beta": np.array([0.5, 0.9, 0.95])}, dict(batch_size=8, sampling="shuffle")),
    ("adam", {"b1": np.array([0.8, 0.9, 0.85])}, dict(batch_size=1, sampling="replacement")),
    ("rmsprop", {}, dict(batch_size=8, sampling="shuffle", rng="numpy")),
    ("optax:adamw", {"weight_decay": np.array([0.0, 1e-3, 1e-2])}, dict(batch_size=8)),
]


@pytest.mark.parametrize("opt,hyper,mode", CASES, ids=[c[0] for c in CASES])
def test_run_i_equals_run(problem, opt, hyper, mode):
    lrs = np.array([0.01, 0.05, 0.2])
    seeds = np.array([0, 1, 5])
    init = (np.array([-4.0, 0.0, 5.0]), np.array([-7.0, 1.0, -2.0]))
    t = sweep(problem, opt, lr=lrs, epochs=3, init=init, seed=seeds, **mode, **hyper)
    assert t.params.w.shape[0] == 3
    for i in range(3):
        h = {k: float(v[i]) for k, v in hyper.items()}
        r = jaxgd.run(problem, opt, lr=float(lrs[i]), epochs=3, init=(init[0][i], init[1][i]), seed=int(seeds[i]),
                      **mode, **h)
        for u, v in zip(jax.tree.leaves(t), jax.tree.leaves(r)):
            np.testing.assert_allclose(np.asarray(u)[i], np.asarray(v), rtol=1e-12, atol=1e-12)


def test_final_only_matches_the_full_sweep(problem):
    lrs = np.geomspace(1e-3, 3.0, 9)
    full = sweep(problem, "momentum", lr=lrs, epochs=40, batch_size=8)
    fin = sweep(problem, "momentum", lr=lrs, epochs=40, batch_size=8, final_only=True)
    assert type(fin) is type(full) and fin.params.w.shape == fin.loss.shape == fin.batch_loss.shape == (9, 1)
    assert fin.steps == full.steps == 40 * 7 and fin.first_moment.w.shape == (9, 1)
    for a, b in ((fin.final.w, full.final.w), (fin.loss[:, -1], full.loss[:, -1]),
                 (fin.batch_loss[:, -1], full.batch_loss[:, -1]), (fin.first_moment.b[:, -1], full.first_moment.b[:, -1])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(fin.diverged_at), np.asarray(full.diverged_at))
    assert np.asarray(fin.diverged_at).max() > 0  # the largest lrs diverge, and the step agrees


def test_broadcasting_and_errors(problem):
    t = sweep(problem, "gd", lr=np.array([0.01, 0.02]), seed=3, epochs=2, final_only=True)
    assert t.loss.shape == (2, 1)
    with pytest.raises(ValueError, match="one common length"):
        sweep(problem, "gd", lr=np.array([0.01, 0.02]), seed=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="lr must hold finite numbers > 0, got -0.1 at index 1"):
        sweep(problem, "gd", lr=np.array([0.01, -0.1]))
    with pytest.raises(ValueError, match=r"beta must hold finite numbers in \[0.0, 1.0\), got 1.0 at index 0"):
        sweep(problem, "momentum", lr=0.1, beta=np.array([1.0, 0.5]))
    with pytest.raises(TypeError, match="seed must be a number or a 1-D array of integers"):
        sweep(problem, "gd", seed=np.array([0.5]))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        sweep(problem, "gd", lr=np.ones((0,)))
    # columns of more axes broadcast as NumPy's and flatten to R runs (C order)
    t2 = sweep(problem, "gd", lr=np.array([[0.01], [0.02]]), seed=np.array([3, 4]), epochs=2, final_only=True)
    assert t2.loss.shape == (4, 1)
    np.testing.assert_array_equal(t2.loss[[0, 2]], t.loss)


def test_stability_limit_is_where_gd_starts_to_diverge(problem):
    th = theory(problem)
    x = np.asarray(problem.data[0])
    lam_max = 2 * np.mean(x**2)  # the closed form: H = 2·diag(mean(x²), 1) as mean(x) = 0
    np.testing.assert_allclose(th.stability_limit, 2 / lam_max, rtol=1e-12)
    np.testing.assert_allclose(th.eigenvalues, [2.0, lam_max], rtol=1e-12)
    lrs = th.stability_limit * np.geomspace(0.8, 1.25, 46)
    sc = lr_scan(problem, ["gd"], lrs, epochs=3000)
    d = sc.diverged_at["gd"] >= 0
    below, above = lrs < th.stability_limit, lrs > th.stability_limit
    assert not d[below].any() and d[above].all()
    bnd = divergence_boundary(lrs, sc.diverged_at["gd"])
    assert th.stability_limit < bnd < th.stability_limit * 1.011  # the first lr past the limit
    assert np.all(sc.final_loss["gd"][below] < 1e-6)


# sets `out`: run in this process and in subprocesses
SHARDED = textwrap.dedent("""
    import jax, numpy as np, jaxgd
    p = jaxgd.notebook()
    lrs = np.geomspace(1e-3, 1.0, 10)  # 10 runs: not a multiple of 4, so padding is used
    t = jaxgd.sweep(p, "adam", lr=lrs, epochs=4, batch_size=8, seed=np.arange(10))
    f = jaxgd.sweep(p, "adam", lr=lrs, epochs=4, batch_size=8, seed=np.arange(10), final_only=True)
    out = {"devices": jax.device_count(), "w": np.asarray(t.params.w).tolist(), "loss": np.asarray(f.loss).tolist()}
""")


def _sharded_numbers(n: int) -> dict:
    """SHARDED's ``out`` on ``n`` CPU devices, in a subprocess (float64)."""
    code = 'import jax\njax.config.update("jax_enable_x64", True)\n' + SHARDED + "import json, sys\njson.dump(out, sys.stdout)\n"
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_sharded_sweep_equals_one_device():
    """4 CPU devices in a subprocess: the same numbers as on one device — this process, where it has
    one CPU device (as under ``make test``; a second subprocess cost 4 s), else a subprocess."""
    if jax.device_count() == 1 and jax.default_backend() == "cpu":
        one = {}
        exec(SHARDED, one)
        one = one["out"]
    else:
        one = _sharded_numbers(1)
    four = _sharded_numbers(4)
    assert one["devices"] == 1 and four["devices"] == 4
    np.testing.assert_allclose(four["w"], one["w"], rtol=1e-12)
    np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-12)


def test_cli_sweep(tmp_path, cli):
    code, out, err = cli(["sweep", "--optimizers", "gd,adam", "--num", "25", "--epochs", "300", "--out", tmp_path])
    assert code == 0, err
    assert "2/λmax = 0.115385" in out and "gd" in out
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert len(doc["sweep"]["lrs"]) == 25 and set(doc["sweep"]["optimizers"]) == {"gd", "adam"}
    assert doc["sweep"]["optimizers"]["gd"]["divergence_boundary"] > doc["sweep"]["stability_limit"]
    assert (tmp_path / "sweep.html").exists() and (tmp_path / "sweep.png").exists()
