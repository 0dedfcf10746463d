"""Bring your own optimizer: an optax factory (``optax.lion``, a user's chain) or a built
transformation as ``optimizer=``, in run, sweep, sharpness runs and check_run_args — equal to a
hand-written optax loop, compiled once, refused in one line when wrong."""

from functools import partial

import jax
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import jaxgd
from jaxgd import engine
from jaxgd.data import numpy_order


def clipped_momentum(learning_rate, momentum):
    """A user's rule: clip the gradient's global norm to 1, then optax's heavy ball."""
    return optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(learning_rate, momentum=momentum))


FACTORIES = [(optax.lion, "b1", [0.8, 0.95]), (clipped_momentum, "momentum", [0.5, 0.9])]


def hand_loop(problem, factory, lr, hyper, steps, order=None):
    """The reference: optax's own loop, step by step in Python, of ``factory(lr, **hyper)`` — the
    points ``(T+1, n)`` it visits. Each step is optax's update, jitted once per factory with the
    numbers traced (an eager step recompiled every op for every new lr: most of this file's time)."""
    params = problem.init
    state = factory(lr, **hyper).init(params)
    points = [np.asarray(ravel_pytree(params)[0])]
    for t in range(steps):
        if order is None:
            batch, mask = problem.data, None
        else:
            batch, mask = tuple(a[order.idx[t]] for a in problem.data), order.mask[t]
        params, state = _hand_step(factory, problem.loss_fn, lr, hyper, params, state, batch, mask)
        points.append(np.asarray(ravel_pytree(params)[0]))
    return np.stack(points)


@partial(jax.jit, static_argnums=(0, 1))
def _hand_step(factory, loss_fn, lr, hyper, params, state, batch, mask):
    """One step of optax's loop: ``tx.update`` of the gradient, ``optax.apply_updates``."""
    g = jax.grad(loss_fn)(params, batch, mask)
    updates, state = factory(lr, **hyper).update(g, state, params)
    return optax.apply_updates(params, updates), state


def run_points(t, r):
    """Run ``r``'s points of a sweep, ``(T+1, n)``."""
    return np.stack([np.asarray(leaf)[r] for leaf in jax.tree.leaves(t.params)], axis=-1)


