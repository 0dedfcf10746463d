"""The update rules written here against optax's own, and the no-recompile guarantee."""

import jax
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import engine, optim

# (ours, our hyper, optax name, optax hyper given lr) — the README's equivalence table
EQUIV = [
    ("gd", {}, "optax:sgd", lambda lr: ({"lr": lr}, {})),
    ("momentum", {"beta": 0.8}, "optax:sgd", lambda lr: ({"lr": lr * (1 - 0.8)}, {"momentum": 0.8})),
    ("nesterov", {"beta": 0.8}, "optax:sgd",
     lambda lr: ({"lr": lr * (1 - 0.8)}, {"momentum": 0.8, "nesterov": True})),
    ("rmsprop", {"decay": 0.85, "eps": 1e-6}, "optax:rmsprop",
     lambda lr: ({"lr": lr}, {"decay": 0.85, "eps": 1e-6, "eps_in_sqrt": False})),
    ("adam", {"b1": 0.8, "b2": 0.99, "eps": 1e-6}, "optax:adam",
     lambda lr: ({"lr": lr}, {"b1": 0.8, "b2": 0.99, "eps": 1e-6})),
]
# Full-batch gradients and minibatch ones (a ragged, masked last batch). A rule sees only the gradient:
# SGD (batch_size=1, replacement) fed it through the same step as minibatches, on an order that is the
# same for both sides, so it is left to the sampling tests (test_run.py, test_many.py).
MODES = [dict(batch_size=None), dict(batch_size=8, sampling="shuffle")]


@pytest.mark.parametrize("ours,hyper,theirs,make", EQUIV, ids=[e[0] for e in EQUIV])
@pytest.mark.parametrize("mode", MODES, ids=["full", "minibatch"])
def test_rule_equals_optax(problem, ours, hyper, theirs, make, mode):
    lr = 0.04
    a = jaxgd.run(problem, ours, lr=lr, epochs=6, seed=3, **mode, **hyper)
    lr_kw, other = make(lr)
    b = jaxgd.run(problem, theirs, lr=lr_kw["lr"], epochs=6, seed=3, **mode, **other)
    # the paths, losses and norms; not the moments: optax's trace is our velocity / (1 − β)
    a, b = (t._replace(first_moment=None, second_moment=None) for t in (a, b))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-12, atol=1e-13)
    assert not np.allclose(np.asarray(a.params.w[1:]), -4.0)  # it moved


def test_optax_name_equals_a_handwritten_optax_loop(problem):
    t = jaxgd.run(problem, "optax:adamw", lr=0.1, epochs=30, weight_decay=1e-3)
    tx = optax.adamw(0.1, weight_decay=1e-3)
    p = jaxgd.Params(jax.numpy.float64(-4.0), jax.numpy.float64(-7.0))
    state = tx.init(p)
    loss = lambda q: problem.loss(q)
    for _ in range(30):
        g = jax.grad(loss)(p)
        u, state = tx.update(g, state, p)
        p = optax.apply_updates(p, u)
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)], [float(p.w), float(p.b)], rtol=1e-12)


def test_optax_lion_runs(problem):
    t = jaxgd.run(problem, "optax:lion", lr=0.05, epochs=400)
    assert float(t.loss[-1]) < 1e-2 * float(t.loss[0])


@pytest.mark.parametrize("opt,h1,h2", [
    ("gd", {}, {}),
    ("momentum", {"beta": 0.9}, {"beta": 0.5}),
    ("rmsprop", {"decay": 0.9, "eps": 1e-8}, {"decay": 0.5, "eps": 1e-3}),
    ("adam", {"b1": 0.9}, {"b1": 0.7}),
    ("optax:adamw", {"weight_decay": 1e-4}, {"weight_decay": 1e-2}),
])
def test_hyperparameters_are_traced_no_recompile(problem, opt, h1, h2):
    f = engine.run_compiled
    a = jaxgd.run(problem, opt, lr=0.01, epochs=5, batch_size=8, **h1)
    n = f._cache_size()
    b = jaxgd.run(problem, opt, lr=0.02, epochs=5, batch_size=8, seed=7, **h2)
    assert f._cache_size() == n
    assert not np.array_equal(np.asarray(a.params.w), np.asarray(b.params.w))


def test_a_new_problem_with_same_shapes_does_not_recompile():
    f = engine.run_compiled
    jaxgd.run(jaxgd.notebook(noise=0.5, seed=1), "adam", lr=0.1, epochs=3)
    n = f._cache_size()
    jaxgd.run(jaxgd.notebook(noise=1.0, seed=2), "adam", lr=0.1, epochs=3)
    assert f._cache_size() == n


