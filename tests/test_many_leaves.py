"""Parameter trees of many leaves run on one flat vector (:func:`jaxgd.engine.flat`): the same
numbers as the model written with one leaf, a compiled program that does not grow with the leaves,
and the tree kept wherever one vector could change a number (a user's optimizer, mixed dtypes)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import engine, runs

pytestmark = pytest.mark.xdist_group("many_leaves")

N = 300  # leaves of the tree model (scalars), features of the linear model
SMALL = 20  # leaves of the small one (still run flat: at least engine.FLAT_LEAVES)
M = 24  # examples
OPTIMIZERS = [o for o in engine.ELEMENTWISE if o != "newton"]  # gd, momentum, nesterov, rmsprop, adam
rng = np.random.default_rng(0)
X = rng.normal(size=(M, N)) / np.sqrt(N)
Y = X @ rng.normal(size=N) + 0.1 * rng.normal(size=M)


def _tree_loss(p, x, y):
    return (jnp.dot(jnp.stack(p), x) - y) ** 2


def _vector_loss(p, x, y):
    return (jnp.dot(p, x) - y) ** 2


def _problems(n):
    """The linear model on the first ``n`` features: ``n`` scalar leaves, and one ``(n,)`` leaf."""
    start = 0.01 * np.arange(n)
    tree = jaxgd.model_problem(_tree_loss, [jnp.asarray(v) for v in start], (X[:, :n], Y))
    return tree, jaxgd.model_problem(_vector_loss, jnp.asarray(start), (X[:, :n], Y))


@pytest.fixture(scope="module")
def problems():
    return _problems(N)


@pytest.fixture(scope="module")
def small():
    return _problems(SMALL)


def _as_vector(t):
    """A trajectory of the tree model with its points and moments stacked into one last axis."""
    stack = lambda tree: None if tree is None else np.stack([np.asarray(a) for a in tree], axis=-1)
    return t._replace(params=stack(t.params), first_moment=stack(t.first_moment), second_moment=stack(t.second_moment))


def _same(a, b, tol=1e-12):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def test_a_tree_of_300_scalars_moves_as_the_vector_does(problems):
    """``run`` on 300 scalar leaves gives the one-leaf model's trajectory, moments included, to
    1e-12, as the tree it went in as (NumPy arrays, cut into leaves after the compiled call);
    scanned in chunks for a progress bar, the same bits."""
    tree, vector = problems
    one = jaxgd.run(tree, "adam", lr=0.05, epochs=4)
    assert isinstance(one.params, list) and len(one.params) == N
    assert all(isinstance(v, np.ndarray) and v.shape == (5,) and v.dtype == np.float64 for v in one.params)
    _same(_as_vector(one), jaxgd.run(vector, "adam", lr=0.05, epochs=4))
    chunked = jaxgd.run(tree, "adam", lr=0.05, epochs=4, chunk=2)
    for x, y in zip(jax.tree.leaves(one), jax.tree.leaves(chunked)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert np.asarray(one.model()[7]) == np.asarray(one.params[7][-1])


def test_every_elementwise_optimizer_in_a_sweep(small):
    """Every built-in elementwise optimizer in one sweep (minibatches of 7: a ragged last batch),
    with the sharpness preconditioned by adam's and rmsprop's P, and newton in a run: the 20-leaf
    tree's trajectories are the one-leaf model's to 1e-12, as host arrays in the tree."""
    tree, vector = small
    kw = dict(lr=0.05, epochs=3, batch_size=7, sharpness_every=2, sharpness_of="preconditioned")
    a = jaxgd.sweep(tree, OPTIMIZERS, **kw)
    assert isinstance(a.params, list) and a.params[0].shape == (len(OPTIMIZERS), 3 * 4 + 1)
    assert isinstance(a.second_moment[0], np.ndarray)
    _same(_as_vector(a), jaxgd.sweep(vector, OPTIMIZERS, **kw))
    assert np.all(np.isfinite(a.sharpness[:, ::2]))
    newton = [jaxgd.run(p, "newton", lr=0.5, epochs=2, damping=0.1) for p in (tree, vector)]
    _same(_as_vector(newton[0]), newton[1])


def _seen(problem, optimizer="gd", **kw):
    """``(arrays in, arrays out, the scan's carry)`` of the compiled program that ``jaxgd.run`` calls."""
    got = []

    def hook(jitted, name, statics, *args):  # traced, not compiled: it stops the run
        jaxpr = jax.make_jaxpr(lambda *a: jitted(*statics, *a))(*args)
        scan = next(e for e in jaxpr.jaxpr.eqns[0].params["jaxpr"].eqns if e.primitive.name == "scan")
        got.append((len(jax.tree.leaves(args)), len(jaxpr.jaxpr.outvars), scan.params["num_carry"]))
        raise StopIteration

    engine.set_compiled_call(hook)
    try:
        with pytest.raises(StopIteration):
            jaxgd.run(problem, optimizer, lr=0.05, epochs=2, **kw)
    finally:
        engine.set_compiled_call(None)
    return got[0]


def test_the_compiled_program_does_not_grow_with_the_leaves(small):
    """The arrays the compiled run takes and returns, and those its scan carries, are as many for
    20 leaves as for 40 (on the tree each leaf added its own: 3 outputs a leaf for adam)."""
    small, large = small[0], _problems(2 * SMALL)[0]
    for opt in ("gd", "adam"):
        assert _seen(small, opt) == _seen(large, opt)
    assert _seen(small, "adam", sharpness_every=1) == _seen(large, "adam", sharpness_every=1)


def test_a_users_optimizer_and_a_small_tree_keep_their_trees(small):
    """A built optax transformation sees the tree it was written for (it may mask, or take norms,
    per leaf); so does a tree below FLAT_LEAVES leaves, and one of mixed dtypes."""
    tree = small[0]
    seen = []

    def update(g, state, params=None):
        seen.append(jax.tree.structure(g))
        return jax.tree.map(lambda v: -0.05 * v, g), state

    mine = jaxgd.run(tree, optax.GradientTransformation(lambda p: optax.EmptyState(), update), epochs=2)
    assert seen and all(s == jax.tree.structure(tree.init) for s in seen)
    _same(mine.params, jaxgd.run(tree, "gd", lr=0.05, epochs=2).params)

    static = runs._plan(runs.check_run_args(tree, "gd", 0.1, 2))[0]
    few = [jnp.zeros(2)] * (engine.FLAT_LEAVES - 1)
    mixed = [jnp.zeros(2, jnp.float32)] + [jnp.zeros(2)] * engine.FLAT_LEAVES
    for init in (few, mixed):
        assert engine.flat(static, init) == (static, init)
    flat_static, vec = engine.flat(static, tree.init)
    assert isinstance(flat_static.loss_fn, engine.Flat) and vec.shape == (20,)


def test_leaves_of_several_shapes_come_back_as_they_went_in():
    """Runs of equal shapes are cut as blocks (Flat.unravel_host): every leaf's values, its shape and
    its place in the tree, against the same run of the tree raveled by hand; and the default start,
    raveled once per problem (Problem.checked_init), gives the numbers of that start passed anew."""
    from jax.flatten_util import ravel_pytree

    shapes = [(3,), (3,), (2, 2), (), (), (1, 3)] * 4  # 24 leaves: every kind of run of shapes
    init = {f"k{i:02d}": jnp.asarray(0.1 * np.arange(np.prod(s, dtype=int)).reshape(s) + i) for i, s in enumerate(shapes)}
    x = rng.normal(size=(M, sum(int(np.prod(s)) for s in shapes)))
    v0, unravel = ravel_pytree(init)
    tree = jaxgd.model_problem(lambda p, x_i, y_i: (ravel_pytree(p)[0] @ x_i - y_i) ** 2, init, (x, Y))
    one = jaxgd.model_problem(lambda v, x_i, y_i: (v @ x_i - y_i) ** 2, v0, (x, Y))
    t, ref = jaxgd.run(tree, "adam", lr=0.01, epochs=3), jaxgd.run(one, "adam", lr=0.01, epochs=3)
    for part in ("params", "first_moment", "second_moment"):
        got, want = getattr(t, part), jax.vmap(unravel)(getattr(ref, part))
        assert jax.tree.structure(got) == jax.tree.structure(want)
        for k in init:
            assert got[k].shape == want[k].shape == (len(getattr(ref, part)), *init[k].shape), k
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14)
    again = jaxgd.run(tree, "adam", lr=0.01, epochs=3, init={k: v + 0 for k, v in init.items()})
    back = jaxgd.run(tree, "adam", lr=0.01, epochs=3)  # the cached start after another start
    for a, b, c in zip(jax.tree.leaves(t.params), jax.tree.leaves(again.params), jax.tree.leaves(back.params)):
        assert np.array_equal(a, b) and np.array_equal(a, c)
