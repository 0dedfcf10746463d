"""Sharpness along the path: the top Hessian eigenvalue recorded inside the scan, against dense
eigenvalues, under sweep, and the edge of stability (Cohen et al. 2021) reproduced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxgd
from helpers import digits_mse_problem, iris_mlp_problem


def test_the_notebooks_sharpness_is_constant(problem):
    t = jaxgd.run(problem, "momentum", lr=0.05, epochs=3, batch_size=8, sharpness_every=5)
    x = np.asarray(problem.data[0])
    s, h = np.asarray(t.sharpness), np.asarray(t.sharpness_hvps)
    measured = np.arange(t.steps) % 5 == 0
    np.testing.assert_allclose(s[measured], 2 * np.mean(x**2), rtol=1e-12)  # 17.33: H = 2·diag(mean x², 1)
    assert np.isnan(s[~measured]).all() and (h[~measured] == 0).all() and (h[measured] >= 1).all()
    assert jaxgd.run(problem, "gd", epochs=2).sharpness is None


@pytest.fixture(scope="module")
def small():
    """A 4-10-3 tanh MLP (83 parameters) on 60 iris flowers, cross-entropy."""
    return iris_mlp_problem()


def _dense_top(problem, path):
    """The top eigenvalue of the dense Hessian at each point of ``path`` (leaves with a leading axis)."""
    def top(params):
        flat, unravel = ravel_pytree(params)
        return jnp.linalg.eigvalsh(jax.hessian(lambda f: problem.loss_fn(unravel(f), problem.data, None))(flat))[-1]

    return np.asarray(jax.jit(jax.vmap(top))(path))


def test_recorded_sharpness_equals_the_dense_top_eigenvalue(small):
    assert small.num_params <= 500
    t = jaxgd.run(small, "gd", lr=0.5, epochs=40, sharpness_every=4)
    s = np.asarray(t.sharpness)
    dense = _dense_top(small, jax.tree.map(lambda a: a[:40:4], t.params))
    np.testing.assert_allclose(s[::4], dense, rtol=1e-6)
    assert np.isnan(s[1::4]).all()
    assert np.mean(np.asarray(t.sharpness_hvps)[4::4]) < np.asarray(t.sharpness_hvps)[0]  # warm starts are cheaper


def test_sharpness_under_sweep_equals_run(small):
    lrs = np.array([0.1, 1.0])  # the runs' settings are the test above's: its compiled run is reused
    s = jaxgd.sweep(small, "gd", lr=lrs, epochs=40, sharpness_every=4)
    assert s.sharpness.shape == (2, 40)
    for i, lr in enumerate(lrs):
        r = jaxgd.run(small, "gd", lr=float(lr), epochs=40, sharpness_every=4)
        np.testing.assert_allclose(np.asarray(s.sharpness[i]), np.asarray(r.sharpness), rtol=1e-10)


@pytest.mark.parametrize("kw,match", [
    (dict(sharpness_every=-1), "sharpness_every must be an integer >= 0"),
    (dict(sharpness_every=2, sharpness_iters=0), r"sharpness_iters must be an integer in \[1, 10000\]"),
    (dict(sharpness_every=2, sharpness_tol=0.0), r"sharpness_tol must be a finite number in \(0, 1\)"),
])
def test_bad_sharpness_arguments(problem, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        jaxgd.run(problem, **kw)


def test_edge_of_stability():
    """Full-batch gd at lr 0.15: the sharpness first rises (progressive sharpening) from about 10
    to past 2/lr = 13.3 by step 420, then hovers at 2/lr while the loss keeps falling."""
    p = digits_mse_problem()
    lr = 0.15
    t = jaxgd.run(p, "gd", lr=lr, epochs=2000, sharpness_every=20)
    s = np.asarray(t.sharpness)[::20]  # measured at steps 0, 20, 40, ...
    early = s[2:10].min()  # after the first steps' drop
    assert early < 0.9 * 2 / lr  # well below the limit at first ...
    assert s[10:50].max() > 2 / lr  # ... sharpening until it reaches it ...
    late = s[len(s) // 2:]
    assert np.all(np.abs(late - 2 / lr) < 0.1 * 2 / lr)  # ... then settling within 10 % of 2/lr
    assert float(t.loss[-1]) < 0.05 * float(t.loss[0]) and int(t.diverged_at) == -1


@pytest.mark.parametrize("opt", ["gd", "momentum"])
def test_sharpness_limits_are_where_runs_start_to_diverge(opt):
    """On 0.1·a² + 2·b² (λmax = 4): stable just below the limit's learning rate, diverging just above.
    For momentum (EMA form, β = 0.9) the limit 2(1+β)/(lr(1−β)) = 4 at lr = 9.5."""
    from jaxgd.curvature import sharpness_limit

    p = jaxgd.ill_conditioned()
    lr_crit = {"gd": 0.5, "momentum": 9.5}[opt]
    assert sharpness_limit(opt, lr_crit) == pytest.approx(4.0, rel=1e-12)
    t = jaxgd.sweep(p, opt, lr=lr_crit * np.array([0.98, 1.02]), epochs=4000, final_only=True)
    assert list(np.asarray(t.diverged_at) >= 0) == [False, True]
    assert sharpness_limit("adam", 0.1) is None
