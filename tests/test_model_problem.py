"""Any parameter pytree: model_problem on small MLPs, against optax's own optimizers driven by a
hand-written loop over the same sample order (float64, 1e-12); sweep equals run; every optimizer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import engine
from jaxgd.datasets import load
from jaxgd.models import mlp, num_params


@pytest.fixture(scope="module")
def regression():
    """A 2-layer tanh MLP (3·16 + 16 + 16 + 1 = 81 parameters) on y = sin(x₀) + x₁x₂ + noise, 64 points."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=64)
    model = mlp((3, 16, 1), "tanh", "regression")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(1)), (x, y), name="mlp-reg")


@pytest.fixture(scope="module")
def classification():
    """A 2-layer MLP on iris (4·12 + 12 + 12·3 + 3 = 99 parameters), softmax cross-entropy."""
    d = load("iris")
    model = mlp((4, 12, 3), "tanh", "classification")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(2)), (d.x, d.y), name="iris")


OPTAX = {  # ours -> the optax optimizer it equals (README, "Optimizer conventions")
    "gd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr * (1 - 0.9), momentum=0.9),
    "adam": lambda lr: optax.adam(lr),
}


def optax_loop(problem, tx, order, steps):
    """optax's optimizer in a Python loop over the given batches (None: the full batch)."""
    @jax.jit
    def step(p, s, batch, mask):
        g = jax.grad(problem.loss_fn)(p, batch, mask)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    p = problem.init
    s = tx.init(p)
    ws = [p]
    for t in range(steps):
        if order is None:
            p, s = step(p, s, problem.data, None)
        else:
            p, s = step(p, s, tuple(a[order.idx[t]] for a in problem.data), order.mask[t])
        ws.append(p)
    return ws


CASES = [("regression", o, 16) for o in OPTAX] + [("classification", "momentum", 16), ("classification", "adam", None)]


@pytest.mark.parametrize("which,opt,batch_size", CASES)
def test_equals_optax_in_a_hand_written_loop(request, which, opt, batch_size):
    problem = request.getfixturevalue(which)
    assert 50 < problem.num_params < 500
    lr = 0.05
    t = jaxgd.run(problem, opt, lr=lr, epochs=3, batch_size=batch_size, seed=4)
    m = problem.num_examples
    order = None if batch_size is None else jaxgd.sample_order(m, batch_size, 3, "shuffle", "jax", 4)
    ws = optax_loop(problem, OPTAX[opt](lr), order, t.steps)
    assert t.steps == (3 if batch_size is None else 3 * -(-m // batch_size))
    for k in (0, 1, t.steps // 2, t.steps):
        ours = jax.tree.map(lambda a: a[k], t.params)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ws[k])):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(t.loss[-1]), float(problem.loss(ws[-1])), rtol=1e-12)


def test_trajectory_shapes_follow_the_parameter_tree(regression):
    t = jaxgd.run(regression, "adam", lr=0.01, epochs=2, batch_size=8)
    T = t.steps
    assert T == 16 and t.num_steps == T
    for leaf, p0 in zip(jax.tree.leaves(t.params), jax.tree.leaves(regression.init)):
        assert leaf.shape == (T + 1, *p0.shape)
    for leaf, p0 in zip(jax.tree.leaves(t.first_moment), jax.tree.leaves(regression.init)):
        assert leaf.shape == (T, *p0.shape)
    assert t.loss.shape == (T + 1,) and t.batch_loss.shape == t.grad_norm.shape == (T,)
    assert jax.tree.structure(t.final) == jax.tree.structure(regression.init)
    assert float(t.loss[-1]) < float(t.loss[0])


def test_sweep_over_lr_equals_run(classification):
    lrs = np.array([0.01, 0.1, 0.5])
    s = jaxgd.sweep(classification, "momentum", lr=lrs, epochs=2, batch_size=30, seed=np.array([0, 1, 2]))
    f = jaxgd.sweep(classification, "momentum", lr=lrs, epochs=2, batch_size=30, seed=np.array([0, 1, 2]),
                    final_only=True)
    for i, lr in enumerate(lrs):
        r = jaxgd.run(classification, "momentum", lr=float(lr), epochs=2, batch_size=30, seed=i)
        for a, b in zip(jax.tree.leaves(s), jax.tree.leaves(r)):
            np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-12, atol=1e-12)
        for a, b in zip(jax.tree.leaves(f.final), jax.tree.leaves(r.final)):
            np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-12, atol=1e-12)


def test_sweep_over_starting_points_of_a_tree(regression):
    """A leaf of init with a leading axis of R gives one run per starting point."""
    p0 = regression.init
    init = jax.tree.map(lambda a: jnp.stack([0.5 * a, a, 2.0 * a]), p0)
    s = jaxgd.sweep(regression, "gd", lr=0.05, epochs=3, init=init)
    for i in range(3):
        r = jaxgd.run(regression, "gd", lr=0.05, epochs=3, init=jax.tree.map(lambda a: a[i], init))
        np.testing.assert_allclose(np.asarray(s.loss[i]), np.asarray(r.loss), rtol=1e-12)


def _nested_loss(p, x, y):
    h = jnp.tanh(p["body"]["dense"]["w"] @ x + p["body"]["dense"]["b"])
    return (jnp.dot(p["head"][0], h) + p["head"][1] - y) ** 2


