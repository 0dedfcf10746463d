"""The top k Hessian eigenvalues along a run (``sharpness_k``, issue 25): against the dense eigenvalues
at every measured step, under sweep, saved and loaded, of one leaf on a subset of the examples, and the
argument checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxgd
from helpers import iris_mlp_problem

pytestmark = pytest.mark.xdist_group("sharpness_top_k")  # its module fixtures are made once

EVERY, STEPS, K = 3, 12, 3


@pytest.fixture(scope="module")
def small():
    """A 4-10-3 tanh MLP (83 parameters) on 60 iris flowers, cross-entropy."""
    return iris_mlp_problem()


@pytest.fixture(scope="module")
def swept(small):
    """Two learning rates in one sweep, the top 3 every 3 steps."""
    return jaxgd.sweep(small, "gd", lr=[0.5, 0.8], epochs=STEPS, sharpness_every=EVERY, sharpness_k=K,
                       sharpness_tol=1e-6)


@pytest.fixture(scope="module")
def ran(small):
    return jaxgd.run(small, "gd", lr=0.5, epochs=STEPS, sharpness_every=EVERY, sharpness_k=K, sharpness_tol=1e-6)


def _dense(problem, path):
    """The eigenvalues (descending) of the dense Hessian at each point of ``path`` (leading axis)."""
    def eig(params):
        flat, unravel = ravel_pytree(params)
        return jnp.linalg.eigvalsh(jax.hessian(lambda f: problem.loss_fn(unravel(f), problem.data, None))(flat))[::-1]

    return np.asarray(jax.jit(jax.vmap(eig))(path))


def test_top_k_along_a_run_equals_dense_eigvalsh(small, ran, problem):
    t = ran
    top = np.asarray(t.top_eigenvalues)
    assert top.shape == (STEPS, K)
    measured = np.arange(STEPS) % EVERY == 0
    lam = _dense(small, jax.tree.map(lambda a: a[:STEPS][measured], t.params))[:, :K]
    np.testing.assert_allclose(top[measured], lam, rtol=1e-6)
    assert np.all(np.diff(lam, axis=1) < -1e-3 * lam[:, :1])  # three distinct eigenvalues: a real test of the order
    assert np.isnan(top[~measured]).all()
    np.testing.assert_array_equal(np.asarray(t.sharpness)[measured], top[measured, 0])
    hvps = np.asarray(t.sharpness_hvps)
    assert (hvps[measured] >= K).all() and (hvps[~measured] == 0).all()
    assert jaxgd.run(problem, "gd", epochs=2, sharpness_every=1).top_eigenvalues is None  # not asked for


def test_top_k_under_sweep_equals_run(small, ran, swept, tmp_path):
    """The sweep's run at lr 0.5 has the run's top k (up to rounding); saved and loaded, the field
    round-trips, and split cuts it with the rest."""
    assert swept.top_eigenvalues.shape == (2, STEPS, K)
    np.testing.assert_allclose(swept.top_eigenvalues[0], ran.top_eigenvalues, rtol=1e-9)
    swept.save(tmp_path / "t.npz")
    back = jaxgd.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.top_eigenvalues, swept.top_eigenvalues)
    runs = jaxgd.runs.split(swept, "gd")
    np.testing.assert_array_equal(runs[1].top_eigenvalues, swept.top_eigenvalues[1])
    last = jaxgd.sweep(small, "gd", lr=[0.5, 0.8], epochs=STEPS - 2, sharpness_every=EVERY, sharpness_k=K,
                       sharpness_tol=1e-6, final_only=True)  # the last step, 9, is measured
    np.testing.assert_allclose(last.top_eigenvalues[:, 0], swept.top_eigenvalues[:, STEPS - 3], rtol=1e-9)


def test_top_k_of_one_leaf_on_a_subset(small):
    """sharpness_leaf and sharpness_examples: the top 2 of the first weight matrix's diagonal block of the
    Hessian of the loss on every third example, against the dense block, at every measured step."""
    idx = np.arange(0, 60, 3)
    t = jaxgd.run(small, "gd", lr=0.5, epochs=7, sharpness_every=EVERY, sharpness_k=2, sharpness_tol=1e-6,
                  sharpness_examples=idx, sharpness_leaf="layer00/w")
    sizes = [int(np.size(a)) for a in jax.tree.leaves(small.init)]  # layer00/b (10), layer00/w (40), ...
    block = slice(sizes[0], sizes[0] + sizes[1])

    def eig(params):
        flat, unravel = ravel_pytree(params)
        H = jax.hessian(lambda f: small.loss_fn(unravel(f), tuple(a[idx] for a in small.data), None))(flat)
        return jnp.linalg.eigvalsh(H[block, block])[::-1][:2]

    at = jax.tree.map(lambda a: a[:7:EVERY], t.params)
    np.testing.assert_allclose(t.top_eigenvalues[::EVERY], jax.jit(jax.vmap(eig))(at), rtol=1e-6)


@pytest.mark.parametrize("kw,match", [
    (dict(sharpness_k=2), "^sharpness_k needs sharpness_every"),
    (dict(sharpness_every=1, sharpness_k=0), "^sharpness_k "),
    (dict(sharpness_every=1, sharpness_k=6, sharpness_iters=5), "^sharpness_k "),
    (dict(sharpness_every=1, sharpness_k=3), "^sharpness_k "),  # more than the 2 parameters
    (dict(sharpness_leaf=0), "^sharpness_leaf needs sharpness_every"),
    (dict(sharpness_every=1, sharpness_leaf="nope"), "^sharpness_leaf must be one of the leaves"),
    (dict(sharpness_every=1, sharpness_leaf=0, sharpness_k=2), "^sharpness_k "),  # the leaf is one number
    (dict(sharpness_every=1, sharpness_examples=[0, 51]), r"^sharpness_examples must be .* in \[0, 51\)"),
    (dict(sharpness_every=1, sharpness_examples=[]), "^sharpness_examples must be a non-empty"),
])
def test_bad_sharpness_k(problem, kw, match):
    for call in (jaxgd.run, jaxgd.sweep):
        with pytest.raises(jaxgd.ArgumentError, match=match):
            call(problem, "gd", epochs=2, **kw)
