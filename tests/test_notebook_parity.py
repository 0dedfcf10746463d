"""Every number the notebook printed, and every point of its trajectories (float64, rtol 1e-12)."""

import numpy as np
import pytest

import jaxgd
from jaxgd import Params
from jaxgd.app.summary import notebook_seed1_init

import helpers as ref

RTOL = 1e-12


def test_data_is_the_notebooks(problem):
    x, y = problem.data
    np.testing.assert_array_equal(np.asarray(x), ref.X)
    np.testing.assert_array_equal(np.asarray(y), ref.Y)
    assert x.dtype == np.float64


def test_surface_matches_notebook_loops(problem):
    g = np.linspace(-8, 8, num=101)
    S = np.asarray(jaxgd.loss_surface(problem, g, g))
    assert S.shape == (101, 101)
    np.testing.assert_allclose(S[100, 100], 337.0, rtol=RTOL)
    np.testing.assert_allclose(S, ref.surface_loops(g, g), rtol=RTOL, atol=0)


def test_printed_losses(problem):
    x, y = problem.data
    np.testing.assert_allclose(float(jaxgd.mse(Params(1.6, -0.6), x, y)), 14.346666666666668, rtol=RTOL)
    p1 = notebook_seed1_init()
    assert p1 == (6.497381454652967, -2.4470256546003015)
    np.testing.assert_allclose(float(jaxgd.mse(p1, x, y)), 204.96590137022957, rtol=RTOL)


def test_one_gd_step_from_seed1(problem):
    t = jaxgd.run(problem, "gd", lr=1e-4, epochs=1, init=notebook_seed1_init())
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)],
                               [6.489585993464901, -2.4459362494693813], rtol=RTOL)


def _assert_trajectory(t, ws, bs, losses, batch_losses):
    np.testing.assert_allclose(np.asarray(t.params.w), ws, rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(np.asarray(t.params.b), bs, rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(np.asarray(t.loss), losses, rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(np.asarray(t.batch_loss), batch_losses, rtol=RTOL, atol=1e-13)


def test_batch_gd(problem):
    t = jaxgd.run(problem, "gd", lr=5e-2, epochs=20)
    assert t.steps == 20
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)], [2.0, 1.7842334540943074], rtol=RTOL)
    _assert_trajectory(t, *ref.gd_loop([np.arange(51)] * 20, 5e-2))


def test_sgd(problem):
    t = jaxgd.run(problem, "gd", lr=1e-2, epochs=2, batch_size=1, sampling="replacement", rng="numpy", seed=2)
    assert t.steps == 102
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)],
                               [1.9310482368920623, 1.7996401386377476], rtol=RTOL)
    _assert_trajectory(t, *ref.gd_loop(ref.notebook_sgd_batches(2, 2), 1e-2))


def test_minibatch(problem):
    t = jaxgd.run(problem, "gd", lr=5e-2, epochs=2, batch_size=8, sampling="shuffle", rng="numpy", seed=1)
    assert t.steps == 14
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)],
                               [2.527263422032023, 1.0189900205136884], rtol=RTOL)
    batches = ref.notebook_minibatches(1, 2)
    assert [len(b) for b in batches] == [8] * 6 + [3] + [8] * 6 + [3]
    _assert_trajectory(t, *ref.gd_loop(batches, 5e-2))


def test_numpy_rng_leaves_global_state_alone(problem):
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    jaxgd.run(problem, "gd", epochs=1, batch_size=8, rng="numpy", seed=1)
    assert np.random.rand() == expected


@pytest.mark.parametrize("rule", ["gd", "momentum", "nesterov", "rmsprop", "adam"])
@pytest.mark.parametrize("batch_size,sampling,seed", [(None, "shuffle", 0), (1, "replacement", 2), (8, "shuffle", 1)])
def test_every_rule_against_notebook_style_loops(problem, rule, batch_size, sampling, seed):
    """The filled-in cells: each rule, each sampling mode, every point, against a NumPy loop."""
    epochs = 3
    t = jaxgd.run(problem, rule, lr=0.03, epochs=epochs, batch_size=batch_size, sampling=sampling,
                  rng="numpy", seed=seed)
    if batch_size is None:
        batches = [np.arange(51)] * epochs
    elif sampling == "replacement":
        batches = ref.notebook_sgd_batches(seed, epochs)
    else:
        batches = ref.notebook_minibatches(seed, epochs, batch_size)
    _assert_trajectory(t, *ref.gd_loop(batches, 0.03, rule=rule))