def test_a_nested_dict_of_parameters_works():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=40)
    p0 = {"body": {"dense": {"w": 0.3 * rng.normal(size=(5, 2)), "b": np.zeros(5)}},
          "head": (0.3 * rng.normal(size=5), np.array(0.0))}
    prob = jaxgd.model_problem(_nested_loss, p0, (x, y), name="nested")
    assert prob.num_params == 10 + 5 + 5 + 1 and prob.num_examples == 40
    t = jaxgd.run(prob, "rmsprop", lr=0.01, epochs=5, batch_size=7, rng="numpy", seed=1)
    assert t.params["body"]["dense"]["w"].shape == (5 * 6 + 1, 5, 2) and int(t.diverged_at) == -1
    assert float(t.loss[-1]) < float(t.loss[0])
    direct = np.mean([_nested_loss(jax.tree.map(jnp.asarray, p0), xi, yi) for xi, yi in zip(x, y)])
    np.testing.assert_allclose(float(t.loss[0]), direct, rtol=1e-12)


@pytest.mark.parametrize("opt,kw", [  # the rules unlike gd/momentum/adam: optax's own state, a Hessian, a line search
    ("optax:adamw", {"weight_decay": 1e-3}), ("newton", {"damping": 1e-3}), ("lbfgs", {}),
])
def test_every_optimizer_runs_on_a_model(regression, opt, kw):
    lr = 1.0 if opt in ("newton", "lbfgs") else 0.01
    t = jaxgd.run(regression, opt, lr=lr, epochs=5, **kw)
    assert int(t.diverged_at) == -1 and float(t.loss[-1]) < float(t.loss[0])


def test_newton_solves_a_linear_model_in_one_step():
    """A linear model with a weight vector and a bias is a quadratic: one Newton step at lr 1."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    prob = jaxgd.model_problem(lambda p, xi, yi: (p["w"] @ xi + p["b"] - yi) ** 2,
                               {"w": np.zeros(4), "b": np.array(0.0)}, (x, y))
    t = jaxgd.run(prob, "newton", lr=1.0, epochs=1)
    A = np.hstack([x, np.ones((30, 1))])
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(t.final["w"]), sol[:4], rtol=1e-10)
    np.testing.assert_allclose(float(t.final["b"]), sol[4], rtol=1e-10, atol=1e-12)


def test_schedules_orders_and_theory_on_a_model(regression):
    sched = optax.cosine_decay_schedule(0.05, decay_steps=24)
    t = jaxgd.run(regression, "momentum", lr=sched, epochs=3, batch_size=8, rng="numpy", seed=2)
    assert t.steps == 24 and int(t.diverged_at) == -1
    th = jaxgd.theory(regression)
    n = num_params(regression.init)
    assert th.hessian.shape == (n, n) and th.eigenvalues.shape == (n,)
    np.testing.assert_allclose(th.hessian, th.hessian.T, atol=1e-12)
    assert th.stability_limit == pytest.approx(2 / th.eigenvalues[-1], rel=1e-12)


def test_the_same_loss_function_does_not_recompile(regression):
    model = mlp((3, 16, 1), "tanh", "regression")  # the same cached function objects
    again = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(9)), regression.data)
    jaxgd.run(regression, "gd", lr=0.01, epochs=2)
    n = engine.run_compiled._cache_size()
    jaxgd.run(again, "gd", lr=0.02, epochs=2)
    assert engine.run_compiled._cache_size() == n


@pytest.mark.parametrize("args,exc,match", [
    (("nope", {"w": np.zeros(2)}, (np.zeros((3, 2)), np.zeros(3))), TypeError, "loss_per_example must be a function"),
    ((_nested_loss, {"w": np.zeros(2)}, [np.zeros((3, 2)), np.zeros(4)]), ValueError,
     "data arrays must share a non-zero leading length"),
    ((_nested_loss, {"w": np.zeros(2)}, np.zeros(3)), TypeError, "data must be a non-empty tuple of arrays"),
    ((_nested_loss, {"w": np.array([np.nan, 0])}, (np.zeros((3, 2)), np.zeros(3))), ValueError,
     r"params0 must be finite, got a non-finite value at \['w'\]"),
    ((_nested_loss, {"w": np.zeros(2)}, (np.zeros((3, 2)), np.zeros(3))), ValueError,
     "loss_per_example failed on params0 and one example"),
    ((lambda p, x, y: p["w"] * x, {"w": np.zeros(2)}, (np.zeros((3, 2)), np.zeros(3))), ValueError,
     r"loss_per_example must return a scalar per example, got shape \(2,\)"),
    # issue 23: an int32 loss trained with zero gradients (a constant loss); a complex one failed inside JAX later
    ((lambda p, x, y: jnp.int32(p["w"] @ x - y), {"w": np.zeros(2)}, (np.zeros((3, 2)), np.zeros(3))), ValueError,
     r"loss_per_example must return a real floating-point scalar \(its gradient is taken\), got dtype int32"),
    ((lambda p, x, y: (p["w"] @ x - y) * 1j, {"w": np.zeros(2)}, (np.zeros((3, 2)), np.zeros(3))), ValueError,
     r"must return a real floating-point scalar \(its gradient is taken\), got dtype complex"),
])
def test_bad_model_problems(args, exc, match):
    with pytest.raises(exc, match=match):
        jaxgd.model_problem(*args)


def test_init_must_match_the_tree(regression):
    bad = jax.tree.map(lambda a: a[..., :1] if a.ndim else a, regression.init)
    with pytest.raises(ValueError, match=r"init must have shape"):
        jaxgd.run(regression, init=bad)
    with pytest.raises(TypeError, match="init must be a pytree shaped like"):
        jaxgd.run(regression, init=(1.0, 2.0))
    with pytest.raises(ValueError, match="needs a problem over Params"):
        jaxgd.loss_surface(regression, [0.0], [0.0])
