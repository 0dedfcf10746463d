"""A sweep's layout (issue 24): all runs vmapped, ``k`` at a time, or one after another in the same
compiled program (:attr:`jaxgd.engine.Static.lanes`, :func:`jaxgd.runs.lane_layout`) — the same
numbers in every layout, and a sweep of one run equal to :func:`jaxgd.run` bit for bit."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import runs
from jaxgd._checks import ArgumentError
from jaxgd.datasets import load
from jaxgd.models import mlp

pytestmark = pytest.mark.xdist_group("lanes")


@pytest.fixture(scope="module")
def net():
    d = load("digits")
    model = mlp((64, 8, 10), "tanh", "classification")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:96], d.y[:96]))


def _same(a, b, rtol):
    for name in a._fields:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64), rtol=rtol, atol=rtol,
                                       err_msg=name)


@pytest.mark.parametrize("case,lanes", [("sharpness", 1), ("minibatch of several lengths", 3), ("optimizers", 2)])
def test_every_layout_gives_the_same_numbers(net, case, lanes):
    """One after another; a block of three and the remainder of two; blocks of two and one left."""
    kw = {"sharpness": dict(optimizer="gd", lr=[0.05, 0.2, 0.5, 1.0, 2.0], epochs=12, sharpness_every=3),
          "minibatch of several lengths": dict(optimizer="adam", lr=0.01, epochs=[1, 2, 2, 3, 1], batch_size=[16, 32, 16, 8, 96],
                                               seed=[0, 1, 2, 3, 4]),
          "optimizers": dict(optimizer=["gd", "momentum", "adam", "rmsprop", "nesterov"], lr=[0.5, 0.1, 0.01, 0.01, 0.1],
                             epochs=10)}[case]
    ref = jaxgd.sweep(net, **kw, lanes=0)
    _same(jaxgd.sweep(net, **kw, lanes=lanes), ref, 1e-12)
    assert np.all(np.isfinite(ref.loss[:, 0]))


@pytest.mark.parametrize("kw", [dict(optimizer="gd", lr=0.5, epochs=20),
                                dict(optimizer="adam", lr=0.01, epochs=8, sharpness_every=2),
                                dict(optimizer="momentum", lr=0.1, epochs=2, batch_size=16, sampling="replacement")])
def test_a_sweep_of_one_run_is_the_run_bit_for_bit(net, kw):
    r, s = jaxgd.run(net, **kw), jaxgd.sweep(net, **kw)
    for name in r._fields:
        x, y = getattr(r, name), getattr(s, name)
        assert (x is None) == (y is None), name
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            assert np.array_equal(np.asarray(u), np.asarray(v)[0], equal_nan=True), name


def test_the_rule():
    nb, d, model = jaxgd.notebook(), load("digits"), mlp((64, 8, 10), "tanh", "classification")
    net = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:512], d.y[:512]))
    static = lambda p, **kw: runs.stack(p, "gd", [0.1, 0.2], 2, **kw).static  # noqa: E731
    assert static(nb).lanes == 0 and static(nb, sharpness=(1, 20, 1e-4)).lanes == 0  # 612 flops a lane-step
    assert 6 * net.num_params * 512 > runs.LANE_FLOPS  # 610 parameters on 512 examples
    assert static(net).lanes == 0 and static(net, sharpness=(1, 20, 1e-4)).lanes == 1
    assert static(net, sharpness=(1, 20, 1e-4), batch_size=8).lanes == 0  # a lane-step on 8 examples: 3·10⁴ flops
    assert runs.stack(net, "gd", 0.1, 2).static.lanes == 1  # one run: the run's program
    assert runs.stack(net, "gd", [0.1, 0.2], 2, lanes=3).static.lanes == 3
    with pytest.raises(ArgumentError, match="^lanes must be an integer >= 0, got -1$"):
        jaxgd.sweep(net, "gd", [0.1, 0.2], 2, lanes=-1)