def test_adam_first_step_is_lr_times_sign():
    # With t = 1 bias correction, Adam's first step is lr·g/(|g| + eps) ≈ lr·sign(g) per parameter.
    p = jaxgd.notebook()
    t = jaxgd.run(p, "adam", lr=0.1, epochs=1, eps=0.0)
    np.testing.assert_allclose(np.asarray(t.params.w[1] - t.params.w[0]), 0.1, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(t.params.b[1] - t.params.b[0]), 0.1, rtol=1e-12)


# ----------------------------------------------------------------------------- rules without a learning rate

G = [jaxgd.Params(np.array([0.5, -2.0]), np.array([1.5])), jaxgd.Params(np.array([-0.25, 3.0]), np.array([0.75])),
     jaxgd.Params(np.array([1e-3, -1.0]), np.array([-2.0]))]  # three steps' gradients, a pytree of two leaves
P = jaxgd.Params(np.array([1.0, 2.0]), np.array([-1.0]))
QUADRATIC = lambda p: 2.0 * jax.numpy.sum(p.w ** 2) + jax.numpy.sum((p.b - 1.0) ** 2) + p.w[0] * p.b[0]


def _steps(tx, n=3):
    """``tx``'s updates and final state for the gradients ``G`` (at ``P``; the loss for newton)."""
    state, out = tx.init(P), []
    for g in G[:n]:
        u, state = tx.update(g, state, P, value_fn=QUADRATIC) if isinstance(
            tx, optax.GradientTransformationExtraArgs) else tx.update(g, state, P)
        out.append(u)
    return out, state


def _equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


# (optimizer, its rule, hyper): the optimizer is chain(rule, scale_by_learning_rate(lr))
CHAINS = [("gd", lambda: optax.identity(), {}), ("momentum", optim.scale_by_momentum, {"beta": 0.8}),
          ("nesterov", optim.scale_by_nesterov, {"beta": 0.8}), ("newton", optim.scale_by_newton, {"damping": 0.5}),
          ("rmsprop", optim.scale_by_rms, {"decay": 0.85, "eps": 1e-6}),
          ("adam", optim.scale_by_adam, {"b1": 0.8, "b2": 0.99, "eps": 1e-6})]


@pytest.mark.parametrize("name,rule,hyper", CHAINS, ids=[c[0] for c in CHAINS])
def test_an_optimizer_is_its_rule_then_the_learning_rate(name, rule, hyper):
    lr = 0.04
    ours, state = _steps(optim.BUILTIN[name][0](lr, **hyper))
    chained, chain_state = _steps(optax.chain(rule(**hyper), optax.scale_by_learning_rate(lr)))
    jax.tree.map(lambda a, b: None, state, chain_state)  # the same state pytree: (rule's, learning rate's)
    if name in ("rmsprop", "adam"):  # lr on the quotient's numerator, (−lr·n)/d, not −lr·(n/d): the last bit
        for u, v in zip(jax.tree.leaves(ours), jax.tree.leaves(chained)):
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-15, atol=0)
        _equal(state, chain_state)
    else:
        _equal((ours, state), (chained, chain_state))


@pytest.mark.parametrize("ours,theirs", [
    (optim.scale_by_momentum(0.8), optax.ema(0.8, debias=False)),  # the EMA form, not optax's trace
    (optim.scale_by_rms(0.85, 1e-6), optax.scale_by_rms(0.85, 1e-6, eps_in_sqrt=False)),
    (optim.scale_by_adam(0.8, 0.99, 1e-6), optax.scale_by_adam(0.8, 0.99, 1e-6)),
], ids=["momentum", "rms", "adam"])
def test_rules_equal_optax_directions(ours, theirs):
    a, _ = _steps(ours)
    b, _ = _steps(theirs)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-12, atol=0)


def test_the_newton_direction_solves_the_hessian():
    (d,), _ = _steps(optim.scale_by_newton(0.5), 1)
    H = np.array([[4.5, 0.0, 1.0], [0.0, 4.5, 0.0], [1.0, 0.0, 2.5]])  # QUADRATIC's Hessian + 0.5·I
    np.testing.assert_allclose(np.concatenate([d.w, d.b]), np.linalg.solve(H, [0.5, -2.0, 1.5]), rtol=1e-12)