@pytest.mark.parametrize("factory,name,values", FACTORIES, ids=["lion", "chain"])
def test_a_sweep_of_16_lrs_by_2_equals_optax_by_hand(problem, factory, name, values):
    lrs = np.geomspace(1e-3, 0.5, 16)
    t = jaxgd.sweep(problem, factory, lr=lrs[:, None], epochs=12, **{name: np.array(values)[None, :]})
    assert t.params.w.shape == (32, 13)
    for r, (lr, v) in enumerate((lr, v) for lr in lrs for v in values):
        ref = hand_loop(problem, factory, lr, {name: v}, 12)
        np.testing.assert_allclose(run_points(t, r), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("factory,name,values", FACTORIES, ids=["lion", "chain"])
def test_a_minibatch_sweep_equals_optax_by_hand_on_the_same_order(problem, factory, name, values):
    lrs = np.array([0.003, 0.03])
    t = jaxgd.sweep(problem, factory, lr=lrs[:, None], epochs=2, batch_size=8, rng="numpy", seed=3,
                    **{name: np.array(values)[None, :]})
    order = numpy_order(3, problem.num_examples, 8, 2, "shuffle")
    for r, (lr, v) in enumerate((lr, v) for lr in lrs for v in values):
        ref = hand_loop(problem, factory, lr, {name: v}, 14, order)
        np.testing.assert_allclose(run_points(t, r), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("factory,name,values", FACTORIES, ids=["lion", "chain"])
def test_the_same_factory_in_run_sweep_sharpness_and_check_run_args(problem, factory, name, values):
    h = {name: values[0]}
    one = jaxgd.run(problem, factory, lr=0.02, epochs=10, **h)
    many = jaxgd.sweep(problem, factory, lr=np.array([0.02, 0.05]), epochs=10, **h)
    sharp = jaxgd.run(problem, factory, lr=0.02, epochs=10, sharpness_every=3, **h)
    cfg = jaxgd.runs.check_run_args(problem, factory, 0.02, 10, hyper=h, sharpness_every=3)  # as the landscape app
    seen = []
    checked = jaxgd.runs.run_checked(cfg, chunk=5, callback=lambda done, total: seen.append(done))  # one program
    built = jaxgd.run(problem, factory(0.02, **h), epochs=10)  # the transformation, built by the user
    for t in (sharp, checked, built, jaxgd.runs.split(many, factory)[0]):
        np.testing.assert_allclose(run_points(t, slice(None)), run_points(one, slice(None)), rtol=1e-12, atol=1e-12)
    assert np.isfinite(sharp.sharpness[::3]).all() and np.isnan(sharp.sharpness[1::3]).all()
    np.testing.assert_array_equal(checked.sharpness, sharp.sharpness)
    assert seen[-1] == 10 and cfg.optimizer is factory
    # the moments the optimizer keeps are recorded: the chain's optax trace, none for lion's state
    assert (one.first_moment is None) == (factory is optax.lion) and one.second_moment is None


@pytest.mark.parametrize("factory,name,values", FACTORIES, ids=["lion", "chain"])
def test_a_second_call_with_new_numbers_does_not_recompile(problem, factory, name, values):
    jaxgd.run(problem, factory, lr=0.01, epochs=5, **{name: values[0]})
    n = engine.run_compiled._cache_size()
    jaxgd.run(problem, factory, lr=0.04, epochs=5, **{name: values[1]})
    assert engine.run_compiled._cache_size() == n
    jaxgd.sweep(problem, factory, lr=np.geomspace(1e-3, 1e-1, 4), epochs=5, **{name: values[0]})
    n = engine.sweep_compiled._cache_size()
    b = jaxgd.sweep(problem, factory, lr=np.geomspace(2e-3, 2e-1, 4), epochs=5, **{name: np.array(values * 2)})
    assert engine.sweep_compiled._cache_size() == n
    assert np.isfinite(b.loss).all()


def _raises(learning_rate):
    raise RuntimeError("this rule is not ready\nsecond line")


BAD = [
    (dict(optimizer=optax.lion, bogus=1.0), TypeError,
     ("optimizer factory optax.lion rejected its arguments: it takes no argument 'bogus' "
      r"\(its hyperparameters: b1, b2, mask, mu_dtype, weight_decay\)")),
    (dict(optimizer=clipped_momentum, momentum=0.9, beta=0.9), TypeError, "it takes no argument 'beta'"),
    (dict(optimizer=optax.lion, learning_rate=0.1), TypeError,
     "learning_rate is optax.lion's learning rate: pass it as lr"),
    (dict(optimizer=optax.lion(0.1), lr=0.1), ValueError,
     "lr must not be given with a built optax GradientTransformation"),
    (dict(optimizer=optax.lion(0.1), b1=0.5), TypeError, "b1 cannot be set on a built optax GradientTransformation"),
    (dict(optimizer=_raises), ValueError, "optimizer factory _raises raised RuntimeError: this rule is not ready$"),
    (dict(optimizer=lambda learning_rate: 3), ValueError,
     "optimizer factory <lambda> returned int, not an optax GradientTransformation"),
    (dict(optimizer=lambda learning_rate, m: optax.sgd(learning_rate) if m > 0 else None, m=0.5), TypeError,
     "used a traced hyperparameter as a Python number"),
    (dict(optimizer=lambda lr: optax.sgd(lr)), ValueError, "factory <lambda> is not an optimizer taking learning_rate"),
    (dict(optimizer=optax.lion, b1="x"), TypeError, r"b1 must be a number \(optax.lion's default is 0.9\), got 'x'"),
]


@pytest.mark.parametrize("kw,exc,match", BAD, ids=[str(i) for i in range(len(BAD))])
@pytest.mark.parametrize("door", ["run", "sweep"])
def test_clear_one_line_errors(problem, door, kw, exc, match):
    call = jaxgd.run if door == "run" else jaxgd.sweep
    with pytest.raises(exc, match=match) as e:
        call(problem, epochs=2, **kw)
    assert "\n" not in str(e.value)


def test_a_factory_runs_alone_in_a_sweep(problem):
    with pytest.raises(ValueError, match="a factory or a GradientTransformation is the only optimizer of its sweep"):
        jaxgd.sweep(problem, ["adam", optax.lion], lr=0.01, epochs=2)