@pytest.mark.parametrize("opt", ["gd", "momentum", "nesterov", "rmsprop", "adam", "newton"])
def test_a_number_a_traced_array_and_a_schedule_take_one_path(opt):
    """The learning rate reaches every rule through optax.scale_by_learning_rate, whatever it is:
    a constant schedule gives the number's updates bit for bit, and so does a traced array under jit
    against a schedule of that array (jit against op-by-op may round a quotient differently: XLA's
    business, not the path's)."""
    make, lr = optim.BUILTIN[opt][0], 0.04
    number, state = _steps(make(lr))
    for other in (jax.numpy.float64(lr), optax.constant_schedule(lr)):
        updates, other_state = _steps(make(other))
        _equal(number, updates)
        _equal(state[0], other_state[0])  # the rule's state; a schedule's stage also counts the steps
    assert isinstance(other_state[1], optax.ScaleByScheduleState) and int(other_state[1].count) == len(G)
    traced = jax.jit(lambda r: _steps(make(r))[0])(jax.numpy.float64(lr))
    _equal(traced, jax.jit(lambda r: _steps(make(lambda count: r))[0])(jax.numpy.float64(lr)))


@pytest.mark.parametrize("opt", jaxgd.OPTIMIZERS)
def test_a_constant_schedule_runs_as_its_number(problem, opt):
    # rtol 1e-15, not bit for bit: the engine compiles a schedule's value as a constant and the number as a
    # traced array, and XLA may fold the two graphs differently (nesterov's first update norm, by one ulp)
    lr = 1.0 if opt in ("newton", "lbfgs") else 0.04
    a = jaxgd.run(problem, opt, lr=lr, epochs=6)
    b = jaxgd.run(problem, opt, lr=optax.constant_schedule(lr), epochs=6)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-15, atol=0)
    assert not np.allclose(np.asarray(a.params.w[1:]), -4.0)  # it moved


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("opt", ["gd", "momentum", "adam", "newton"])
def test_a_schedule_is_the_rule_at_each_steps_learning_rate(problem, opt):
    sched = optax.exponential_decay(0.08, transition_steps=1, decay_rate=0.9)
    t = jaxgd.run(problem, opt, lr=sched, epochs=6)
    if opt == "gd":  # by hand: each step at lr = the schedule's value (optax computes it in float32)
        p = jaxgd.Params(-4.0, -7.0)
        for k in range(6):
            g = problem.grad(p)
            lr_k = float(sched(jax.numpy.asarray(k, jax.numpy.int32)))
            p = jaxgd.Params(p.w - lr_k * g.w, p.b - lr_k * g.b)
        np.testing.assert_allclose([float(t.final.w), float(t.final.b)], [float(p.w), float(p.b)], rtol=1e-12)
    lr0 = float(sched(jax.numpy.asarray(0, jax.numpy.int32)))  # 0.08 in float32
    const = jaxgd.run(problem, opt, lr=lr0, epochs=1)  # step 0 runs at lr(0)
    np.testing.assert_allclose(np.asarray(t.params.w[:2]), np.asarray(const.params.w), rtol=1e-12)


def test_optax_optimizer_takes_the_schedule_itself(problem):
    sched = optax.cosine_decay_schedule(0.1, decay_steps=20)
    a = jaxgd.run(problem, "optax:adam", lr=sched, epochs=20)
    b = jaxgd.run(problem, "adam", lr=sched, epochs=20)
    np.testing.assert_allclose(np.asarray(a.params.w), np.asarray(b.params.w), rtol=1e-12)


@pytest.mark.parametrize("lr,exc,match", [
    (lambda step: -1.0, ValueError, "lr schedule must give a finite learning rate >= 0, got lr\\(0\\) = -1.0"),
    (lambda: 0.1, TypeError, "lr is callable but not a schedule of the step count"),
])
def test_bad_schedules(problem, lr, exc, match):
    with pytest.raises(exc, match=match):
        jaxgd.run(problem, "gd", lr=lr)


def test_cli_schedules(cli):
    import json

    
    for kind in ("exponential", "cosine", "warmup-cosine"):
        code, out, err = cli(["run", "--optimizer", "adam", "--lr", "0.3", "--epochs", "60", "--schedule", kind,
                               "--json", "-"])
        assert code == 0, err
        doc = json.loads(out)
        assert doc["config"]["schedule"]["kind"] == kind
    steps = np.diff(doc["params"]["b"])  # warmup-cosine: the first step is at lr 0
    assert steps[0] == 0.0 and abs(steps[10]) > 0.1
    for argv, message in ((["--schedule", "step"], "--schedule must be one of 'constant', 'exponential'"),
                          (["--schedule", "exponential", "--decay-rate", "1.5"], "--decay-rate must be a finite number in (0, 1], got 1.5"),
                          (["--schedule", "warmup-cosine", "--warmup", "100"], "--warmup must be an integer in [1, 19]")):
        code, out, err = cli(["run", *argv])
        assert code == 2 and message in err and out == "", err
